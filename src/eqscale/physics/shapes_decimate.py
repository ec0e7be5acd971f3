"""Topology-preserving quadric edge-collapse decimation for small closed meshes.

`fast_simplification` is fast but checks no topology: at small face counts it pinches thin parts
(the teapot's handle and lip) into edges shared by four faces. This decimator is slower (pure
Python, ~50 us a collapse) but collapses an edge only when the link condition holds (the edge's
endpoints share exactly the two neighbours opposite it), so the surface stays a closed manifold of
the same genus, and only when no surrounding face flips or degenerates. Used for the last stretch:
`fast_simplification` takes a fine mesh down to a few times the budget, this finishes.

Costs are Garland-Heckbert quadric errors (area-weighted face planes); ties in the heap break on
vertex ids, so the result is deterministic.
"""

from __future__ import annotations

import heapq
import math

import numpy as np

_MIN_COS = 0.2  # a collapse may turn a neighbouring face's normal by at most ~78 degrees


def _face_quadric(p0, p1, p2) -> tuple[list[float], float]:
    """(plane quadric weighted by area as 10 upper-triangle entries, area) of one triangle."""
    ux, uy, uz = p1[0] - p0[0], p1[1] - p0[1], p1[2] - p0[2]
    vx, vy, vz = p2[0] - p0[0], p2[1] - p0[1], p2[2] - p0[2]
    nx, ny, nz = uy * vz - uz * vy, uz * vx - ux * vz, ux * vy - uy * vx
    norm = math.sqrt(nx * nx + ny * ny + nz * nz)
    if norm == 0:
        return [0.0] * 10, 0.0
    a, b, c = nx / norm, ny / norm, nz / norm
    d = -(a * p0[0] + b * p0[1] + c * p0[2])
    w = 0.5 * norm
    return [w * a * a, w * a * b, w * a * c, w * a * d, w * b * b, w * b * c, w * b * d, w * c * c, w * c * d,
            w * d * d], 0.5 * norm


def _error(q, x, y, z) -> float:
    return (q[0] * x * x + 2 * q[1] * x * y + 2 * q[2] * x * z + 2 * q[3] * x + q[4] * y * y + 2 * q[5] * y * z
            + 2 * q[6] * y + q[7] * z * z + 2 * q[8] * z + q[9])


def _best_position(q, pa, pb) -> tuple[float, tuple[float, float, float]]:
    """(error, position) minimising the quadric; endpoints or midpoint when it is singular."""
    a11, a12, a13, a22, a23, a33 = q[0], q[1], q[2], q[4], q[5], q[7]
    b1, b2, b3 = -q[3], -q[6], -q[8]
    det = a11 * (a22 * a33 - a23 * a23) - a12 * (a12 * a33 - a23 * a13) + a13 * (a12 * a23 - a22 * a13)
    scale = max(abs(a11), abs(a22), abs(a33), 1e-30) ** 3
    candidates = [tuple(pa), tuple(pb), tuple(0.5 * (pa[i] + pb[i]) for i in range(3))]
    if abs(det) > 1e-9 * scale:
        x = (b1 * (a22 * a33 - a23 * a23) - a12 * (b2 * a33 - a23 * b3) + a13 * (b2 * a23 - a22 * b3)) / det
        y = (a11 * (b2 * a33 - a23 * b3) - b1 * (a12 * a33 - a23 * a13) + a13 * (a12 * b3 - b2 * a13)) / det
        z = (a11 * (a22 * b3 - b2 * a23) - a12 * (a12 * b3 - b2 * a13) + b1 * (a12 * a23 - a22 * a13)) / det
        # the optimum of a nearly flat region can run far away: keep it near the edge
        length = math.dist(pa, pb)
        mid = candidates[2]
        if math.dist((x, y, z), mid) <= length:
            candidates.insert(0, (x, y, z))
    return min((_error(q, *p), i, p) for i, p in enumerate(candidates))[::2]


