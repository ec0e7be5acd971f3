"""FLOP counting: a measured count (`measure_flops`) and analytic building blocks for the networks.

Convention (what torch's FlopCounterMode counts, so analytic and measured counts are comparable):
matrix products only (mm/addmm/bmm, SDPA), 2 FLOPs per multiply-add, elementwise work ignored.
A learned weight used once per token costs 6 FLOPs forward + backward (2 forward, 2 for the
input gradient, 2 for the weight gradient); a constant table (product tables of the algebra)
costs 4 (no weight gradient). Fused attention counts QK^T and AV forward and, in the backward,
the recomputed scores plus four gradient products (torch's own SDPA formula): 7 matrix
products of 2*B*H*Lq*Lk*d FLOPs.

FlopCounterMode in torch 2.13 has no formula for the CPU flash-attention kernels
(`aten._scaled_dot_product_flash_attention_for_cpu` and its backward) and counts them as zero:
importing this module registers torch's SDPA formulas for them.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch.utils import flop_counter

_aten = torch.ops.aten


def _register_cpu_flash_formulas() -> None:
    forward = _aten._scaled_dot_product_flash_attention_for_cpu
    backward = _aten._scaled_dot_product_flash_attention_for_cpu_backward
    if forward not in flop_counter.flop_registry:
        @flop_counter.register_flop_formula(forward)
        def _cpu_flash_forward(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
            return flop_counter.sdpa_flop_count(query_shape, key_shape, value_shape)
    if backward not in flop_counter.flop_registry:
        @flop_counter.register_flop_formula(backward)
        def _cpu_flash_backward(grad_out_shape, query_shape, key_shape, value_shape, *args, out_shape=None,
                                **kwargs) -> int:
            return flop_counter.sdpa_backward_flop_count(grad_out_shape, query_shape, key_shape, value_shape)


_register_cpu_flash_formulas()


def measure_flops(fn: Callable[[], object]) -> int:
    """Total FLOPs counted by FlopCounterMode while running fn() (include .backward() in fn to count it)."""
    counter = flop_counter.FlopCounterMode(display=False)
    with counter:
        fn()
    return int(counter.get_total_flops())


# ---------------------------------------------------------------------------------------------
# Analytic building blocks (forward + backward unless named otherwise)


def dense_flops(tokens: int, fan_in: int, fan_out: int, input_grad: bool = True, weight_grad: bool = True) -> int:
    """A (fan_in -> fan_out) matrix applied to `tokens` rows: 2 forward, +2 input grad, +2 weight grad."""
    per_use = 2 * (1 + int(input_grad) + int(weight_grad))
    return per_use * tokens * fan_in * fan_out


def table_bilinear_flops(products: int, name: str = "gp", pairs: int | None = None) -> int:
    """`products` bilinear products through algebra table `name` (see algebra.products._bilinear).

    Dense form (all `pairs` component products elementwise, not counted): the (pairs -> 16) table
    GEMM forward and for the gradient (a constant table: no weight gradient). Sparse form (tables
    with few contributing pairs P): two (16 -> P) selection GEMMs and the (P -> 16) pair GEMM,
    each forward and for its input gradient.
    """
    from eqscale.algebra.tables import SPARSE_BILINEAR_MAX_PAIRS, num_pairs

    if pairs is not None:
        return products * dense_flops(1, pairs, 16, weight_grad=False)
    contributing = num_pairs(name)
    if contributing <= SPARSE_BILINEAR_MAX_PAIRS:
        return products * 3 * dense_flops(1, 16, contributing, weight_grad=False)
    return products * dense_flops(1, 256, 16, weight_grad=False)


def attention_flops(batch: int, heads: int, queries: int, keys: int, width: int) -> int:
    """Fused attention, forward (QK^T, AV) and backward (recomputed scores + 4 products)."""
    return 7 * 2 * batch * heads * queries * keys * width
