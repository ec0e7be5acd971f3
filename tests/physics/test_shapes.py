"""Procedural shapes: closed, normalised, within budget, deterministic, with the right topology."""

import numpy as np
import pytest
import trimesh

from eqscale.physics.shapes import SHAPE_NAMES, make_shape, min_faces


@pytest.mark.parametrize("budget", [144, 400, 1200])
@pytest.mark.parametrize("name", SHAPE_NAMES)
def test_shape_is_closed_normalised_and_within_budget(name, budget):
    mesh = make_shape(name, budget)
    assert mesh.is_watertight and mesh.is_winding_consistent
    assert mesh.volume > 0  # outward normals
    assert len(mesh.faces) <= budget
    assert len(mesh.split(only_watertight=False)) == 1
    assert np.all(mesh.area_faces > 1e-12)
    assert np.isclose(mesh.extents.max(), 1.0, atol=1e-6)
    np.testing.assert_allclose(mesh.center_mass, 0.0, atol=1e-6)
    if name != "cube" and name not in ("gear", "sponge", "sphere"):
        assert len(mesh.faces) >= 0.5 * budget or len(mesh.faces) >= 1000, "uses too little of the budget"


@pytest.mark.parametrize("name", SHAPE_NAMES)
def test_shape_is_deterministic(name):
    a, b = make_shape(name, 300), make_shape(name, 300)
    np.testing.assert_array_equal(a.vertices, b.vertices)
    np.testing.assert_array_equal(a.faces, b.faces)


@pytest.mark.parametrize("name, genus", [("torus", 1), ("torus_knot", 1), ("sponge", 5), ("cube", 0), ("spot", 0)])
def test_topology(name, genus):
    # Euler characteristic of a closed orientable surface: 2 - 2 * genus
    assert make_shape(name, 300).euler_number == 2 - 2 * genus


def test_torus_hole_is_wide():
    mesh = make_shape("torus", 300)
    # a vertical ray through the centre hits nothing: the hole is open
    hits = trimesh.ray.ray_triangle.RayMeshIntersector(mesh).intersects_any([[0, 0, -2.0]], [[0, 0, 1.0]])
    assert not hits[0]
    radial = np.linalg.norm(mesh.vertices[:, :2], axis=1)
    assert radial.min() > 0.25  # hole radius in units of the largest side


def test_bad_requests_fail_clearly():
    with pytest.raises(ValueError, match="valid shapes: cube"):
        make_shape("dodecahedron", 300)
    with pytest.raises(ValueError, match="sponge.*at least 144"):
        make_shape("sponge", min_faces("sponge") - 1)