def _normal(p0, p1, p2) -> tuple[float, float, float]:
    ux, uy, uz = p1[0] - p0[0], p1[1] - p0[1], p1[2] - p0[2]
    vx, vy, vz = p2[0] - p0[0], p2[1] - p0[1], p2[2] - p0[2]
    return uy * vz - uz * vy, uz * vx - ux * vz, ux * vy - uy * vx


def decimate_manifold(vertices: np.ndarray, faces: np.ndarray, target: int) -> tuple[np.ndarray, np.ndarray]:
    """Collapse edges of a closed manifold mesh until at most `target` faces remain (or none can go).

    Every collapse removes two faces and keeps the mesh closed, manifold and of the same genus.
    """
    pos = [tuple(map(float, v)) for v in vertices]
    tris = [list(map(int, f)) for f in faces]
    alive = [True] * len(tris)
    vertex_faces: list[set[int]] = [set() for _ in pos]
    quadric = [[0.0] * 10 for _ in pos]
    for f, (i, j, k) in enumerate(tris):
        q, _ = _face_quadric(pos[i], pos[j], pos[k])
        for v in (i, j, k):
            vertex_faces[v].add(f)
            quadric[v] = [s + t for s, t in zip(quadric[v], q)]
    stamp = [0] * len(pos)
    heap: list[tuple[float, int, int, int, int, tuple[float, float, float]]] = []

    def neighbours(v: int) -> set[int]:
        return {u for f in vertex_faces[v] for u in tris[f]} - {v}

    def push(a: int, b: int) -> None:
        a, b = min(a, b), max(a, b)
        q = [s + t for s, t in zip(quadric[a], quadric[b])]
        cost, p = _best_position(q, pos[a], pos[b])
        heapq.heappush(heap, (cost, a, b, stamp[a], stamp[b], p))

    for v in range(len(pos)):
        for u in neighbours(v):
            if u > v:
                push(v, u)
    count = len(tris)
    while count > target and heap:
        _, a, b, sa, sb, p = heapq.heappop(heap)
        if stamp[a] != sa or stamp[b] != sb:
            continue  # stale: an endpoint moved or died since this entry was pushed
        shared = vertex_faces[a] & vertex_faces[b]
        if len(shared) != 2:
            continue
        opposite = {u for f in shared for u in tris[f]} - {a, b}
        if neighbours(a) & neighbours(b) != opposite:
            continue  # link condition: collapsing would pinch the surface
        if not _keeps_faces(tris, pos, (vertex_faces[a] | vertex_faces[b]) - shared, a, b, p):
            continue
        for f in shared:
            alive[f] = False
            for v in tris[f]:
                vertex_faces[v].discard(f)
        for f in vertex_faces[b]:
            tris[f] = [a if v == b else v for v in tris[f]]
        vertex_faces[a] |= vertex_faces[b]
        vertex_faces[b] = set()
        quadric[a] = [s + t for s, t in zip(quadric[a], quadric[b])]
        pos[a] = p
        stamp[a] += 1
        stamp[b] = -1
        count -= 2
        for u in neighbours(a):
            push(a, u)
    kept = [tris[f] for f in range(len(tris)) if alive[f]]
    used = sorted({v for t in kept for v in t})
    remap = {v: i for i, v in enumerate(used)}
    return (np.array([pos[v] for v in used], float),
            np.array([[remap[v] for v in t] for t in kept], np.int64).reshape(-1, 3))


def _keeps_faces(tris, pos, faces, a: int, b: int, p) -> bool:
    """Whether moving a and b to p leaves every face in `faces` unflipped and non-degenerate."""
    for f in faces:
        old = [pos[v] for v in tris[f]]
        new = [p if v in (a, b) else pos[v] for v in tris[f]]
        n0, n1 = _normal(*old), _normal(*new)
        l0, l1 = math.sqrt(sum(c * c for c in n0)), math.sqrt(sum(c * c for c in n1))
        if l1 <= 1e-12 * max(l0, 1e-300) or l1 == 0:
            return False
        if (n0[0] * n1[0] + n0[1] * n1[1] + n0[2] * n1[2]) < _MIN_COS * l0 * l1:
            return False
    return True
