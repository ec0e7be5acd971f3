"""FLOPs as torch counts them: `measure_flops` (FlopCounterMode), the cross-check of `counts.py`.

FlopCounterMode in torch 2.13 has no formula for the CPU flash-attention kernels
(`aten._scaled_dot_product_flash_attention_for_cpu` and its backward) and counts them as zero:
importing this module registers torch's own SDPA formulas for them.
"""

from __future__ import annotations

from collections.abc import Callable

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
