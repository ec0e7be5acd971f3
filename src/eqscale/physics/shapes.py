"""The 11 KuBasic-like shapes, built procedurally as closed meshes at a face budget.

KuBasic's files cannot be downloaded here, so each shape is made in code:

- parametric (`shapes_parametric`): cube, sphere (geodesic), cylinder and cone (lathed), torus and
  torus knot (tubes), gear (extruded outline), sponge (level-1 Menger). Generated directly at the
  resolution that fits the budget, so they are closed and consistently oriented by construction.
- implicit (`shapes_implicit`): spot (a cow-like figure), suzanne (a monkey-like head) and the
  teapot (`shapes_teapot`: the Utah teapot's Bezier patches turned into a solid). Signed distance
  fields of composed primitives, meshed by marching cubes and reduced to the budget by quadric
  decimation that must keep the mesh closed and its topology.

Every mesh is scaled so the largest side of its bounding box is 1 and translated so its centre of
mass (uniform density) is at the origin. Results are deterministic and cached per (name, budget).
"""

from __future__ import annotations

import functools

import numpy as np
import trimesh

from eqscale.physics import shapes_implicit, shapes_parametric
from eqscale.physics.shapes_mesh import mesh_problem
from eqscale.physics.shapes_parametric import TORUS_TUBE_RATIO  # noqa: F401  (documented constant)
from eqscale.shape_catalog import MIN_FACES as _MIN_FACES
from eqscale.shape_catalog import SHAPE_NAMES

_BUILDERS = {**shapes_parametric.BUILDERS, **shapes_implicit.BUILDERS}


def _check_name(name: str) -> None:
    if name not in SHAPE_NAMES:
        raise ValueError(f"unknown shape {name!r}; valid shapes: {', '.join(SHAPE_NAMES)}")


def min_faces(name: str) -> int:
    """The smallest face budget shape `name` can be built at."""
    _check_name(name)
    return _MIN_FACES[name]


def make_shape(name: str, max_faces: int) -> trimesh.Trimesh:
    """Closed, outward-oriented mesh of `name` with at most `max_faces` faces, normalised (see module doc)."""
    _check_name(name)
    if int(max_faces) != max_faces:
        raise ValueError(f"shape {name!r}: the face budget must be an integer, got {max_faces!r}")
    if max_faces < _MIN_FACES[name]:
        raise ValueError(f"shape {name!r} cannot be built within {max_faces} faces: "
                         f"it needs a face budget of at least {_MIN_FACES[name]}")
    vertices, faces = _cached(name, int(max_faces))
    return trimesh.Trimesh(vertices.copy(), faces.copy(), process=False)


@functools.lru_cache(maxsize=256)
def _cached(name: str, max_faces: int) -> tuple[np.ndarray, np.ndarray]:
    vertices, faces = build(name, max_faces)
    vertices.setflags(write=False)
    faces.setflags(write=False)
    return vertices, faces


def build(name: str, max_faces: int) -> tuple[np.ndarray, np.ndarray]:
    """Uncached: build, normalise and check shape `name` (vertices float64, faces int64)."""
    vertices, faces = _BUILDERS[name](max_faces)
    mesh = normalise(trimesh.Trimesh(vertices, faces, process=False))
    problem = mesh_problem(mesh)
    if problem or len(mesh.faces) > max_faces:
        raise RuntimeError(f"internal error: {name} at a budget of {max_faces} faces gave a bad mesh "
                           f"({problem or f'{len(mesh.faces)} faces'})")
    return (np.ascontiguousarray(mesh.vertices, dtype=np.float64),
            np.ascontiguousarray(mesh.faces, dtype=np.int64))


def normalise(mesh: trimesh.Trimesh) -> trimesh.Trimesh:
    """Scale so the largest bounding-box side is 1, then move the centre of mass to the origin."""
    vertices = np.asarray(mesh.vertices, np.float64)
    vertices = vertices / (vertices.max(axis=0) - vertices.min(axis=0)).max()
    mesh = trimesh.Trimesh(vertices, mesh.faces, process=False)
    # a second pass removes the rounding left by the first (the test tolerance is 1e-6; this gives ~1e-16)
    for _ in range(2):
        mesh = trimesh.Trimesh(mesh.vertices - mesh.center_mass, mesh.faces, process=False)
    return mesh

