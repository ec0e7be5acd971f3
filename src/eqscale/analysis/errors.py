"""The analysis's error type, importable without the fitting code."""

from __future__ import annotations


class FitError(ValueError):
    """A fit cannot be done; the message says why and what it would need."""
