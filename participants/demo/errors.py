"""Exceptions of the demo-scenario package; :class:`ScenarioError` is the root."""

from __future__ import annotations

__all__ = ["InvalidUSCCError", "ScenarioError"]


class ScenarioError(Exception):
    """Root of every error raised while generating or reading the demo scenario."""


class InvalidUSCCError(ScenarioError, ValueError):
    """A string is not a valid unified social credit code (GB 32100-2015)."""
