"""Model names -> constructors, size presets and their analytic counts (what the grid and stages ask)."""

from __future__ import annotations

import functools

import torch


def _families():
    from eqscale.models.gatr import GATR_SIZES, GATr
    from eqscale.models.transformer import TRANSFORMER_SIZES, Transformer

    return {"gatr": (GATr, GATR_SIZES), "transformer": (Transformer, TRANSFORMER_SIZES)}


def model_names() -> tuple[str, ...]:
    """The model families the study can train."""
    return ("gatr", "transformer")


def size_config(model: str, size: str):
    """The config dataclass of a named size; KeyError lists what exists."""
    families = _families()
    if model not in families:
        raise KeyError(f"unknown model {model!r} (known: {', '.join(families)})")
    sizes = families[model][1]
    if size not in sizes:
        raise KeyError(f"unknown {model} size {size!r} (known: {', '.join(sizes)})")
    return sizes[size]


def build_model(model: str, size: str, device: torch.device | str | None = None) -> torch.nn.Module:
    """A freshly initialised model of the given family and size."""
    cls = _families()[model][0]
    net = cls(size_config(model, size))
    return net.to(device) if device is not None else net


@functools.lru_cache(maxsize=None)
def _meta_model(model: str, size: str) -> torch.nn.Module:
    # counting needs only shapes: build on the meta device so paper-scale sizes cost no memory
    with torch.device("meta"):
        return _families()[model][0](size_config(model, size))


def num_params(model: str, size: str) -> int:
    """Trainable parameters of a model size."""
    return int(_meta_model(model, size).num_params())


def flops_per_step(model: str, size: str, batch_size: int, num_faces: int) -> float:
    """Analytic forward+backward FLOPs of one optimizer step on a padded batch."""
    return float(_meta_model(model, size).flops_per_step(batch_size, num_faces))
