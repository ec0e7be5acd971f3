"""The force-field staircase: mpnn, invariant, egnn, tensor2, tensor4 (see registry.py for sizes and FLOPs)."""

from eqscale.forcefield.models.registry import (FAMILIES, FF_SIZES, build_model, forward_flops_per_atom, kappa,
                                                measure_forward_flops, num_params, reference_batch, size_config,
                                                training_flops)

__all__ = ["FAMILIES", "FF_SIZES", "build_model", "forward_flops_per_atom", "kappa", "measure_forward_flops",
           "num_params", "reference_batch", "size_config", "training_flops"]
