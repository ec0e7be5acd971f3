"""Both families on CUDA: a training step under bf16 autocast (the attention front end on SDPA's GPU kernels)
agrees with fp32 on the CPU, and GATr stays equivariant there in fp32. Skipped without a GPU."""

from __future__ import annotations

import pytest
import torch

from eqscale.data.batch import prediction_equivariance_error, vertex_mse
from eqscale.models.registry import build_model
from eqscale.symmetry import random_group
from helpers.scenes import random_rigid_scene_batch

pytestmark = pytest.mark.cuda


@pytest.mark.parametrize("model", ["gatr", "transformer"])
def test_bf16_autocast_step_on_cuda_matches_fp32_on_cpu(model):
    batch = random_rigid_scene_batch(4, min_objects=2, max_objects=5, seed=0, dtype=torch.float32)
    torch.manual_seed(0)
    cpu = build_model(model, "xs")
    gpu = build_model(model, "xs", "cuda")
    gpu.load_state_dict(cpu.state_dict())
    expected = cpu(batch)
    on_gpu = {k: v.cuda() for k, v in batch.items()}
    with torch.autocast("cuda", dtype=torch.bfloat16):
        got = gpu(on_gpu)
        loss = vertex_mse(got, on_gpu["vertices_target"])
    loss.backward()
    assert got.dtype == torch.float32 and all(torch.isfinite(p.grad).all() for p in gpu.parameters())
    motion = (expected - batch["vertices_curr"]).abs().max()
    assert (got.cpu() - expected).abs().max() < 0.05 * motion


def test_gatr_is_equivariant_on_cuda_in_fp32():
    batch = {k: v.cuda() for k, v in random_rigid_scene_batch(3, seed=1, dtype=torch.float32).items()}
    torch.manual_seed(0)
    model = build_model("gatr", "xxs", "cuda")
    with torch.no_grad():
        assert prediction_equivariance_error(model, batch, random_group(3, seed=2, kind="problem").to("cuda")) < 1e-4
