"""Mesh checks shared by the shape builders and their tests."""

from __future__ import annotations

import numpy as np
import trimesh


def mesh_problem(mesh: trimesh.Trimesh) -> str:
    """Why `mesh` is not a single closed outward-oriented body without degenerate faces ('' if it is)."""
    if not mesh.is_watertight:
        return "not watertight"
    if not mesh.is_winding_consistent:
        return "inconsistent winding"
    if not mesh.volume > 0:
        return "normals point inwards"
    if np.any(mesh.area_faces <= 1e-12 * mesh.extents.max() ** 2):
        return "degenerate faces"
    if len(mesh.split(only_watertight=False)) != 1:
        return "more than one body"
    return ""


def self_intersections(mesh: trimesh.Trimesh, tol: float = 1e-9) -> int:
    """Number of pairs of faces that share no vertex yet cross each other (0 for an embedded surface).

    Broad phase: overlapping bounding boxes (sort-and-sweep on x); narrow phase: does an edge of one
    triangle pass through the other (Moller-Trumbore with the edge as a segment). Pairs sharing a
    vertex are skipped: on a closed manifold mesh they meet at that vertex by construction.
    """
    triangles = np.asarray(mesh.triangles, float)
    faces = np.asarray(mesh.faces)
    low, high = triangles.min(axis=1), triangles.max(axis=1)
    order = np.argsort(low[:, 0], kind="stable")
    pairs = []
    starts = low[order, 0]
    for rank, i in enumerate(order):
        stop = np.searchsorted(starts, high[i, 0], side="right")
        others = order[rank + 1:stop]
        overlap = np.all((low[others] <= high[i]) & (high[others] >= low[i]), axis=1)
        for j in others[overlap]:
            pairs.append((i, j))
    if not pairs:
        return 0
    pairs = np.array(pairs)
    shared = (faces[pairs[:, 0], :, None] == faces[pairs[:, 1], None, :]).any(axis=(1, 2))
    pairs = pairs[~shared]
    if not len(pairs):
        return 0
    hit = np.zeros(len(pairs), bool)
    for first, second in ((0, 1), (1, 0)):
        tri = triangles[pairs[:, second]]
        for e in range(3):
            start = triangles[pairs[:, first], e]
            end = triangles[pairs[:, first], (e + 1) % 3]
            hit |= _segment_hits_triangle(start, end, tri, tol)
    return int(hit.sum())


def _segment_hits_triangle(start: np.ndarray, end: np.ndarray, tri: np.ndarray, tol: float) -> np.ndarray:
    """Whether each segment start->end crosses the interior of the matching triangle."""
    direction = end - start
    e1, e2 = tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]
    p = np.cross(direction, e2)
    det = np.einsum("ij,ij->i", e1, p)
    valid = np.abs(det) > 1e-15
    det = np.where(valid, det, 1.0)
    s = start - tri[:, 0]
    u = np.einsum("ij,ij->i", s, p) / det
    q = np.cross(s, e1)
    v = np.einsum("ij,ij->i", direction, q) / det
    t = np.einsum("ij,ij->i", e2, q) / det
    return valid & (u > tol) & (v > tol) & (u + v < 1 - tol) & (t > tol) & (t < 1 - tol)
