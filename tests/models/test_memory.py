"""The activation-memory formulas of counts.py against what autograd really keeps (a census of saved tensors)."""

from __future__ import annotations

import pytest
import torch

from eqscale.data.batch import batch_structure, vertex_mse
from eqscale.models import counts
from eqscale.models.registry import build_model
from helpers.scenes import random_rigid_scene_batch


def _saved_bytes(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> int:
    """Bytes of the distinct storages autograd keeps for the backward, parameters and inputs excluded."""
    storages: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storages[tensor.untyped_storage().data_ptr()] = tensor.untyped_storage().nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        vertex_mse(model(batch), batch["vertices_target"])
    outside = {t.untyped_storage().data_ptr() for t in [*model.parameters(), *batch.values()]}
    return sum(n for ptr, n in storages.items() if ptr not in outside)


@pytest.mark.parametrize("model", ["gatr", "transformer"])
@pytest.mark.parametrize("size", ["xxs", "xs"])
def test_kept_activations_match_the_formula(model, size):
    batch = random_rigid_scene_batch(8, min_objects=3, max_objects=6, seed=0, dtype=torch.float32)
    structure = batch_structure(batch)
    torch.manual_seed(0)
    measured = _saved_bytes(build_model(model, size), batch)
    estimate = counts.peak_memory_bytes(model, size, structure)
    values = counts.activation_values_per_token(model, size)
    kept = estimate["activations"] - structure.tokens * 4 * (values["block"] + values["transient"])
    assert kept == pytest.approx(measured, rel=0.05)
    assert estimate["optimizer"] == 3 * estimate["params"] == 12 * counts.num_params(model, size)
    inference = counts.peak_memory_bytes(model, size, structure, training=False)
    assert inference["total"] < estimate["total"] and inference["optimizer"] == 0


def test_memory_is_linear_in_tokens_and_halves_in_bf16():
    one = counts.BatchStructure.from_scenes([[2160] * 10])
    two = counts.BatchStructure.from_scenes([[2160] * 10] * 2)
    a, b = (counts.peak_memory_bytes("gatr", "s", s)["activations"] for s in (one, two))
    fixed = counts.peak_memory_bytes("gatr", "s", counts.BatchStructure(0, 0, 0, 0, 0))["activations"]
    assert b - fixed == pytest.approx(2 * (a - fixed))  # no N^2 term
    half = counts.peak_memory_bytes("gatr", "s", one, dtype_bytes=2)["activations"]
    assert half == pytest.approx(a / 2)
