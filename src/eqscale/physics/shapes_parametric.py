"""Shapes generated directly at the resolution that fits a face budget: closed by construction.

Each builder returns raw (vertices, faces) in its own units with outward winding; `shapes.py`
normalises size and centre. A builder picks its resolution parameters with `pick_resolution`:
among the parameter sets that fit the budget and use at least `_KEEP` of the best face count
reachable, the one with the most regular triangles wins, so budgets are used well without
needle-thin triangles.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import TypeVar

import numpy as np
import trimesh

from eqscale.physics.shapes_decimate import flip_slivers

P = TypeVar("P")

_KEEP = 0.9  # a resolution may give up at most 10% of the reachable face count for regularity

# torus: tube radius / ring (major) radius. With the ring at 0.4 and the tube at 0.1 the outer
# diameter is 1 and the hole has radius 0.3 in normalised units (largest side 1): a ball of radius
# 0.1 dropped on the centre falls through with room to spare.
TORUS_RING_RADIUS = 0.4
TORUS_TUBE_RATIO = 0.25

# torus knot: the (2, 3) trefoil r = 2 + cos(3t), (r cos 2t, r sin 2t, -sin 3t). Points more than
# 2.5 apart along it are at least 1.66 apart in space and it bends no tighter than radius 1.43, so
# a tube of radius 0.55 does not touch itself (the tests check every built mesh for this).
KNOT_P, KNOT_Q, KNOT_TUBE_RADIUS = 2, 3, 0.55

# gear: 12 teeth, tip radius 0.5, root radius 0.39, thickness 0.3 (the largest side is the diameter)
GEAR_TEETH, GEAR_TIP, GEAR_ROOT, GEAR_THICKNESS, GEAR_HUB = 12, 0.5, 0.39, 0.3, 0.3
# fractions of a tooth period: rising flank, tip land, falling flank; the rest is the root land
GEAR_FLANK, GEAR_LAND = 0.15, 0.3


def pick_resolution(candidates: Iterable[P], budget: int, count: Callable[[P], int],
                    irregularity: Callable[[P], float]) -> P:
    """The candidate within `budget` with the most regular triangles among those using most of it."""
    fitting = [(count(c), c) for c in candidates]
    fitting = [(n, c) for n, c in fitting if n <= budget]
    if not fitting:
        raise ValueError(f"no resolution fits a budget of {budget} faces")
    best = max(n for n, _ in fitting)
    pool = [(irregularity(c), -n, i, c) for i, (n, c) in enumerate(fitting) if n >= _KEEP * best]
    return min(pool, key=lambda item: item[:3])[3]


def _mismatch(*lengths: float) -> float:
    """How far a set of edge lengths is from all equal (0 when equal), on a log scale."""
    logs = np.log(np.asarray(lengths, float))
    return float(logs.max() - logs.min())


def _oriented(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Flip a consistently wound closed mesh if its normals point inwards."""
    mesh = trimesh.Trimesh(vertices, faces, process=False)
    if mesh.volume < 0:
        faces = faces[:, ::-1]
    return np.asarray(vertices, np.float64), np.ascontiguousarray(faces, np.int64)


# ---- cube and sphere ---------------------------------------------------------------------------

def cube(max_faces: int) -> tuple[np.ndarray, np.ndarray]:
    """The unit cube: always 12 faces; a finer tessellation of a box adds tokens but no shape."""
    box = trimesh.creation.box(extents=(1.0, 1.0, 1.0))
    return _oriented(box.vertices, box.faces)


def _octahedron() -> tuple[np.ndarray, np.ndarray]:
    vertices = np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]], float)
    faces = np.array([(x, y, z) for x in (0, 1) for y in (2, 3) for z in (4, 5)])
    return _oriented_each(vertices, faces)


