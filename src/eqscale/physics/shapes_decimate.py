"""Topology-preserving mesh operations for small closed meshes: quadric decimation and edge flips.

`fast_simplification` is fast but checks no topology: at small face counts it pinches thin parts
(the teapot's handle and lip) into edges shared by four faces. `decimate_manifold` is slower (pure
Python, ~100 us a collapse) but collapses an edge only when the link condition holds (the edge's
endpoints share exactly the two neighbours opposite it), so the surface stays a closed manifold of
the same genus, and only when no surrounding face flips or degenerates. It is used for the last
stretch: `fast_simplification` takes a fine mesh down to a few times the budget, this finishes.

`flip_slivers` then swaps the diagonal of nearly flat pairs of faces where that raises their
smallest angle: the thin triangles that marching cubes and fan triangulations leave in flat
regions become well shaped without moving any vertex or changing the face count.

Costs are Garland-Heckbert quadric errors (area-weighted face planes); ties in the heap break on
vertex ids and edges are visited in sorted order, so results are deterministic.
"""

from __future__ import annotations

import heapq
import math

import numpy as np

_MIN_COS = 0.2  # a collapse may turn a neighbouring face's normal by at most ~78 degrees
_SLIVER = math.radians(15)  # flips are tried around faces with an angle below this


def _sub(p, q):
    return p[0] - q[0], p[1] - q[1], p[2] - q[2]


def _cross(u, v):
    return u[1] * v[2] - u[2] * v[1], u[2] * v[0] - u[0] * v[2], u[0] * v[1] - u[1] * v[0]


def _dot(u, v):
    return u[0] * v[0] + u[1] * v[1] + u[2] * v[2]


def _normal(p0, p1, p2):
    return _cross(_sub(p1, p0), _sub(p2, p0))


def _shape_quality(p0, p1, p2) -> float:
    """sin of a triangle's smallest angle: 2 area / (product of its two longest sides); 0 if degenerate.

    Orders triangles as their smallest angles do (that angle is at most 60 degrees) without acos.
    """
    sides = sorted(math.dist(a, b) for a, b in ((p0, p1), (p1, p2), (p2, p0)))
    if sides[1] == 0:
        return 0.0
    n = _normal(p0, p1, p2)
    return math.sqrt(_dot(n, n)) / (sides[1] * sides[2])


def _face_quadric(p0, p1, p2) -> list[float]:
    """Plane quadric of one triangle weighted by its area, as 10 upper-triangle entries."""
    nx, ny, nz = _normal(p0, p1, p2)
    norm = math.sqrt(nx * nx + ny * ny + nz * nz)
    if norm == 0:
        return [0.0] * 10
    a, b, c = nx / norm, ny / norm, nz / norm
    d = -(a * p0[0] + b * p0[1] + c * p0[2])
    w = 0.5 * norm
    return [w * a * a, w * a * b, w * a * c, w * a * d, w * b * b, w * b * c, w * b * d, w * c * c, w * c * d,
            w * d * d]


def _error(q, x, y, z) -> float:
    return (q[0] * x * x + 2 * q[1] * x * y + 2 * q[2] * x * z + 2 * q[3] * x + q[4] * y * y + 2 * q[5] * y * z
            + 2 * q[6] * y + q[7] * z * z + 2 * q[8] * z + q[9])


def _best_position(q, pa, pb) -> tuple[float, tuple[float, float, float]]:
    """(error, position) minimising the quadric; endpoints or midpoint when it is singular."""
    a11, a12, a13, a22, a23, a33 = q[0], q[1], q[2], q[4], q[5], q[7]
    b1, b2, b3 = -q[3], -q[6], -q[8]
    det = a11 * (a22 * a33 - a23 * a23) - a12 * (a12 * a33 - a23 * a13) + a13 * (a12 * a23 - a22 * a13)
    scale = max(abs(a11), abs(a22), abs(a33), 1e-30) ** 3
    mid = tuple(0.5 * (pa[i] + pb[i]) for i in range(3))
    candidates = [tuple(pa), tuple(pb), mid]
    if abs(det) > 1e-9 * scale:
        x = (b1 * (a22 * a33 - a23 * a23) - a12 * (b2 * a33 - a23 * b3) + a13 * (b2 * a23 - a22 * b3)) / det
        y = (a11 * (b2 * a33 - a23 * b3) - b1 * (a12 * a33 - a23 * a13) + a13 * (a12 * b3 - b2 * a13)) / det
        z = (a11 * (a22 * b3 - b2 * a23) - a12 * (a12 * b3 - b2 * a13) + b1 * (a12 * a23 - a22 * a13)) / det
        # the optimum of a nearly flat region can run far away: keep it near the edge
        if math.dist((x, y, z), mid) <= math.dist(pa, pb):
            candidates.insert(0, (x, y, z))
    return min((_error(q, *p), i, p) for i, p in enumerate(candidates))[::2]


