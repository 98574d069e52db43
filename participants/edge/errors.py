"""Exceptions of the edge pipeline.

Bad *files* are not exceptions here: the inbox refuses them by name (a
:class:`~models.errors.DataError` naming file, row and column) and the pass goes on with
the others. :class:`EdgeError` is for a pass that cannot run at all.
"""

from __future__ import annotations

__all__ = ["EdgeError"]


class EdgeError(ValueError):
    """The edge pipeline cannot run as asked (bad folder, bad setting); says what to fix."""
