"""Post-loan monitoring at the coordinator: alerts from factory nodes' change events, the
lenders' webhooks."""

from __future__ import annotations

__all__: list[str] = []
