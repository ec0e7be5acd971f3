"""Product tables, involutions, dual and the equivariant linear basis, built from the blade rule.

Every table is computed once in float64 on the CPU from `blades.blade_product` (no data files),
then cached per (dtype, device). Bilinear tables have layout [out, left, right]:
`(x * y)_i = sum_jk table[i, j, k] x_j y_k`.
"""

from __future__ import annotations

import numpy as np
import torch

from eqscale.algebra.blades import (
    BLADE_INDEX,
    BLADES,
    GRADE_INDICES,
    GRADES,
    NUM_COMPONENTS,
    blade_product,
    outer_blade_product,
)

E123_INDEX = BLADE_INDEX[(1, 2, 3)]
NUM_LINEAR_BASIS = 9


def _bilinear_numpy(rule) -> np.ndarray:
    table = np.zeros((NUM_COMPONENTS,) * 3)
    for j, left in enumerate(BLADES):
        for k, right in enumerate(BLADES):
            sign, blade = rule(left, right)
            if sign:
                table[BLADE_INDEX[blade], j, k] = sign
    return table


def _numpy_tables() -> dict[str, np.ndarray]:
    gp = _bilinear_numpy(blade_product)
    outer = _bilinear_numpy(outer_blade_product)
    reversal = np.array([(-1.0) ** (g * (g - 1) // 2) for g in GRADES])
    involution = np.array([(-1.0) ** g for g in GRADES])

    # dual = right complement: e_A -> s_A e_{A^c} with e_A ^ (s_A e_{A^c}) = e0123. It is a
    # signed permutation (not Pin-equivariant on its own); undual is its inverse (the transpose).
    dual = np.zeros((NUM_COMPONENTS, NUM_COMPONENTS))
    for a, blade in enumerate(BLADES):
        complement = tuple(g for g in range(4) if g not in blade)
        sign, result = outer_blade_product(blade, complement)
        assert result == (0, 1, 2, 3)
        dual[BLADE_INDEX[complement], a] = sign
    undual = dual.T.copy()

    # regressive product (join) x v y = undual(dual(x) ^ dual(y))
    join = np.einsum("ai,ibc,bj,ck->ajk", undual, outer, dual, dual)

    # <x, y> = <reverse(x) y>_0: diagonal, 1 on blades without e0 and 0 on the ideal ones
    inner = np.array([gp[0, j, j] * reversal[j] for j in range(NUM_COMPONENTS)])

    # Pin(3,0,1)-equivariant linear maps: the 5 grade projections and x -> e0 ^ <x>_k for
    # k = 0..3 (left multiplication by e0 restricted to grade k; e0 x = e0 ^ x since e0 e0 = 0)
    basis = np.zeros((NUM_LINEAR_BASIS, NUM_COMPONENTS, NUM_COMPONENTS))
    for grade, indices in enumerate(GRADE_INDICES):
        for i in indices:
            basis[grade, i, i] = 1.0
    e0 = BLADE_INDEX[(0,)]
    for grade in range(4):
        for i in GRADE_INDICES[grade]:
            for out in range(NUM_COMPONENTS):
                if gp[out, e0, i] != 0:
                    basis[5 + grade, out, i] = gp[out, e0, i]
    tables = dict(gp=gp, outer=outer, reversal=reversal, involution=involution, dual=dual,
                  undual=undual, join=join, inner=inner, linear_basis=basis)
    for name in ("gp", "outer", "join"):
        # flattened for `(x outer y) @ table`: [(j, k), i]
        tables[name + "_flat"] = np.ascontiguousarray(tables[name].reshape(16, 256).T)
        # the component pairs (j, k) that contribute at all, as one-hot selections and a pair table
        left, right = np.nonzero(np.abs(tables[name]).sum(0))
        tables[name + "_select_left"] = np.eye(16)[:, left]  # (16, P)
        tables[name + "_select_right"] = np.eye(16)[:, right]
        tables[name + "_pairs"] = np.ascontiguousarray(tables[name][:, left, right].T)  # (P, 16)
    return tables


def num_pairs(name: str) -> int:
    """Component pairs (j, k) with a non-zero entry in bilinear table `name` (gp 192, outer/join 81)."""
    return int(_NUMPY_TABLES[name + "_pairs"].shape[0])


# a bilinear with at most this many contributing pairs is computed on the selected pairs; above
# it, on all 256 pairs (measured on CPU: gp with 192 pairs is faster dense, join with 81 is not)
SPARSE_BILINEAR_MAX_PAIRS = 128


# built once at import (a few ms): the torch tables below are plain dict lookups, which torch.compile
# traces as constants instead of tracing the construction through a cache wrapper
_NUMPY_TABLES = _numpy_tables()
_TORCH_TABLES: dict[tuple[str, torch.dtype, torch.device], torch.Tensor] = {}


def table(name: str, dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu") -> torch.Tensor:
    """A cached table by name: gp, outer, join (16,16,16) and their (256, 16) "_flat" forms; dual,
    undual, linear_basis; reversal, involution, inner."""
    key = (name, dtype, torch.device(device))
    cached = _TORCH_TABLES.get(key)
    if cached is None:
        # explicit device: building under `with torch.device("meta")` must still give real values
        cached = _TORCH_TABLES[key] = torch.from_numpy(_NUMPY_TABLES[name]).to(device=key[2], dtype=dtype)
    return cached


def linear_basis(dtype=torch.float32, device="cpu") -> torch.Tensor:
    """(9, 16, 16) basis [map, out, in] of Pin(3,0,1)-equivariant linear maps."""
    return table("linear_basis", dtype, device)