def _oriented_each(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Orient each face of a convex polyhedron around the origin outwards."""
    v0, v1, v2 = (vertices[faces[:, i]] for i in range(3))
    outward = np.einsum("ij,ij->i", np.cross(v1 - v0, v2 - v0), v0 + v1 + v2) > 0
    return vertices, np.where(outward[:, None], faces, faces[:, ::-1])


def _geodesic(base: tuple[np.ndarray, np.ndarray], n: int) -> tuple[np.ndarray, np.ndarray]:
    """Each face of a convex polyhedron cut into n^2 triangles, projected onto the sphere of radius 0.5."""
    corners, base_faces = base
    keys: dict[tuple[tuple[int, int], ...], int] = {}
    points: list[np.ndarray] = []

    def vertex(weights: tuple[tuple[int, int], ...]) -> int:
        # the key is the exact integer barycentric combination of base corners, so points on shared
        # edges merge without a floating-point tolerance
        key = tuple(sorted((corner, w) for corner, w in weights if w))
        if key not in keys:
            keys[key] = len(points)
            points.append(sum(w * corners[corner] for corner, w in key) / n)
        return keys[key]

    faces = []
    for a, b, c in base_faces:
        grid = {(i, j): vertex(((a, n - i - j), (b, i), (c, j))) for i in range(n + 1) for j in range(n + 1 - i)}
        for i in range(n):
            for j in range(n - i):
                faces.append((grid[i, j], grid[i + 1, j], grid[i, j + 1]))
                if i + j < n - 1:
                    faces.append((grid[i + 1, j], grid[i + 1, j + 1], grid[i, j + 1]))
    vertices = np.array(points)
    vertices *= 0.5 / np.linalg.norm(vertices, axis=1, keepdims=True)
    return _oriented(vertices, np.array(faces))


def sphere(max_faces: int) -> tuple[np.ndarray, np.ndarray]:
    """Sphere of diameter 1: geodesic where its face counts fit the budget well, else a UV sphere.

    Icosahedral geodesics (20 n^2 faces) are the most even; octahedral ones (8 n^2) fill some gaps
    between them; a UV sphere (2 s (r - 1) faces) fits any budget but has thin triangles at its poles.
    """
    ico = trimesh.creation.icosahedron()
    options = [("ico", n, 0) for n in range(1, 12)] + [("octa", n, 0) for n in range(1, 18)]
    options += [("uv", s, r) for r in range(2, 24) for s in [max_faces // (2 * (r - 1))] if s >= 4]

    def count(option):
        kind, a, b = option
        return 20 * a * a if kind == "ico" else 8 * a * a if kind == "octa" else 2 * a * (b - 1)

    def irregularity(option):
        kind, a, b = option
        if kind == "uv":  # pole slivers and unequal bands
            return 0.7 + _mismatch(math.pi / a, 0.5 * math.pi / b)
        return 0.0 if kind == "ico" else 0.35  # octahedral geodesics vary more in triangle size

    kind, a, b = pick_resolution(options, max_faces, count, irregularity)
    if kind == "ico":
        return _geodesic((np.asarray(ico.vertices), np.asarray(ico.faces)), a)
    if kind == "octa":
        return _geodesic(_octahedron(), a)
    theta = math.pi * np.arange(b + 1) / b
    profile = np.column_stack([0.5 * np.sin(theta), -0.5 * np.cos(theta)])
    profile[[0, -1], 0] = 0.0  # exactly on the axis (sin(pi) is not 0 in floating point)
    return lathe(profile, a)


# ---- solids of revolution ----------------------------------------------------------------------

def lathe(profile: np.ndarray, sections: int) -> tuple[np.ndarray, np.ndarray]:
    """Revolve a (radius, z) profile whose first and last points lie on the axis about z.

    Interior profile points become rings of `sections` vertices joined by quads; the two axis
    points become poles with triangle fans: 2 * sections * (len(profile) - 2) faces.
    """
    profile = np.asarray(profile, float)
    if profile[0, 0] != 0 or profile[-1, 0] != 0 or np.any(profile[1:-1, 0] <= 0):
        raise ValueError("a lathe profile must start and end on the axis and stay off it in between")
    rings = profile[1:-1]
    phi = 2 * math.pi * np.arange(sections) / sections
    ring_xyz = np.stack([rings[:, None, 0] * np.cos(phi), rings[:, None, 0] * np.sin(phi),
                         np.broadcast_to(rings[:, None, 1], (len(rings), sections))], -1).reshape(-1, 3)
    bottom, top = len(ring_xyz), len(ring_xyz) + 1
    vertices = np.vstack([ring_xyz, [[0, 0, profile[0, 1]], [0, 0, profile[-1, 1]]]])
    j = np.arange(sections)
    k = (j + 1) % sections
    faces = [np.stack([np.full(sections, bottom), k, j], -1)]
    for ring in range(len(rings) - 1):
        a, b = ring * sections + j, ring * sections + k
        faces += [np.stack([a, b, b + sections], -1), np.stack([a, b + sections, a + sections], -1)]
    last = (len(rings) - 1) * sections
    faces.append(np.stack([last + j, last + k, np.full(sections, top)], -1))
    return _oriented(vertices, np.concatenate(faces))


def cylinder(max_faces: int) -> tuple[np.ndarray, np.ndarray]:
    """Cylinder of diameter 1 and height 1: `s` sections, `h` side stacks, `c` rings per cap."""
    def count(p):
        s, h, c = p
        return 2 * s * (2 * c + h - 1)

    def irregularity(p):
        s, h, c = p
        return _mismatch(math.pi / s, 1.0 / h, 0.5 / c)

    # sections are the fine control: for each (stacks, rings) take as many as fit
    candidates = [(max_faces // (2 * (2 * c + h - 1)), h, c) for h in range(1, 40) for c in range(1, 20)]
    candidates = [p for p in candidates if p[0] >= 8]
    s, h, c = pick_resolution(candidates, max_faces, count, irregularity)
    cap = [(0.5 * i / c, -0.5) for i in range(c + 1)]
    side = [(0.5, -0.5 + i / h) for i in range(1, h + 1)]
    top = [(0.5 * (c - i) / c, 0.5) for i in range(1, c + 1)]
    return lathe(np.array(cap + side + top), s)


def cone(max_faces: int) -> tuple[np.ndarray, np.ndarray]:
    """Cone of base diameter 1 and height 1: `s` sections, `h` slant stacks, `c` base rings."""
    slant = math.hypot(0.5, 1.0)

    def count(p):
        s, h, c = p
        return 2 * s * (c + h - 1)

    def irregularity(p):
        s, h, c = p
        return _mismatch(math.pi / s, slant / h, 0.5 / c)

    candidates = [(max_faces // (2 * (c + h - 1)), h, c) for h in range(1, 40) for c in range(1, 20)]
    candidates = [p for p in candidates if p[0] >= 8]
    s, h, c = pick_resolution(candidates, max_faces, count, irregularity)
    base = [(0.5 * i / c, -0.5) for i in range(c + 1)]
    side = [(0.5 * (1 - i / h), -0.5 + i / h) for i in range(1, h + 1)]
    return lathe(np.array(base + side), s)


# ---- tubes: torus and torus knot ---------------------------------------------------------------

def _closed_tube(centres: np.ndarray, normals: np.ndarray, binormals: np.ndarray, radius: float,
                 around: int) -> tuple[np.ndarray, np.ndarray]:
    """A tube of `around` sides along a closed curve sampled at `centres` with the given frames."""
    n = len(centres)
    phi = 2 * math.pi * np.arange(around) / around
    ring = np.cos(phi)[None, :, None] * normals[:, None] + np.sin(phi)[None, :, None] * binormals[:, None]
    vertices = (centres[:, None] + radius * ring).reshape(-1, 3)
    i, j = np.meshgrid(np.arange(n), np.arange(around), indexing="ij")
    a = i * around + j
    b = ((i + 1) % n) * around + j
    c = ((i + 1) % n) * around + (j + 1) % around
    d = i * around + (j + 1) % around
    faces = np.concatenate([np.stack([a, b, c], -1).reshape(-1, 3), np.stack([a, c, d], -1).reshape(-1, 3)])
    return _oriented(vertices, faces)


def _tube_resolution(max_faces: int, length: float, radius: float, min_around: int,
                     min_along: int) -> tuple[int, int]:
    """(along, around) for a closed tube of that centre-line length and radius within the budget."""
    def count(p):
        return 2 * p[0] * p[1]

    def irregularity(p):
        return _mismatch(length / p[0], 2 * math.pi * radius / p[1])

    # sections along the centre line are the fine control: for each `around` take as many as fit
    candidates = [(max_faces // (2 * around), around) for around in range(min_around, max_faces // (2 * min_along) + 1)]
    return pick_resolution(candidates, max_faces, count, irregularity)


def torus(max_faces: int) -> tuple[np.ndarray, np.ndarray]:
    """Torus about z with outer diameter 1 and tube radius TORUS_TUBE_RATIO x ring radius."""
    tube = TORUS_RING_RADIUS * TORUS_TUBE_RATIO
    along, around = _tube_resolution(max_faces, 2 * math.pi * TORUS_RING_RADIUS, tube, 4, 6)
    t = 2 * math.pi * np.arange(along) / along
    radial = np.stack([np.cos(t), np.sin(t), np.zeros_like(t)], -1)
    up = np.broadcast_to([0.0, 0.0, 1.0], radial.shape)
    return _closed_tube(TORUS_RING_RADIUS * radial, radial, up, tube, around)


def _knot_curve(t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Points and unit tangents of the (KNOT_P, KNOT_Q) torus knot at parameters t."""
    p, q = KNOT_P, KNOT_Q
    r = 2 + np.cos(q * t)
    points = np.stack([r * np.cos(p * t), r * np.sin(p * t), -np.sin(q * t)], -1)
    dr = -q * np.sin(q * t)
    tangents = np.stack([dr * np.cos(p * t) - p * r * np.sin(p * t), dr * np.sin(p * t) + p * r * np.cos(p * t),
                         -q * np.cos(q * t)], -1)
    return points, tangents / np.linalg.norm(tangents, axis=1, keepdims=True)


def torus_knot(max_faces: int) -> tuple[np.ndarray, np.ndarray]:
    """A tube along the trefoil knot, vertices spaced evenly by arc length."""
    dense = np.linspace(0, 2 * math.pi, 4097)
    points, _ = _knot_curve(dense)
    arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(points, axis=0), axis=1))])
    along, around = _tube_resolution(max_faces, arc[-1], KNOT_TUBE_RADIUS, 3, 16)
    t = np.interp(arc[-1] * np.arange(along) / along, arc, dense)
    centres, tangents = _knot_curve(t)
    # the knot's tangent is never vertical (its xy speed is at least 2), so frames built from the
    # z axis are smooth and close up without the twist a parallel-transport frame would need fixing
    normals = np.cross(tangents, [0.0, 0.0, 1.0])
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    return _closed_tube(centres, normals, np.cross(tangents, normals), KNOT_TUBE_RADIUS, around)


