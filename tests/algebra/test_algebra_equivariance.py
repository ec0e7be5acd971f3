"""Every algebra primitive is Pin(3,0,1)-equivariant (E(3) with reflections), in float64."""

from __future__ import annotations

import pytest
import torch

from eqscale.algebra import (
    embed_displacement,
    embed_oriented_plane,
    embed_point,
    equi_linear,
    equivariant_join,
    geometric_product,
    grade_involute,
    grade_project,
    inner_product,
    linear_basis,
    outer_product,
    regressive_product,
    reverse,
    sandwich,
)
from eqscale.symmetry import assert_equivariant, equivariance_error, random_group

SHAPES = [(4,), (3, 5), (2, 3, 2)]


def _mv(shape, seed):
    return torch.randn(*shape, 16, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("op", [geometric_product, outer_product], ids=["gp", "outer"])
def test_bilinear_products_are_equivariant(shape, op):
    assert_equivariant(op, (_mv(shape, 0), _mv(shape, 1)), ("mv", "mv"), "mv")


@pytest.mark.parametrize("shape", SHAPES)
def test_equivariant_join_is_equivariant_with_the_reference_transformed(shape):
    assert_equivariant(equivariant_join, (_mv(shape, 0), _mv(shape, 1), _mv(shape, 2)), ("mv", "mv", "mv"), "mv")


def test_plain_join_needs_the_reference_under_reflections():
    x, y = _mv((6,), 0), _mv((6,), 1)
    rotations = random_group(6, kind="e3", reflections=False)
    assert equivariance_error(regressive_product, (x, y), ("mv", "mv"), "mv", rotations) < 1e-12
    mirrors = random_group(6, kind="e3")
    assert mirrors.odd.any()
    assert equivariance_error(regressive_product, (x, y), ("mv", "mv"), "mv", mirrors) > 0.1
    # a parity-odd operand (an embedded point) makes the plain join of mixed parity equivariant
    assert equivariance_error(regressive_product, (x, y), ("mv", "mv_odd"), "mv", mirrors) < 1e-12


@pytest.mark.parametrize("shape", SHAPES)
def test_inner_product_is_invariant(shape):
    assert_equivariant(inner_product, (_mv(shape, 0), _mv(shape, 1)), ("mv", "mv"), "invariant")


@pytest.mark.parametrize("op", [reverse, grade_involute] + [lambda x, k=k: grade_project(x, k) for k in range(5)])
def test_unary_maps_are_equivariant(op):
    assert_equivariant(op, (_mv((5, 2), 3),), ("mv",), "mv")


@pytest.mark.parametrize("shape, channels", [((4,), (3, 2)), ((2, 3), (1, 4))])
def test_equi_linear_is_equivariant(shape, channels):
    in_c, out_c = channels
    coeffs = torch.randn(out_c, in_c, 9, dtype=torch.float64)
    x = _mv((*shape, in_c), 4)
    assert_equivariant(lambda x: equi_linear(x, coeffs), (x,), ("mv",), "mv")
    assert_equivariant(lambda x: equi_linear(x, coeffs), (x,), ("mv_odd",), "mv_odd")


def _action_matrices(group) -> torch.Tensor:
    eye = torch.eye(16, dtype=torch.float64)
    return torch.stack([sandwich(v, eye, odd).T.contiguous() for v, odd in zip(group.versor, group.odd)])  # rho @ x


@pytest.mark.parametrize("reflections, expected_dim", [(True, 9), (False, 16)])
def test_equivariant_linear_maps_form_the_expected_space(reflections, expected_dim):
    """Solve W rho_g = rho_g W for all 16x16 W: Pin(3,0,1) leaves exactly the 9 basis maps.

    Without reflections (the even subgroup) 7 more maps commute (multiplications by e0123), which
    is why reflections are the interesting part of these tests.
    """
    rho = _action_matrices(random_group(6, seed=5, reflections=reflections))
    eye = torch.eye(16, dtype=torch.float64)
    # vec(W rho - rho W) = (rho^T kron I - I kron rho) vec(W) (row-major vec)
    constraints = torch.cat([torch.kron(eye, r.T.contiguous()) - torch.kron(r, eye) for r in rho])
    singular = torch.linalg.svdvals(constraints)
    null_dim = int((singular < 1e-9 * singular.max()).sum())
    assert null_dim == expected_dim
    if reflections:
        basis = linear_basis(torch.float64).reshape(9, 256)
        assert torch.linalg.matrix_rank(basis) == 9
        assert (constraints @ basis.T).abs().max() < 1e-10  # every basis map satisfies the constraints


@pytest.mark.parametrize("embed, action", [(embed_point, "mv_odd"), (embed_displacement, "mv")])
def test_embeddings_transform_with_their_parity(embed, action):
    coords = torch.randn(6, 4, 3, dtype=torch.float64)
    act = "points" if embed is embed_point else "vectors"
    assert_equivariant(embed, (coords,), (act,), action)


def test_plane_embedding_is_equivariant():
    normal, position = torch.randn(2, 6, 3, dtype=torch.float64)
    assert_equivariant(embed_oriented_plane, (normal, position), ("vectors", "points"), "mv")
