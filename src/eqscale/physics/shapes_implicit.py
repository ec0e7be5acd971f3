"""Organic shapes as signed distance fields: marching cubes, then quadric decimation to the budget.

Each field is a smooth union of simple primitives (negative inside). Marching cubes on a grid of
`_RESOLUTION` cells along the longest side gives a fine closed mesh (cached per shape and grid); the
decimators then reduce it to the face budget (`fast_simplification`, finished where needed by the
topology-preserving `shapes_decimate`). A decimated mesh is kept only if it is still one closed,
consistently oriented body with the fine mesh's Euler characteristic (decimation must not close
the teapot's handle), about its volume, no degenerate faces and no self-intersections; otherwise
the target is lowered and, failing that, a coarser grid is tried.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np
import trimesh

from eqscale.physics.sdf import capsule, ellipsoid, smooth_subtract, smooth_union, union
from eqscale.physics.shapes_decimate import collapse_needles, decimate_manifold, flip_slivers
from eqscale.physics.shapes_mesh import mesh_problem, self_intersections
from eqscale.physics.shapes_teapot import TEAPOT_BOUNDS, teapot_sdf

_RESOLUTION = 64  # marching-cubes cells along the longest side: 10-30k faces, far above any budget
_FALLBACK_RESOLUTIONS = (48, 36)
_TARGET_STEPS = 4  # decimation targets tried per grid, each 4% below the last
_FLIP_BEND = 20.0  # degrees: sliver flips may bend the surface this much (the result is re-checked)
_INTERMEDIATE = 3  # fast decimation hands over to the careful one at this many times the budget


# ---- the shapes --------------------------------------------------------------------------------

def spot_sdf(p: np.ndarray) -> np.ndarray:
    """A cartoon cow (Keenan Crane's Spot in spirit): x forward, z up, units ~ body length 1.6."""
    parts = [(ellipsoid(p, (0.0, 0, 0.05), (0.56, 0.30, 0.28)), 0.0)]  # barrel
    parts.append((capsule(p, (0.35, 0, 0.12), (0.58, 0, 0.30), 0.17), 0.08))  # neck
    parts.append((ellipsoid(p, (0.66, 0, 0.32), (0.20, 0.17, 0.19)), 0.06))  # head
    parts.append((ellipsoid(p, (0.84, 0, 0.22), (0.11, 0.14, 0.11)), 0.05))  # muzzle
    for y in (-1, 1):
        parts.append((capsule(p, (0.62, 0.09 * y, 0.44), (0.60, 0.19 * y, 0.58), 0.045, 0.03), 0.03))  # horns
        parts.append((ellipsoid(p, (0.57, 0.21 * y, 0.38), (0.06, 0.11, 0.045)), 0.03))  # ears
        for x in (-0.34, 0.32):
            parts.append((capsule(p, (x, 0.16 * y, -0.02), (x, 0.16 * y, -0.45), 0.095, 0.08), 0.05))  # legs
    parts.append((ellipsoid(p, (-0.22, 0, -0.2), (0.13, 0.11, 0.09)), 0.05))  # udder
    parts.append((capsule(p, (-0.54, 0, 0.18), (-0.63, 0, -0.12), 0.04, 0.035), 0.04))  # tail
    return union(parts)


def suzanne_sdf(p: np.ndarray) -> np.ndarray:
    """A monkey head in the manner of Blender's Suzanne: -y is the face, z up, head height ~0.9."""
    parts = [(ellipsoid(p, (0, 0.05, 0.06), (0.40, 0.38, 0.40)), 0.0)]  # skull
    parts.append((ellipsoid(p, (0, -0.10, -0.12), (0.38, 0.30, 0.28)), 0.10))  # jaw and cheeks
    parts.append((ellipsoid(p, (0, -0.32, -0.20), (0.27, 0.15, 0.14)), 0.07))  # muzzle
    for x in (-1, 1):
        parts.append((ellipsoid(p, (0.15 * x, -0.29, 0.18), (0.17, 0.10, 0.08)), 0.05))  # brow ridge
        parts.append((ellipsoid(p, (0.56 * x, 0.04, 0.10), (0.19, 0.06, 0.15)), 0.07))  # ears
    d = union(parts)
    for x in (-1, 1):
        d = smooth_subtract(d, ellipsoid(p, (0.15 * x, -0.40, 0.03), (0.11, 0.08, 0.09)), 0.02)  # eye sockets
        d = smooth_union(d, ellipsoid(p, (0.15 * x, -0.32, 0.03), (0.08, 0.07, 0.08)), 0.01)  # eyeballs
    return smooth_subtract(d, ellipsoid(p, (0, -0.47, -0.24), (0.16, 0.03, 0.015)), 0.01)  # mouth


# name -> (field, (low, high) corners of a box holding the solid with a margin)
_FIELDS: dict[str, tuple[Callable[[np.ndarray], np.ndarray], tuple]] = {
    "spot": (spot_sdf, ((-0.72, -0.42, -0.58), (1.0, 0.42, 0.68))),
    "suzanne": (suzanne_sdf, ((-0.82, -0.55, -0.42), (0.82, 0.50, 0.52))),
    "teapot": (teapot_sdf, TEAPOT_BOUNDS),
}


# ---- meshing -----------------------------------------------------------------------------------

@functools.lru_cache(maxsize=16)
def fine_mesh(name: str, resolution: int) -> trimesh.Trimesh:
    """Marching-cubes mesh of shape `name` with `resolution` cells along the longest side (cached)."""
    from skimage import measure

    field, bounds = _FIELDS[name]
    low, high = (np.asarray(b, float) for b in bounds)
    step = (high - low).max() / resolution
    counts = np.ceil((high - low) / step).astype(int) + 1
    axes = [low[i] + step * np.arange(counts[i]) for i in range(3)]
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)
    values = field(grid).reshape(counts)
    if np.any(values[[0, -1]] <= 0) or np.any(values[:, [0, -1]] <= 0) or np.any(values[:, :, [0, -1]] <= 0):
        raise RuntimeError(f"{name}: the solid reaches its bounding box; widen the bounds")
    # a grid value of exactly zero makes marching cubes emit zero-area triangles: nudge it outside
    values[values == 0] = 1e-9
    vertices, faces, _, _ = measure.marching_cubes(values, level=0.0, spacing=(step, step, step))
    mesh = trimesh.Trimesh(vertices + low, faces, process=False)
    mesh.merge_vertices()
    mesh.update_faces(mesh.nondegenerate_faces(height=1e-12))
    mesh.remove_unreferenced_vertices()
    if mesh.volume < 0:
        mesh.invert()
    problem = mesh_problem(mesh)
    if problem:
        raise RuntimeError(f"{name}: marching cubes at resolution {resolution} gave a bad mesh ({problem})")
    return mesh


