"""The 11 KuBasic-like shapes, built procedurally as closed meshes at a face budget.

KuBasic's files cannot be downloaded here, so each shape is made in code. Parametric shapes
(cube, sphere, cylinder, cone, torus, gear, torus knot, sponge) are generated directly at the
resolution that fits the budget, which guarantees closed, consistently oriented meshes. The
organic ones (spot, a cow-like figure; suzanne, a monkey-head-like head; teapot, the Utah teapot's
silhouette: body and lid as a solid of revolution, a curved spout and a ring handle) are implicit
surfaces (smooth unions of primitives) meshed by marching cubes and reduced to the budget by
quadric decimation, keeping only results that are still closed.

Every mesh is scaled so the largest side of its bounding box is 1 and translated so its centre of
mass (uniform density) is at the origin.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import trimesh

SHAPE_NAMES: tuple[str, ...] = ("cube", "cylinder", "sphere", "cone", "torus", "gear", "torus_knot", "sponge",
                                "spot", "teapot", "suzanne")
TORUS_TUBE_RATIO = 0.25  # tube radius / ring radius: a wide hole that small objects fall through

_MIN_FACES = {"cube": 12, "cylinder": 24, "sphere": 20, "cone": 12, "torus": 64, "gear": 48, "torus_knot": 96,
              "sponge": 144, "spot": 144, "teapot": 144, "suzanne": 144}


def min_faces(name: str) -> int:
    """The smallest face budget shape `name` can be built at."""
    _check_name(name)
    return _MIN_FACES[name]


def _check_name(name: str) -> None:
    if name not in SHAPE_NAMES:
        raise ValueError(f"unknown shape {name!r}; valid shapes: {', '.join(SHAPE_NAMES)}")


def make_shape(name: str, max_faces: int) -> trimesh.Trimesh:
    """Closed, outward-oriented mesh of `name` with at most `max_faces` faces, normalised (see module doc)."""
    _check_name(name)
    if max_faces < _MIN_FACES[name]:
        raise ValueError(f"shape {name!r} needs a face budget of at least {_MIN_FACES[name]}, got {max_faces}")
    vertices, faces = _cached(name, int(max_faces))
    return trimesh.Trimesh(vertices.copy(), faces.copy(), process=False)


@functools.lru_cache(maxsize=128)
def _cached(name: str, max_faces: int) -> tuple[np.ndarray, np.ndarray]:
    mesh = _BUILDERS[name](max_faces)
    mesh = _normalise(mesh)
    if not (mesh.is_watertight and mesh.is_winding_consistent and mesh.volume > 0):
        raise RuntimeError(f"internal error: {name} at {max_faces} faces is not a closed outward mesh")
    if len(mesh.faces) > max_faces:
        raise RuntimeError(f"internal error: {name} has {len(mesh.faces)} > {max_faces} faces")
    vertices = np.ascontiguousarray(mesh.vertices, dtype=np.float64)
    faces = np.ascontiguousarray(mesh.faces, dtype=np.int64)
    vertices.setflags(write=False)
    faces.setflags(write=False)
    return vertices, faces


def _normalise(mesh: trimesh.Trimesh) -> trimesh.Trimesh:
    mesh = trimesh.Trimesh(np.asarray(mesh.vertices, np.float64), np.asarray(mesh.faces, np.int64), process=True)
    if mesh.volume < 0:
        mesh.invert()
    mesh.apply_scale(1.0 / mesh.extents.max())
    mesh.apply_translation(-mesh.center_mass)
    return mesh


# ---- parametric shapes -------------------------------------------------------------------------

def _cube(max_faces: int) -> trimesh.Trimesh:
    return trimesh.creation.box(extents=(1.0, 1.0, 1.0))


def _sphere(max_faces: int) -> trimesh.Trimesh:
    level = int(math.floor(math.log(max_faces / 20, 4)))  # an icosphere has 20 * 4^level faces
    return trimesh.creation.icosphere(subdivisions=max(0, min(level, 5)), radius=0.5)


def _cylinder(max_faces: int) -> trimesh.Trimesh:
    return trimesh.creation.cylinder(radius=0.5, height=1.0, sections=min(max_faces // 4, 256))


def _cone(max_faces: int) -> trimesh.Trimesh:
    return trimesh.creation.cone(radius=0.5, height=1.0, sections=min(max_faces // 2, 512))


def _torus(max_faces: int) -> trimesh.Trimesh:
    minor = max(4, int(math.sqrt(max_faces / 4)))  # ring sections = 2 x tube sections
    major = max(8, max_faces // (2 * minor))
    ring = 0.4
    return trimesh.creation.torus(major_radius=ring, minor_radius=ring * TORUS_TUBE_RATIO,
                                  major_sections=major, minor_sections=minor)


def _grid_tube(centres: np.ndarray, normals: np.ndarray, binormals: np.ndarray, radius: float,
               around: int) -> trimesh.Trimesh:
    """A closed tube of `around` sides along a closed curve with the given frames."""
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
    mesh = trimesh.Trimesh(vertices, faces, process=False)
    if mesh.volume < 0:
        mesh.invert()
    return mesh


def _torus_knot(max_faces: int) -> trimesh.Trimesh:
    around = max(3, min(12, int(math.sqrt(max_faces / 12))))
    along = max_faces // (2 * around)
    t = 2 * math.pi * np.arange(along) / along
    p, q = 2, 3  # the trefoil
    r = 2 + np.cos(q * t)
    curve = np.stack([r * np.cos(p * t), r * np.sin(p * t), -np.sin(q * t)], -1)
    tangent = np.roll(curve, -1, 0) - np.roll(curve, 1, 0)
    tangent /= np.linalg.norm(tangent, axis=1, keepdims=True)
    # frames from the curve's offset to the origin's axis keep the tube twist-free enough and closed
    normal = np.cross(tangent, np.array([0.0, 0.0, 1.0]))
    normal /= np.linalg.norm(normal, axis=1, keepdims=True)
    binormal = np.cross(tangent, normal)
    return _grid_tube(curve, normal, binormal, 0.55, around)


def _gear(max_faces: int) -> trimesh.Trimesh:
    if max_faces >= 192:
        teeth, profile = 12, np.array([1.0, 1.0, 0.78, 0.78])  # square teeth: 4 outline points each
        offsets = np.array([0.0, 0.35, 0.5, 0.85])
    else:
        teeth, profile, offsets = max(6, min(12, max_faces // 8)), np.array([1.0, 0.78]), np.array([0.0, 0.5])
    angle = (2 * math.pi / teeth) * (np.arange(teeth)[:, None] + offsets[None, :]).reshape(-1)
    radius = 0.5 * np.tile(profile, teeth)
    outline = np.stack([radius * np.cos(angle), radius * np.sin(angle)], -1)
    n = len(outline)
    half = 0.15
    bottom = np.column_stack([outline, np.full(n, -half)])
    top = np.column_stack([outline, np.full(n, half)])
    vertices = np.vstack([bottom, top, [[0, 0, -half], [0, 0, half]]])
    cb, ct = 2 * n, 2 * n + 1
    i = np.arange(n)
    k = (i + 1) % n
    faces = np.concatenate([
        np.stack([np.full(n, ct), n + i, n + k], -1),  # top fan (outline is counter-clockwise)
        np.stack([np.full(n, cb), k, i], -1),  # bottom fan
        np.stack([i, k, n + k], -1),
        np.stack([i, n + k, n + i], -1),
    ])
    return trimesh.Trimesh(vertices, faces, process=False)


def _sponge(max_faces: int) -> trimesh.Trimesh:
    """Menger sponge, level 1: the 20 of 27 unit voxels with at most one centred coordinate."""
    filled = np.zeros((3, 3, 3), bool)
    for x, y, z in np.ndindex(3, 3, 3):
        filled[x, y, z] = (x == 1) + (y == 1) + (z == 1) <= 1
    vertex_index: dict[tuple[int, int, int], int] = {}
    faces = []

    def vid(p):
        return vertex_index.setdefault(p, len(vertex_index))

    for x, y, z in zip(*np.nonzero(filled)):
        for axis in range(3):
            for side in (0, 1):
                nb = [x, y, z]
                nb[axis] += 1 if side else -1
                if all(0 <= c < 3 for c in nb) and filled[tuple(nb)]:
                    continue
                u, v = [a for a in range(3) if a != axis]
                corners = []
                for du, dv in ((0, 0), (1, 0), (1, 1), (0, 1)):
                    p = [x, y, z]
                    p[axis] += side
                    p[u] += du
                    p[v] += dv
                    corners.append(vid(tuple(int(c) for c in p)))
                # orientation: (u, v, axis) right-handed? flip so normals point out of the voxel
                right_handed = (u, v, axis) in ((0, 1, 2), (1, 2, 0), (2, 0, 1))
                if right_handed != bool(side):
                    corners = corners[::-1]
                faces += [[corners[0], corners[1], corners[2]], [corners[0], corners[2], corners[3]]]
    vertices = np.zeros((len(vertex_index), 3))
    for p, i in vertex_index.items():
        vertices[i] = p
    return trimesh.Trimesh(vertices, np.array(faces), process=False)


# ---- implicit shapes ---------------------------------------------------------------------------

def _smooth_union(d1: np.ndarray, d2: np.ndarray, k: float) -> np.ndarray:
    h = np.clip(0.5 + 0.5 * (d2 - d1) / k, 0.0, 1.0)
    return d2 * (1 - h) + d1 * h - k * h * (1 - h)


def _ellipsoid(p: np.ndarray, centre, radii) -> np.ndarray:
    q = (p - np.asarray(centre)) / np.asarray(radii)
    k = np.linalg.norm(q, axis=-1)
    return (k - 1.0) * min(radii)


def _capsule(p: np.ndarray, a, b, r: float) -> np.ndarray:
    a, b = np.asarray(a, float), np.asarray(b, float)
    pa, ba = p - a, b - a
    h = np.clip((pa @ ba) / (ba @ ba), 0.0, 1.0)
    return np.linalg.norm(pa - h[..., None] * ba, axis=-1) - r


def _torus_sdf(p: np.ndarray, centre, ring: float, tube: float, axis: int) -> np.ndarray:
    q = p - np.asarray(centre)
    plane = [a for a in range(3) if a != axis]
    radial = np.linalg.norm(q[..., plane], axis=-1) - ring
    return np.sqrt(radial**2 + q[..., axis] ** 2) - tube


def _spot_sdf(p):
    d = _ellipsoid(p, (0, 0, 0.05), (0.55, 0.28, 0.25))  # body along x
    d = _smooth_union(d, _ellipsoid(p, (0.62, 0, 0.22), (0.2, 0.15, 0.16)), 0.08)  # head
    d = _smooth_union(d, _ellipsoid(p, (0.78, 0, 0.17), (0.09, 0.11, 0.09)), 0.04)  # muzzle
    for x in (-0.35, 0.35):
        for y in (-0.15, 0.15):
            d = _smooth_union(d, _capsule(p, (x, y, -0.05), (x, y, -0.42), 0.085), 0.05)  # legs
    for y in (-1, 1):
        d = _smooth_union(d, _capsule(p, (0.6, 0.08 * y, 0.34), (0.6, 0.2 * y, 0.45), 0.035), 0.02)  # horns
        d = _smooth_union(d, _ellipsoid(p, (0.55, 0.2 * y, 0.28), (0.04, 0.1, 0.04)), 0.02)  # ears
    return _smooth_union(d, _capsule(p, (-0.55, 0, 0.15), (-0.68, 0, -0.15), 0.025), 0.03)  # tail


def _suzanne_sdf(p):
    d = _ellipsoid(p, (0, 0, 0), (0.42, 0.38, 0.45))  # skull (y: front/back, face towards -y)
    d = _smooth_union(d, _ellipsoid(p, (0, -0.3, -0.15), (0.28, 0.16, 0.18)), 0.08)  # muzzle
    d = _smooth_union(d, _ellipsoid(p, (0, -0.24, 0.14), (0.36, 0.12, 0.1)), 0.06)  # brow
    for x in (-1, 1):
        d = _smooth_union(d, _ellipsoid(p, (0.5 * x, 0.02, 0.05), (0.16, 0.05, 0.2)), 0.05)  # ears
        d = np.maximum(d, -_ellipsoid(p, (0.14 * x, -0.36, 0.04), (0.09, 0.06, 0.08)))  # eye sockets
    return d


def _teapot_sdf(p):
    # body and lid: a solid of revolution about z, the profile of the Utah teapot's body patches
    r = np.linalg.norm(p[..., :2], axis=-1)
    z = p[..., 2]
    profile_z = np.array([0.0, 0.05, 0.25, 0.45, 0.62, 0.7, 0.78, 0.84, 0.88])
    profile_r = np.array([0.5, 0.62, 0.7, 0.66, 0.55, 0.45, 0.2, 0.08, 0.0])
    body = np.where((z >= 0) & (z <= 0.88), r - np.interp(z, profile_z, profile_r), 0.1)
    body = np.maximum(body, np.maximum(-z, z - 0.88))
    d = body
    d = _smooth_union(d, _ellipsoid(p, (0, 0, 0.9), (0.07, 0.07, 0.06)), 0.03)  # lid knob
    # spout: a capsule chain rising away from the body on +x
    d = _smooth_union(d, _capsule(p, (0.55, 0, 0.25), (0.85, 0, 0.5), 0.09), 0.06)
    d = _smooth_union(d, _capsule(p, (0.85, 0, 0.5), (1.0, 0, 0.66), 0.06), 0.03)
    # handle: a ring on -x in the x-z plane
    return _smooth_union(d, _torus_sdf(p, (-0.72, 0, 0.42), 0.2, 0.05, axis=1), 0.04)


_IMPLICIT = {
    "spot": (_spot_sdf, (-0.85, -0.45, -0.55), (0.95, 0.45, 0.6)),
    "suzanne": (_suzanne_sdf, (-0.75, -0.6, -0.6), (0.75, 0.55, 0.6)),
    "teapot": (_teapot_sdf, (-1.05, -0.8, -0.1), (1.15, 0.8, 1.05)),
}


def _implicit(name: str, max_faces: int) -> trimesh.Trimesh:
    from skimage import measure

    sdf, low, high = _IMPLICIT[name]
    resolution = 56
    axes = [np.linspace(lo, hi, resolution) for lo, hi in zip(low, high)]
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), -1)
    values = sdf(grid.reshape(-1, 3)).reshape(grid.shape[:-1])
    values = np.pad(values, 1, constant_values=1.0)  # closed at the box boundary
    spacing = [(hi - lo) / (resolution - 1) for lo, hi in zip(low, high)]
    verts, faces, _, _ = measure.marching_cubes(values, level=0.0, spacing=spacing)
    verts = verts - np.asarray(spacing) + np.asarray(low)
    mesh = trimesh.Trimesh(verts, faces, process=True)
    mesh.update_faces(mesh.nondegenerate_faces())
    mesh.remove_unreferenced_vertices()
    # marching cubes can leave slivers beside the surface: keep the one closed body
    mesh = max(mesh.split(only_watertight=False), key=lambda part: len(part.faces))
    if mesh.volume < 0:
        mesh.invert()
    return _decimate(mesh, max_faces, name)


def _decimate(mesh: trimesh.Trimesh, max_faces: int, name: str) -> trimesh.Trimesh:
    import fast_simplification

    if len(mesh.faces) <= max_faces:
        return mesh
    target = max_faces
    for _ in range(12):
        reduction = 1.0 - target / len(mesh.faces)
        points, faces = fast_simplification.simplify(np.asarray(mesh.vertices, np.float32),
                                                     np.asarray(mesh.faces, np.int32), target_reduction=reduction)
        out = trimesh.Trimesh(points.astype(np.float64), faces, process=True)
        out.update_faces(out.nondegenerate_faces())
        out.remove_unreferenced_vertices()
        parts = out.split(only_watertight=False)
        if parts:
            # a thin feature (a leg, a horn) may pinch off at low budgets: keep the main body
            out = max(parts, key=lambda part: len(part.faces))
        if (len(out.faces) <= max_faces and out.is_watertight and out.is_winding_consistent
                and abs(out.volume) > 0.8 * abs(mesh.volume)):
            if out.volume < 0:
                out.invert()
            return out
        target = int(target * 0.9) if len(out.faces) > max_faces else target - 2
    raise RuntimeError(f"could not decimate {name} to a closed mesh within {max_faces} faces")


_BUILDERS = {
    "cube": _cube, "cylinder": _cylinder, "sphere": _sphere, "cone": _cone, "torus": _torus, "gear": _gear,
    "torus_knot": _torus_knot, "sponge": _sponge,
    "spot": functools.partial(_implicit, "spot"), "suzanne": functools.partial(_implicit, "suzanne"),
    "teapot": functools.partial(_implicit, "teapot"),
}
