"""participants/demo."""