# ---- gear --------------------------------------------------------------------------------------

def _gear_outline(per_tooth: int) -> np.ndarray:
    """Counter-clockwise outline (n, 2) starting at angle 0: `per_tooth` points per tooth.

    Two points per tooth give pointed teeth (the smallest budget); four or more give flat-topped
    teeth whose flanks and lands are subdivided in proportion to their lengths.
    """
    period = 2 * math.pi / GEAR_TEETH

    def polar(angle, radius):
        return np.array([radius * math.cos(angle), radius * math.sin(angle)])

    if per_tooth == 2:
        tooth = [polar(0, GEAR_ROOT), polar(period / 2, GEAR_TIP)]
        return np.array([[math.cos(k * period) * x - math.sin(k * period) * y,
                          math.sin(k * period) * x + math.cos(k * period) * y]
                         for k in range(GEAR_TEETH) for x, y in tooth])
    corners = [(0.0, GEAR_ROOT), (GEAR_FLANK, GEAR_TIP), (GEAR_FLANK + GEAR_LAND, GEAR_TIP),
               (2 * GEAR_FLANK + GEAR_LAND, GEAR_ROOT), (1.0, GEAR_ROOT)]
    segments = list(zip(corners[:-1], corners[1:]))

    def length(seg):
        (f0, r0), (f1, r1) = seg
        return float(np.linalg.norm(polar(f1 * period, r1) - polar(f0 * period, r0)))

    # share the extra points among the four segments by length (largest remainder, deterministic)
    lengths = np.array([length(seg) for seg in segments])
    quota = (per_tooth - 4) * lengths / lengths.sum()
    extra = np.floor(quota).astype(int)
    for i in np.argsort(-(quota - extra), kind="stable")[: per_tooth - 4 - extra.sum()]:
        extra[i] += 1
    outline = []
    for k in range(GEAR_TEETH):
        for ((f0, r0), (f1, r1)), n_extra in zip(segments, extra):
            for m in range(n_extra + 1):
                s = m / (n_extra + 1)
                if r0 == r1:  # a land: an arc of the tip or root circle
                    outline.append(polar((k + f0 + s * (f1 - f0)) * period, r0))
                else:  # a flank: a straight edge
                    a, b = polar((k + f0) * period, r0), polar((k + f1) * period, r1)
                    outline.append(a + s * (b - a))
    return np.array(outline)


