"""Product tables against the independent `clifford` package, and basic algebra identities."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from eqscale.algebra import blades as bl
from eqscale.algebra import products as pr
from eqscale.algebra.tables import table

clifford = pytest.importorskip("clifford")


@pytest.fixture(scope="module")
def clifford_basis():
    """(layout, M): M[:, i] is our blade i written in clifford's value layout (a signed permutation)."""
    layout, cl_blades = clifford.Cl(3, 0, 1)
    # clifford puts the null generator first: its e1 is our e0, its e2..e4 are our e1..e3
    null = [name for name, s in zip(["e1", "e2", "e3", "e4"], layout.sig) if s == 0]
    assert null == ["e1"]
    generators = [cl_blades["e1"], cl_blades["e2"], cl_blades["e3"], cl_blades["e4"]]
    columns = []
    for blade in bl.BLADES:
        mv = layout.scalar * 0 + 1.0
        for g in blade:
            mv = mv * generators[g]
        columns.append(np.asarray(mv.value, dtype=float))
    matrix = np.stack(columns, axis=1)
    assert np.allclose(np.abs(matrix).sum(0), 1) and np.allclose(np.abs(matrix).sum(1), 1)
    return layout, matrix


def _to_clifford(layout, matrix, ours: np.ndarray):
    return layout.MultiVector(value=matrix @ ours)


def _from_clifford(matrix, mv) -> np.ndarray:
    return matrix.T @ np.asarray(mv.value, dtype=float)


@pytest.mark.parametrize("name, op", [("gp", lambda a, b: a * b), ("outer", lambda a, b: a ^ b)])
def test_bilinear_table_matches_clifford_on_all_basis_pairs(clifford_basis, name, op):
    layout, matrix = clifford_basis
    ours = table(name, torch.float64).numpy()
    eye = np.eye(16)
    for j in range(16):
        for k in range(16):
            expected = _from_clifford(matrix, op(_to_clifford(layout, matrix, eye[j]),
                                                 _to_clifford(layout, matrix, eye[k])))
            np.testing.assert_array_equal(ours[:, j, k], expected, err_msg=f"{name}: {bl.BLADE_NAMES[j]}, {bl.BLADE_NAMES[k]}")


@pytest.mark.parametrize("ours, theirs", [(pr.reverse, lambda a: ~a), (pr.grade_involute, lambda a: a.gradeInvol())])
def test_involutions_match_clifford(clifford_basis, ours, theirs):
    layout, matrix = clifford_basis
    x = np.random.default_rng(1).normal(size=16)
    expected = _from_clifford(matrix, theirs(_to_clifford(layout, matrix, x)))
    np.testing.assert_allclose(ours(torch.tensor(x)).numpy(), expected, atol=1e-14)


def test_products_on_random_multivectors_match_clifford(clifford_basis):
    layout, matrix = clifford_basis
    rng = np.random.default_rng(2)
    for _ in range(5):
        x, y = rng.normal(size=16), rng.normal(size=16)
        cx, cy = _to_clifford(layout, matrix, x), _to_clifford(layout, matrix, y)
        tx, ty = torch.tensor(x), torch.tensor(y)
        np.testing.assert_allclose(pr.geometric_product(tx, ty).numpy(), _from_clifford(matrix, cx * cy), atol=1e-12)
        np.testing.assert_allclose(pr.outer_product(tx, ty).numpy(), _from_clifford(matrix, cx ^ cy), atol=1e-12)
        # the invariant inner product is the scalar part of reverse(x) y
        assert float(pr.inner_product(tx, ty)) == pytest.approx(float((~cx * cy)[()]), abs=1e-12)


def test_generators_square_to_the_metric():
    gp = table("gp", torch.float64)
    assert gp[:, 1, 1].abs().sum() == 0  # e0^2 = 0
    for i in (2, 3, 4):
        assert gp[0, i, i] == 1 and gp[1:, i, i].abs().sum() == 0


def test_basis_order_is_the_documented_one():
    assert bl.BLADE_NAMES == ("1", "e0", "e1", "e2", "e3", "e01", "e02", "e03", "e12", "e13", "e23",
                              "e012", "e013", "e023", "e123", "e0123")


def test_geometric_product_is_associative():
    gen = torch.Generator().manual_seed(3)
    x, y, z = torch.randn(3, 32, 16, generator=gen, dtype=torch.float64)
    left = pr.geometric_product(pr.geometric_product(x, y), z)
    right = pr.geometric_product(x, pr.geometric_product(y, z))
    torch.testing.assert_close(left, right, rtol=1e-12, atol=1e-12)


def test_dual_is_the_right_complement_and_undual_inverts_it():
    eye = torch.eye(16, dtype=torch.float64)
    wedge = pr.outer_product(eye, pr.dual(eye))  # e_A ^ dual(e_A) for every blade A
    expected = torch.zeros(16, 16, dtype=torch.float64)
    expected[:, 15] = 1.0
    torch.testing.assert_close(wedge, expected)
    x = torch.randn(10, 16, dtype=torch.float64)
    torch.testing.assert_close(pr.undual(pr.dual(x)), x)
    torch.testing.assert_close(pr.dual(pr.undual(x)), x)


def test_inner_product_uses_exactly_the_components_without_e0():
    assert tuple(int(i) for i in torch.nonzero(table("inner", torch.float64))) == bl.EUCLIDEAN_INDICES
    assert bl.EUCLIDEAN_INDICES == (0, 2, 3, 4, 8, 9, 10, 14)
