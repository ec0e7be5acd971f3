"""Reusable test helpers (equivariance asserts, synthetic rigid scenes)."""
