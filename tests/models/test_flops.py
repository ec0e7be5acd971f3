"""Analytic FLOPs against torch's FlopCounterMode, and the CPU flash-attention formulas."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from eqscale.data.batch import masked_vertex_mse
from eqscale.models.flops import attention_flops, measure_flops
from eqscale.models.gatr import GATr, GATrConfig, gatr_config
from helpers.scenes import random_rigid_scene_batch


def test_cpu_flash_attention_is_counted_forward_and_backward():
    q = torch.randn(2, 1, 24, 16, requires_grad=True)
    k = torch.randn(2, 1, 8, 16, requires_grad=True)
    v = torch.randn(2, 1, 8, 16, requires_grad=True)
    mask = torch.rand(2, 1, 24, 8) < 0.5
    mask[..., 0] = True
    forward = measure_flops(lambda: F.scaled_dot_product_attention(q, k, v, attn_mask=mask))
    assert forward == 2 * 2 * (2 * 24 * 8 * 16)  # QK^T and AV
    both = measure_flops(lambda: F.scaled_dot_product_attention(q, k, v, attn_mask=mask).sum().backward())
    assert both == attention_flops(2, 1, 24, 8, 16)


@pytest.mark.parametrize("config", [
    GATrConfig(mv_channels=4, s_channels=8, num_blocks=2, num_heads=2),
    gatr_config("xxs"),
    GATrConfig(mv_channels=8, s_channels=16, num_blocks=1, num_heads=8),
    GATrConfig(mv_channels=6, s_channels=4, num_blocks=2, num_heads=3, head_odd=2),
])
def test_analytic_flops_match_the_measured_forward_backward(config):
    torch.manual_seed(0)
    batch = random_rigid_scene_batch(batch_size=2, seed=1, dtype=torch.float32)
    model = GATr(config)

    def step():
        loss = masked_vertex_mse(model(batch), batch["vertices_target"], batch["vertex_mask"])
        loss.backward()

    measured = measure_flops(step)
    b, f = batch["face_mask"].shape
    analytic = model.flops_per_step(b, f, batch["object_mask"].shape[1])
    assert abs(analytic - measured) <= 0.1 * measured, (analytic, measured)
    assert model.flops_per_token(f) == pytest.approx(model.flops_per_step(1, f) / f)
