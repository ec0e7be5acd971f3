"""Model names -> freshly built networks (the torch side; counts without torch are in `counts.py`).

`build_model(model, size, compile=True)` compiles the network's forward in place (`nn.Module.compile`:
parameter names, state dicts and checkpoints stay those of the eager model). Shapes are left to
torch.compile's automatic dynamism: the first batch compiles static graphs, the second (another token
count) recompiles them with the token dimensions symbolic, and later batches reuse those. (dynamic=True
would make every dimension symbolic, the algebra's 16 components included, which trips an inductor
assertion in torch 2.13 on GATr.) The attention front end (`attention.batch_layouts`,
`attention.block_attention`: Python over the offsets' values) stays eager.
"""

from __future__ import annotations

import torch

from eqscale.models.configs import GATrConfig, size_config
from eqscale.models.gatr import GATr
from eqscale.models.transformer import Transformer


def build_model(model: str, size: str, device: torch.device | str | None = None,
                compile: bool = False) -> torch.nn.Module:
    """A freshly initialised network of the given family and size (KeyError lists the valid names)."""
    config = size_config(model, size)
    net = GATr(config) if isinstance(config, GATrConfig) else Transformer(config)
    if device is not None:
        net = net.to(device)
    return maybe_compile(net, compile)


def maybe_compile(net: torch.nn.Module, compile: bool = True) -> torch.nn.Module:
    """`net` with its forward compiled in place when `compile`, else unchanged."""
    if compile:
        net.compile()
    return net

