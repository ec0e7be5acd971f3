"""The force-field staircase: mpnn, invariant, egnn, tensor2, tensor4 (see registry.py for sizes and FLOPs).

The registry's names load on first use, so torch-free code (the grid's plan, size_table.json via
table.py) can import this package without importing torch.
"""

__all__ = ["FAMILIES", "FF_SIZES", "build_model", "forward_flops_per_atom", "kappa", "measure_forward_flops",
           "num_params", "reference_batch", "size_config", "training_flops"]


def __getattr__(name: str):
    if name in __all__:
        from eqscale.forcefield.models import registry

        return getattr(registry, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
