"""Procedural shapes: closed, normalised, within budget, deterministic, with the right topology."""

import hashlib
import subprocess
import sys

import numpy as np
import pytest
import trimesh

from eqscale.physics import shapes
from eqscale.physics.shapes import SHAPE_NAMES, make_shape, min_faces
from eqscale.physics.shapes_decimate import decimate_manifold
from eqscale.physics.shapes_mesh import self_intersections

# genus of each closed surface: Euler characteristic = 2 - 2 * genus. The level-1 Menger sponge
# retracts onto the 12 edges and 8 corners of a cube, a graph with 12 - 8 + 1 = 5 independent loops.
GENUS = {"torus": 1, "torus_knot": 1, "sponge": 5, "teapot": 1}  # the teapot's handle; all others 0


def _check_closed_normalised_body(mesh: trimesh.Trimesh, name: str, budget: int) -> None:
    assert mesh.is_watertight and mesh.is_winding_consistent
    assert mesh.volume > 0  # outward normals
    assert len(mesh.faces) <= budget
    assert len(mesh.split(only_watertight=False)) == 1
    assert np.all(mesh.area_faces > 1e-10)
    assert mesh.euler_number == 2 - 2 * GENUS.get(name, 0)
    np.testing.assert_allclose(mesh.extents.max(), 1.0, atol=1e-6)
    np.testing.assert_allclose(mesh.center_mass, 0.0, atol=1e-6)
    assert self_intersections(mesh) == 0
    if name == "cube":
        assert len(mesh.faces) == 12
    elif budget >= 2 * min_faces(name):
        assert len(mesh.faces) >= 0.5 * budget, f"{name} uses {len(mesh.faces)} of {budget} faces"


@pytest.mark.parametrize("budget", [96, 300, 1000])
@pytest.mark.parametrize("name", SHAPE_NAMES)
def test_shape_is_a_closed_normalised_body_within_budget(name, budget):
    _check_closed_normalised_body(make_shape(name, budget), name, budget)


@pytest.mark.parametrize("name", SHAPE_NAMES)
def test_every_budget_from_the_minimum_to_2160_builds(name):
    low = min_faces(name)
    for budget in sorted({low, low + 1, 97, 143, 200, 257, 499, 777, 1201, 1789, 2160} - set(range(low))):
        _check_closed_normalised_body(make_shape(name, budget), name, budget)


@pytest.mark.parametrize("name", SHAPE_NAMES)
def test_shape_is_deterministic(name):
    # build() bypasses make_shape's cache: two independent constructions must agree bit for bit
    first, second = shapes.build(name, 300), shapes.build(name, 300)
    cached = make_shape(name, 300)
    for a, b in ((first, second), (first, (cached.vertices, cached.faces))):
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])


def _digest(budget: int) -> str:
    digest = hashlib.sha256()
    for name in SHAPE_NAMES:
        mesh = make_shape(name, budget)
        digest.update(np.ascontiguousarray(mesh.vertices).tobytes() + np.ascontiguousarray(mesh.faces).tobytes())
    return digest.hexdigest()


_DIGEST_SCRIPT = """
import hashlib, numpy as np
from eqscale.physics.shapes import SHAPE_NAMES, make_shape
digest = hashlib.sha256()
for name in SHAPE_NAMES:
    mesh = make_shape(name, {budget})
    digest.update(np.ascontiguousarray(mesh.vertices).tobytes() + np.ascontiguousarray(mesh.faces).tobytes())
print(digest.hexdigest())
"""


