"""The torch.compile switch on CPU: same outputs and gradients as eager on batches of changing size,
state dict names unchanged (checkpoints stay interchangeable)."""

from __future__ import annotations

import pytest
import torch

from eqscale.data.batch import vertex_mse
from eqscale.models.configs import TransformerConfig
from eqscale.models.registry import build_model, maybe_compile
from eqscale.models.transformer import Transformer
from helpers.scenes import random_rigid_scene_batch


@pytest.mark.slow
def test_compiled_model_matches_eager_on_batches_of_changing_size():
    config = TransformerConfig(width=16, num_blocks=2, num_heads=2, rff_frequencies=4)
    torch.manual_seed(0)
    eager = Transformer(config)
    torch.manual_seed(0)
    compiled = maybe_compile(Transformer(config))
    assert list(compiled.state_dict()) == list(eager.state_dict())
    for seed, scenes in enumerate((4, 5, 7)):  # the second recompiles with symbolic token counts, the third reuses it
        batch = random_rigid_scene_batch(scenes, seed=seed, dtype=torch.float32)
        losses = [vertex_mse(m(batch), batch["vertices_target"]) for m in (eager, compiled)]
        for loss in losses:
            loss.backward()
        torch.testing.assert_close(losses[1], losses[0], rtol=1e-5, atol=1e-7)
        for (name, a), b in zip(eager.named_parameters(), compiled.parameters()):
            torch.testing.assert_close(b.grad, a.grad, rtol=1e-4, atol=1e-6, msg=name)
            a.grad = b.grad = None


def test_build_model_leaves_models_eager_unless_asked():
    model = build_model("transformer", "xxs")
    assert model._compiled_call_impl is None
    assert build_model("transformer", "xxs", compile=True)._compiled_call_impl is not None
