"""Pin(3,0,1)-equivariant linear maps between multivector channels."""

from __future__ import annotations

import torch

from eqscale.algebra.tables import NUM_LINEAR_BASIS, linear_basis

__all__ = ["NUM_LINEAR_BASIS", "equi_linear", "equi_linear_matrix", "linear_basis"]


def equi_linear_matrix(coeffs: torch.Tensor) -> torch.Tensor:
    """Dense (out*16, in*16) matrix of the map with coefficients (out, in, 9) on the 9 basis maps."""
    basis = linear_basis(coeffs.dtype, coeffs.device)  # [b, y, x]
    out_channels, in_channels, _ = coeffs.shape
    # one small contraction per call; the big work is then a single GEMM on the activations
    dense = torch.einsum("oib,byx->oyix", coeffs, basis)
    return dense.reshape(out_channels * 16, in_channels * 16)


def equi_linear(x: torch.Tensor, coeffs: torch.Tensor) -> torch.Tensor:
    """Equivariant linear map: x (..., in, 16), coeffs (out, in, 9) -> (..., out, 16)."""
    matrix = equi_linear_matrix(coeffs)
    out = torch.matmul(x.flatten(-2), matrix.T)
    return out.unflatten(-1, (coeffs.shape[0], 16))