def _zip_rings(outer_angles: np.ndarray, inner_angles: np.ndarray) -> list[tuple[str, int, str, int, str, int]]:
    """Triangulate the band between two rings, each sorted by angle from 0, counter-clockwise.

    Walks both rings in angle order, always advancing the one whose next point comes first, so every
    triangle spans a thin angular sector: valid for rings star-shaped about the centre.
    """
    n, m = len(outer_angles), len(inner_angles)
    outer_next = np.append(outer_angles[1:], 2 * math.pi)
    inner_next = np.append(inner_angles[1:], 2 * math.pi)
    i = j = 0
    triangles = []
    while i < n or j < m:
        if j == m or (i < n and outer_next[i] <= inner_next[j]):
            triangles.append(("in", j % m, "out", i, "out", (i + 1) % n))
            i += 1
        else:
            triangles.append(("in", j, "out", i % n, "in", (j + 1) % m))
            j += 1
    return triangles


def gear(max_faces: int) -> tuple[np.ndarray, np.ndarray]:
    """A 12-tooth spur gear: the outline extruded along z, flat triangulated faces top and bottom.

    Resolution: `k` outline points per tooth, `h` stacks on the side wall and either a fan from the
    centre (hub = 0) or a band to a hub circle of `hub` points and a fan from that circle.
    """
    perimeter = float(np.linalg.norm(np.diff(_gear_outline(4), axis=0, append=_gear_outline(4)[:1]), axis=1).sum())

    def count(p):
        k, h, hub = p
        n = GEAR_TEETH * k
        return 2 * n * h + (2 * n if hub == 0 else 2 * (n + 2 * hub))

    def irregularity(p):
        k, h, hub = p
        edge = perimeter / (GEAR_TEETH * k)
        if hub:
            return _mismatch(edge, GEAR_THICKNESS / h, 2 * math.pi * GEAR_HUB / hub)
        # a fan from the centre makes slivers; pointed teeth only where flat-topped ones do not fit
        return _mismatch(edge, GEAR_THICKNESS / h) + 1.0 + (10.0 if k == 2 else 0.0)

    candidates = [(k, h, hub) for k in [2, *range(4, 64)] for h in range(1, 16)
                  for hub in [0, *range(GEAR_TEETH, 12 * GEAR_TEETH + 1, GEAR_TEETH)]
                  if count((k, h, hub)) <= max_faces and not (hub and k == 2)]
    k, h, hub = pick_resolution(candidates, max_faces, count, irregularity)
    outline = _gear_outline(k)
    n = len(outline)
    z = GEAR_THICKNESS * (np.arange(h + 1) / h - 0.5)
    wall = np.concatenate([np.column_stack([outline, np.full(n, zi)]) for zi in z])
    i = np.arange(n)
    nxt = (i + 1) % n
    faces = []
    for level in range(h):
        a, b = level * n + i, level * n + nxt
        faces += [np.stack([a, b, b + n], -1), np.stack([a, b + n, a + n], -1)]
    vertices = [wall]
    base = len(wall)
    for cap, zc in ((0, z[0]), (1, z[-1])):
        ring = (0 if cap == 0 else h * n) + i  # this cap's outline vertices on the wall
        if hub == 0:
            centre = base
            vertices.append([[0.0, 0.0, zc]])
            base += 1
            cap_faces = np.stack([np.full(n, centre), ring, ring[nxt]], -1)
        else:
            phi = 2 * math.pi * np.arange(hub) / hub
            hub_ring = base + np.arange(hub)
            centre = base + hub
            vertices += [np.column_stack([GEAR_HUB * np.cos(phi), GEAR_HUB * np.sin(phi), np.full(hub, zc)]),
                         [[0.0, 0.0, zc]]]
            base += hub + 1
            angles = np.mod(np.arctan2(outline[:, 1], outline[:, 0]), 2 * math.pi)
            lookup = {"out": ring, "in": hub_ring}
            band = [(lookup[r0][i0], lookup[r1][i1], lookup[r2][i2])
                    for r0, i0, r1, i1, r2, i2 in _zip_rings(angles, phi)]
            j = np.arange(hub)
            cap_faces = np.concatenate([np.array(band), np.stack([np.full(hub, centre), hub_ring[j],
                                                                  hub_ring[(j + 1) % hub]], -1)])
        faces.append(cap_faces[:, ::-1] if cap == 0 else cap_faces)  # the bottom faces down
    # the band's triangles between a flank and the hub are thin: flips within the flat caps fix them
    return _oriented(*flip_slivers(np.vstack(vertices), np.concatenate(faces)))


