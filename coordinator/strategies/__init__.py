"""coordinator/strategies."""