class _Surface:
    """A closed triangle mesh with vertex-face incidence, edited in place by collapses and flips."""

    def __init__(self, vertices: np.ndarray, faces: np.ndarray):
        self.pos = [tuple(map(float, v)) for v in vertices]
        self.tris = [list(map(int, f)) for f in faces]
        self.alive = [True] * len(self.tris)
        self.count = len(self.tris)
        self.vertex_faces: list[set[int]] = [set() for _ in self.pos]
        for f, tri in enumerate(self.tris):
            for v in tri:
                self.vertex_faces[v].add(f)

    def neighbours(self, v: int) -> set[int]:
        return {u for f in self.vertex_faces[v] for u in self.tris[f]} - {v}

    def edges(self) -> list[tuple[int, int]]:
        return sorted({(min(a, b), max(a, b)) for f, t in enumerate(self.tris) if self.alive[f]
                       for a, b in ((t[0], t[1]), (t[1], t[2]), (t[2], t[0]))})

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        kept = [self.tris[f] for f in range(len(self.tris)) if self.alive[f]]
        used = sorted({v for t in kept for v in t})
        remap = {v: i for i, v in enumerate(used)}
        return (np.array([self.pos[v] for v in used], float),
                np.array([[remap[v] for v in t] for t in kept], np.int64).reshape(-1, 3))

    def can_collapse(self, a: int, b: int, p) -> bool:
        """Link condition, and no surrounding face flips or degenerates when a and b move to p."""
        shared = self.vertex_faces[a] & self.vertex_faces[b]
        if len(shared) != 2:
            return False
        opposite = {u for f in shared for u in self.tris[f]} - {a, b}
        if self.neighbours(a) & self.neighbours(b) != opposite:
            return False  # collapsing would pinch the surface
        for f in (self.vertex_faces[a] | self.vertex_faces[b]) - shared:
            old = [self.pos[v] for v in self.tris[f]]
            new = [p if v in (a, b) else self.pos[v] for v in self.tris[f]]
            n0, n1 = _normal(*old), _normal(*new)
            l0, l1 = math.sqrt(_dot(n0, n0)), math.sqrt(_dot(n1, n1))
            if l1 <= 1e-12 * l0 or _dot(n0, n1) < _MIN_COS * l0 * l1:
                return False
        return True

    def collapse(self, a: int, b: int, p) -> None:
        """Merge b into a at position p, removing the two faces on edge a-b."""
        shared = self.vertex_faces[a] & self.vertex_faces[b]
        for f in shared:
            self.alive[f] = False
            for v in self.tris[f]:
                self.vertex_faces[v].discard(f)
        for f in self.vertex_faces[b]:
            self.tris[f] = [a if v == b else v for v in self.tris[f]]
        self.vertex_faces[a] |= self.vertex_faces[b]
        self.vertex_faces[b] = set()
        self.pos[a] = p
        self.count -= 2

    def try_flip(self, a: int, b: int, flat_cos: float) -> tuple[int, int] | None:
        """Swap edge a-b for the other diagonal of its two faces if they are nearly coplanar and the
        smaller of their smallest angles grows; the two faces if flipped, else None."""
        shared = sorted(self.vertex_faces[a] & self.vertex_faces[b])
        if len(shared) != 2:
            return None
        f1, f2 = shared
        t1 = self.tris[f1]
        if (t1[(t1.index(a) + 1) % 3]) != b:
            f1, f2, t1 = f2, f1, self.tris[f2]
        c = next(v for v in t1 if v not in (a, b))  # f1 = (a, b, c) in its winding
        d = next(v for v in self.tris[f2] if v not in (a, b))  # f2 = (b, a, d)
        if c == d or d in self.neighbours(c):
            return None  # the new edge exists already: flipping would make it non-manifold
        pa, pb, pc, pd = (self.pos[v] for v in (a, b, c, d))
        n1, n2 = _normal(pa, pb, pc), _normal(pb, pa, pd)
        m1, m2 = _normal(pa, pd, pc), _normal(pd, pb, pc)
        norms = [math.sqrt(_dot(n, n)) for n in (n1, n2, m1, m2)]
        if min(norms) <= 1e-12 * max(norms):
            return None
        # the old pair and the new pair must each be nearly flat and face the same way
        if (_dot(n1, n2) < flat_cos * norms[0] * norms[1] or _dot(m1, m2) < flat_cos * norms[2] * norms[3]
                or _dot(n1, m1) < flat_cos * norms[0] * norms[2]):
            return None
        before = min(_shape_quality(pa, pb, pc), _shape_quality(pb, pa, pd))
        after = min(_shape_quality(pa, pd, pc), _shape_quality(pd, pb, pc))
        if after <= before + 1e-12:
            return None
        for f in (f1, f2):
            for v in self.tris[f]:
                self.vertex_faces[v].discard(f)
        self.tris[f1], self.tris[f2] = [a, d, c], [d, b, c]
        for f in (f1, f2):
            for v in self.tris[f]:
                self.vertex_faces[v].add(f)
        return f1, f2