def decimate(mesh: trimesh.Trimesh, target: int) -> trimesh.Trimesh:
    """Quadric decimation of `mesh` towards `target` faces (may land a few faces off)."""
    import fast_simplification

    vertices, faces = fast_simplification.simplify(np.asarray(mesh.vertices, np.float64),
                                                   np.asarray(mesh.faces, np.int32), target_count=target)
    out = trimesh.Trimesh(np.asarray(vertices, np.float64), np.asarray(faces, np.int64), process=False)
    out.remove_unreferenced_vertices()
    return out


def _acceptable(mesh: trimesh.Trimesh, fine: trimesh.Trimesh, max_faces: int) -> bool:
    if len(mesh.faces) > max_faces or mesh_problem(mesh):
        return False
    if mesh.euler_number != fine.euler_number:  # decimation pinched a handle or closed a hole
        return False
    if abs(mesh.volume / fine.volume - 1) > 0.15:  # collapsed a limb
        return False
    return self_intersections(mesh) == 0


def _manifold_intermediate(fine: trimesh.Trimesh, count: int) -> trimesh.Trimesh:
    """`fine` reduced by fast decimation to about `count` faces while still closed with its genus.

    Tries a few counts upwards (fast decimation pinches less when it removes less); the fine mesh
    itself when none works.
    """
    for _ in range(4):
        if count >= len(fine.faces):
            break
        out = decimate(fine, count)
        if not mesh_problem(out) and out.euler_number == fine.euler_number:
            return out
        count = int(1.3 * count)
    return fine


def _without_slivers(vertices: np.ndarray, faces: np.ndarray) -> trimesh.Trimesh:
    """Decimation leaves a few thin triangles: flip the caps, collapse the needles, flip again."""
    vertices, faces = flip_slivers(vertices, faces, _FLIP_BEND)
    vertices, faces = collapse_needles(vertices, faces)
    return trimesh.Trimesh(*flip_slivers(vertices, faces, _FLIP_BEND), process=False)


def implicit_shape(name: str, max_faces: int) -> tuple[np.ndarray, np.ndarray]:
    """Shape `name` meshed from its field and decimated to at most `max_faces` faces.

    Fast decimation straight to the budget when its result passes; otherwise fast decimation to a
    few times the budget and the topology-preserving decimator for the rest, at falling targets.
    """
    for resolution in (_RESOLUTION, *_FALLBACK_RESOLUTIONS):
        fine = fine_mesh(name, resolution)
        if len(fine.faces) <= max_faces:
            return np.asarray(fine.vertices), np.asarray(fine.faces)
        out = decimate(fine, max_faces)
        if not mesh_problem(out):  # the clean-up needs a closed manifold
            out = _without_slivers(out.vertices, out.faces)
            if _acceptable(out, fine, max_faces):
                return np.asarray(out.vertices), np.asarray(out.faces)
        start = _manifold_intermediate(fine, _INTERMEDIATE * max_faces)
        target = max_faces
        for _ in range(_TARGET_STEPS):
            out = _without_slivers(*decimate_manifold(start.vertices, start.faces, target))
            if _acceptable(out, fine, max_faces):
                return np.asarray(out.vertices), np.asarray(out.faces)
            target = int(0.96 * target)
    raise RuntimeError(f"could not decimate {name} to a closed mesh within {max_faces} faces")


BUILDERS: dict[str, Callable[[int], tuple[np.ndarray, np.ndarray]]] = {
    name: functools.partial(implicit_shape, name) for name in _FIELDS
}
