"""Signed distance field primitives (points (n, 3) -> distances (n,), negative inside) and smooth booleans.

Shared by the organic shapes (`shapes_implicit`) and the teapot (`shapes_teapot`), which both sit above it.
"""

from __future__ import annotations

import numpy as np


def smooth_union(d1: np.ndarray, d2: np.ndarray, k: float) -> np.ndarray:
    """Polynomial smooth minimum: a fillet of width ~k where two solids meet."""
    h = np.clip(0.5 + 0.5 * (d2 - d1) / k, 0.0, 1.0)
    return d2 * (1 - h) + d1 * h - k * h * (1 - h)


def smooth_subtract(d: np.ndarray, cut: np.ndarray, k: float) -> np.ndarray:
    """Remove solid `cut` from solid `d` with a rounded edge of width ~k."""
    return -smooth_union(-d, cut, k)


def ellipsoid(p: np.ndarray, centre, radii) -> np.ndarray:
    """Approximate distance to an axis-aligned ellipsoid (k0 (k0 - 1) / k1: exact on the surface)."""
    radii = np.asarray(radii, float)
    q = p - np.asarray(centre, float)
    k0 = np.sqrt(np.einsum("ij,ij->i", q, q / radii**2))
    k1 = np.sqrt(np.einsum("ij,ij->i", q, q / radii**4))
    return k0 * (k0 - 1) / np.maximum(k1, 1e-12)


def capsule(p: np.ndarray, a, b, radius_a: float, radius_b: float | None = None) -> np.ndarray:
    """Distance to a segment a-b thickened by a radius that may vary linearly from a to b."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    ab = b - a
    pa = p - a
    h = np.clip((pa @ ab) / (ab @ ab), 0.0, 1.0)
    radius = radius_a if radius_b is None else radius_a + h * (radius_b - radius_a)
    offset = pa - h[:, None] * ab
    return np.sqrt(np.einsum("ij,ij->i", offset, offset)) - radius


def union(parts: list[tuple[np.ndarray, float]]) -> np.ndarray:
    """Smooth union of (distance, fillet width) parts in order."""
    d = parts[0][0]
    for other, k in parts[1:]:
        d = smooth_union(d, other, k)
    return d