def decimate_manifold(vertices: np.ndarray, faces: np.ndarray, target: int) -> tuple[np.ndarray, np.ndarray]:
    """Collapse edges of a closed manifold mesh until at most `target` faces remain (or none can go).

    Every collapse removes two faces and keeps the mesh closed, manifold and of the same genus.
    """
    surface = _Surface(vertices, faces)
    quadric = [[0.0] * 10 for _ in surface.pos]
    for tri in surface.tris:
        q = _face_quadric(*(surface.pos[v] for v in tri))
        for v in tri:
            quadric[v] = [s + t for s, t in zip(quadric[v], q)]
    stamp = [0] * len(surface.pos)
    heap: list[tuple[float, int, int, int, int, tuple[float, float, float]]] = []

    def push(a: int, b: int) -> None:
        a, b = min(a, b), max(a, b)
        cost, p = _best_position([s + t for s, t in zip(quadric[a], quadric[b])], surface.pos[a], surface.pos[b])
        heapq.heappush(heap, (cost, a, b, stamp[a], stamp[b], p))

    for a, b in surface.edges():
        push(a, b)
    while surface.count > target and heap:
        _, a, b, sa, sb, p = heapq.heappop(heap)
        if stamp[a] != sa or stamp[b] != sb:
            continue  # stale: an endpoint moved or died since this entry was pushed
        if not surface.can_collapse(a, b, p):
            continue
        surface.collapse(a, b, p)
        quadric[a] = [s + t for s, t in zip(quadric[a], quadric[b])]
        stamp[a] += 1
        stamp[b] = -1
        for u in sorted(surface.neighbours(a)):
            push(a, u)
    return surface.arrays()


def flip_slivers(vertices: np.ndarray, faces: np.ndarray, max_bend: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Flip edges between nearly coplanar faces wherever that raises the pair's smallest angle.

    Nearly coplanar: the two faces' normals, before and after, differ by at most `max_bend` degrees
    (on a flat region a flip changes nothing but the triangles; on a curved one it moves the
    surface by a little, so callers that allow bends re-check the result).
    Vertices and face count are unchanged; every flip keeps the mesh manifold. Only edges of faces
    with an angle under `_SLIVER` are tried, then the edges around each flip; every flip raises the
    sorted list of the mesh's angles, so this ends.
    """
    surface = _Surface(vertices, faces)
    flat_cos = math.cos(math.radians(max_bend))
    p = np.asarray(vertices, float)[np.asarray(faces)]
    sides = np.linalg.norm(p - np.roll(p, 1, axis=1), axis=2)  # side i is opposite corner (i + 1) % 3
    area2 = np.linalg.norm(np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0]), axis=1)
    # sin(smallest angle) = 2 area / (product of the two longest sides)
    longest = np.sort(sides, axis=1)[:, 1:].prod(axis=1)
    thin = np.flatnonzero(area2 < math.sin(_SLIVER) * longest)

    def face_edges(f: int) -> set[tuple[int, int]]:
        t = surface.tris[f]
        return {(min(t[i], t[i - 1]), max(t[i], t[i - 1])) for i in range(3)}

    queue = sorted(set().union(*(face_edges(int(f)) for f in thin)))
    tries = 0
    while queue and tries < 20 * len(faces):
        a, b = queue.pop()
        tries += 1
        flipped = surface.try_flip(a, b, flat_cos)
        if flipped:  # the quad's sides may now flip too
            queue += sorted((face_edges(flipped[0]) | face_edges(flipped[1])) - {(a, b)})
    return np.asarray(vertices, float), np.array(surface.tris, np.int64).reshape(-1, 3)


def collapse_needles(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Collapse the short edge of each needle (a face with an angle under `_SLIVER` opposite a side
    much shorter than the others) to its midpoint, where the link condition and face checks allow.

    Flips cannot mend needles; each collapse removes two faces and keeps the mesh closed.
    """
    surface = _Surface(vertices, faces)
    p = np.asarray(vertices, float)[np.asarray(faces)]
    sides = np.linalg.norm(p - np.roll(p, 1, axis=1), axis=2)  # side i joins corners i - 1 and i
    order = np.sort(sides, axis=1)
    needles = np.flatnonzero(order[:, 0] < math.sin(_SLIVER) * order[:, 1])
    edges = sorted({(min(faces[f][i - 1], faces[f][i]), max(faces[f][i - 1], faces[f][i]))
                    for f in needles for i in [int(np.argmin(sides[f]))]})
    for a, b in edges:
        a, b = int(a), int(b)
        if not (surface.vertex_faces[a] and surface.vertex_faces[b]):
            continue  # an endpoint went in an earlier collapse
        mid = tuple(0.5 * (surface.pos[a][i] + surface.pos[b][i]) for i in range(3))
        if surface.can_collapse(a, b, mid):
            surface.collapse(a, b, mid)
    return surface.arrays()