# ---- Menger sponge -----------------------------------------------------------------------------

def _sponge_cells() -> np.ndarray:
    """Level-1 Menger sponge: the 20 of 27 unit cells with at most one coordinate in the middle."""
    return np.array([(x, y, z) for x, y, z in np.ndindex(3, 3, 3) if (x == 1) + (y == 1) + (z == 1) <= 1])


def _quad_corners(axis: int, side: int) -> tuple[int, int, bool]:
    """In-plane axes (u, v) of a cell face and whether (u, v) order must be reversed to face outward."""
    u, v = [a for a in range(3) if a != axis]
    right_handed = (u, v, axis) in ((0, 1, 2), (1, 2, 0), (2, 0, 1))  # e_u x e_v = +e_axis
    return u, v, right_handed != bool(side)


def sponge(max_faces: int) -> tuple[np.ndarray, np.ndarray]:
    """Level-1 Menger sponge (genus 5) with its faces cut into a grid that fits the budget.

    Each unit cell edge along axis a is cut into s_a pieces (s_x >= s_y >= s_z, differing by at
    most one): 48 (s_x s_y + s_y s_z + s_z s_x) faces. The smallest budget instead gets 96 faces:
    each outer face as a square ring of 8 triangles and each tunnel wall as 2.
    """
    options = [(sx, sy, sz) for sx in range(1, 12) for sy in range(1, sx + 1) for sz in range(1, sy + 1)
               if sx - sz <= 1]
    fitting = [s for s in options if 48 * (s[0] * s[1] + s[1] * s[2] + s[2] * s[0]) <= max_faces]
    if not fitting:
        return _sponge_coarse()
    steps = max(fitting, key=lambda s: (s[0] * s[1] + s[1] * s[2] + s[2] * s[0], -s[0]))
    filled = np.zeros((3, 3, 3), bool)
    filled[tuple(_sponge_cells().T)] = True
    keys: dict[tuple[int, int, int], int] = {}
    faces = []

    def vid(point):
        return keys.setdefault(point, len(keys))

    for cell in _sponge_cells():
        for axis in range(3):
            for side in (0, 1):
                neighbour = cell.copy()
                neighbour[axis] += 1 if side else -1
                if np.all((neighbour >= 0) & (neighbour < 3)) and filled[tuple(neighbour)]:
                    continue
                u, v, flip = _quad_corners(axis, side)
                for du in range(steps[u]):
                    for dv in range(steps[v]):
                        corners = []
                        for cu, cv in ((0, 0), (1, 0), (1, 1), (0, 1)):
                            # vertices live on the refined integer lattice: exact, shared keys
                            point = [0, 0, 0]
                            point[axis] = (cell[axis] + side) * steps[axis]
                            point[u] = cell[u] * steps[u] + du + cu
                            point[v] = cell[v] * steps[v] + dv + cv
                            corners.append(vid(tuple(point)))
                        if flip:
                            corners = corners[::-1]
                        faces += [corners[:3], [corners[0], corners[2], corners[3]]]
    lattice = np.array(list(keys), float)
    vertices = lattice / np.array(steps, float)
    return _oriented(vertices, np.array(faces))