def test_shapes_are_identical_in_a_fresh_process():
    out = subprocess.run([sys.executable, "-c", _DIGEST_SCRIPT.format(budget=300)], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == _digest(300)


def test_torus_hole_lets_a_small_ball_through():
    mesh = make_shape("torus", 300)
    assert shapes.TORUS_TUBE_RATIO <= 0.25
    # nothing on the vertical axis, and nothing within 0.25 of it: a ball of radius 0.1 falls through
    hits = trimesh.ray.ray_triangle.RayMeshIntersector(mesh).intersects_any([[0, 0, -2.0]], [[0, 0, 1.0]])
    assert not hits[0]
    axis = np.column_stack([np.zeros(41), np.zeros(41), np.linspace(-0.5, 0.5, 41)])
    _, distance, _ = trimesh.proximity.closest_point(mesh, axis)
    assert distance.min() > 0.25


def test_torus_hole_holds_at_the_smallest_budget():
    mesh = make_shape("torus", min_faces("torus"))
    axis = np.column_stack([np.zeros(41), np.zeros(41), np.linspace(-0.5, 0.5, 41)])
    _, distance, _ = trimesh.proximity.closest_point(mesh, axis)
    assert distance.min() > 0.2


def test_sponge_tunnels_go_through_along_every_axis():
    mesh = make_shape("sponge", 300)
    intersector = trimesh.ray.ray_triangle.RayMeshIntersector(mesh)
    origins = -2 * np.eye(3)
    assert not intersector.intersects_any(origins, np.eye(3)).any()
    # off the tunnels' axes a ray does hit the solid
    assert intersector.intersects_any(origins + [[0, 0.4, 0.4], [0.4, 0, 0.4], [0.4, 0.4, 0]], np.eye(3)).all()


@pytest.mark.parametrize("budget", [96, 300, 2160])
def test_gear_has_twelve_teeth_and_flat_faces(budget):
    mesh = make_shape("gear", budget)
    top = mesh.vertices[:, 2].max()
    # the flat faces: every face touching the top plane lies in it, or is a side wall
    on_top = np.isclose(mesh.vertices[mesh.faces][:, :, 2], top).all(axis=1)
    assert np.allclose(mesh.face_normals[on_top], [0, 0, 1])
    # teeth: runs of outline vertices at the tip radius, counted around the circle
    tips = mesh.vertices[np.linalg.norm(mesh.vertices[:, :2], axis=1) > 0.49]
    angles = np.sort(np.arctan2(tips[:, 1], tips[:, 0]))
    gaps = np.diff(np.append(angles, angles[0] + 2 * np.pi))
    assert (gaps > np.radians(10)).sum() == 12


def test_budget_below_minimum_and_unknown_names_fail_clearly():
    with pytest.raises(ValueError, match="unknown shape 'dodecahedron'; valid shapes: cube, cylinder"):
        make_shape("dodecahedron", 300)
    with pytest.raises(ValueError, match="unknown shape"):
        min_faces("dodecahedron")
    for name in SHAPE_NAMES:
        low = min_faces(name)
        with pytest.raises(ValueError, match=f"'{name}' cannot be built within {low - 1} faces.*at least {low}"):
            make_shape(name, low - 1)
    with pytest.raises(ValueError, match="must be an integer"):
        make_shape("cube", 100.5)


def test_min_faces_is_low():
    # every shape builds from 96 faces (test_every_budget... builds each at its minimum), simple ones lower
    for name in SHAPE_NAMES:
        assert min_faces(name) <= 96
    for name in ("cube", "cylinder", "sphere", "cone", "torus"):
        assert min_faces(name) <= 48


def test_self_intersection_check_sees_overlaps():
    box = trimesh.creation.box()
    assert self_intersections(box) == 0
    moved = box.copy()
    moved.apply_translation([0.5, 0.3, 0.2])
    assert self_intersections(trimesh.util.concatenate([box, moved])) > 0


def test_manifold_decimation_keeps_genus_and_closure():
    fine = trimesh.creation.torus(major_radius=1.0, minor_radius=0.2, major_sections=64, minor_sections=24)
    vertices, faces = decimate_manifold(fine.vertices, fine.faces, 120)
    coarse = trimesh.Trimesh(vertices, faces, process=False)
    assert len(coarse.faces) == 120
    assert coarse.is_watertight and coarse.is_winding_consistent and coarse.euler_number == 0
    assert self_intersections(coarse) == 0
