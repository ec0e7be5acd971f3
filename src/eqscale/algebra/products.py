"""Products, involutions, dual and invariants on multivectors: pure functions on (..., 16) tensors.

Under the Pin(3,0,1) action (see `versors.sandwich`) the geometric, outer and regressive products,
reversal, grade involution and grade projections are equivariant and the inner product is
invariant. The dual is not equivariant on its own (it flips sign under reflections); the
`equivariant_join` fixes that with a reference multivector's e123 component, as in the
reference GATr.
"""

from __future__ import annotations

import torch

from eqscale.algebra.blades import GRADE_INDICES
from eqscale.algebra.tables import E123_INDEX, SPARSE_BILINEAR_MAX_PAIRS, num_pairs, table


def _bilinear(name: str, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    x, y = torch.broadcast_tensors(x, y)
    if num_pairs(name) <= SPARSE_BILINEAR_MAX_PAIRS:
        # sparse tables (outer product, join): pick the contributing x_j and y_k with one-hot GEMMs,
        # multiply, and sum the pairs into the 16 outputs with a (P, 16) signed table
        left = torch.matmul(x, table(name + "_select_left", x.dtype, x.device))
        right = torch.matmul(y, table(name + "_select_right", x.dtype, x.device))
        return torch.matmul(left * right, table(name + "_pairs", x.dtype, x.device))
    # dense tables (geometric product): all 256 products x_j y_k, then one GEMM with the table; on
    # CPU about twice as fast as per-element 16x16 matrix-vector products (bmm of tiny matrices)
    flat = table(name + "_flat", x.dtype, x.device)  # (256 [j * 16 + k], 16 [i])
    return torch.matmul((x.unsqueeze(-1) * y.unsqueeze(-2)).flatten(-2), flat)


def geometric_product(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Geometric product x y of broadcastable multivectors (..., 16)."""
    return _bilinear("gp", x, y)


def geometric_product_of_parts(x_part: torch.Tensor, y_part: torch.Tensor, start: int) -> torch.Tensor:
    """Geometric product (..., 16) of multivectors given only by their components start..15.

    For operands known to live in the top components (e.g. points: grades 3-4 from index 11) this
    multiplies (16 - start)^2 pairs instead of 256.
    """
    flat = table("gp", x_part.dtype, x_part.device)[:, start:, start:].reshape(16, -1).T
    x_part, y_part = torch.broadcast_tensors(x_part, y_part)
    return torch.matmul((x_part.unsqueeze(-1) * y_part.unsqueeze(-2)).flatten(-2), flat)


def outer_product(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Outer (wedge) product x ^ y."""
    return _bilinear("outer", x, y)


def dual(x: torch.Tensor) -> torch.Tensor:
    """Right complement: e_A -> s_A e_{A^c} with e_A ^ dual(e_A) = e0123 (a signed permutation)."""
    return torch.matmul(x, table("dual", x.dtype, x.device).T)


def undual(x: torch.Tensor) -> torch.Tensor:
    """Inverse of `dual` (the left complement)."""
    return torch.matmul(x, table("undual", x.dtype, x.device).T)


def regressive_product(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Regressive product (join) x v y = undual(dual(x) ^ dual(y)); e.g. point v point = line.

    Equivariant under the even part of Pin(3,0,1); under reflections it picks up a sign, so for
    reflection-equivariant networks use `equivariant_join` (or pair operands of opposite parity).
    """
    return _bilinear("join", x, y)


def equivariant_join(x: torch.Tensor, y: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Pin-equivariant join: reference_e123 * (x v y), the reference breaking the sign ambiguity."""
    return reference[..., E123_INDEX : E123_INDEX + 1] * regressive_product(x, y)


def reverse(x: torch.Tensor) -> torch.Tensor:
    """Reversal: flips the sign of grades 2 and 3."""
    return x * table("reversal", x.dtype, x.device)


def grade_involute(x: torch.Tensor) -> torch.Tensor:
    """Grade involution: flips the sign of the odd grades 1 and 3."""
    return x * table("involution", x.dtype, x.device)


def grade_project(x: torch.Tensor, grade: int) -> torch.Tensor:
    """The grade-`grade` part of x (other components zeroed)."""
    mask = torch.zeros(16, dtype=x.dtype, device=x.device)
    mask[list(GRADE_INDICES[grade])] = 1.0
    return x * mask


def inner_product(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Invariant inner product <reverse(x) y>_0 = sum over components without e0; shape (...,)."""
    return (x * y * table("inner", x.dtype, x.device)).sum(-1)


def squared_norm(x: torch.Tensor) -> torch.Tensor:
    """<x, x> (the PGA norm squared, blind to the ideal components); shape (...,)."""
    return inner_product(x, x)