def _sponge_coarse() -> tuple[np.ndarray, np.ndarray]:
    """The 96-face level-1 sponge: no vertex but the cube's and the tunnels' corners."""
    keys: dict[tuple[int, int, int], int] = {}
    faces = []

    def vid(point):
        return keys.setdefault(tuple(int(c) for c in point), len(keys))

    for axis in range(3):
        for side in (0, 1):
            u, v, flip = _quad_corners(axis, side)
            outer_uv = [(0, 0), (3, 0), (3, 3), (0, 3)]
            hole_uv = [(1, 1), (2, 1), (2, 2), (1, 2)]

            def lift(uv, depth):
                point = [0, 0, 0]
                point[axis], point[u], point[v] = depth, uv[0], uv[1]
                return vid(point)

            face_depth = 3 * side
            outer = [lift(p, face_depth) for p in outer_uv]
            hole = [lift(p, face_depth) for p in hole_uv]
            ring = []
            for k in range(4):  # the square ring around the tunnel mouth
                ring += [(outer[k], outer[(k + 1) % 4], hole[(k + 1) % 4]), (outer[k], hole[(k + 1) % 4], hole[k])]
            # the tunnel from this face to the central cavity: its walls face into the tunnel
            inner_depth = 1 if side == 0 else 2
            deep = [lift(p, inner_depth) for p in hole_uv]
            for k in range(4):
                ring += [(hole[k], hole[(k + 1) % 4], deep[(k + 1) % 4]), (hole[k], deep[(k + 1) % 4], deep[k])]
            faces += [tri[::-1] for tri in ring] if flip else ring
    vertices = np.array(list(keys), float)
    return _oriented(vertices, np.array(faces))


BUILDERS: dict[str, Callable[[int], tuple[np.ndarray, np.ndarray]]] = {
    "cube": cube, "cylinder": cylinder, "sphere": sphere, "cone": cone, "torus": torus, "gear": gear,
    "torus_knot": torus_knot, "sponge": sponge,
}
