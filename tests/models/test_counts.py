"""Counts without torch: the size tables, parameters and FLOPs of packed batches against the modules and
FlopCounterMode, expected structures, steps for a budget, and the CPU flash-attention FLOP formulas."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from eqscale.algebra.tables import SPARSE_BILINEAR_MAX_PAIRS, num_pairs
from eqscale.data.batch import batch_structure, vertex_mse
from eqscale.models import configs, counts
from eqscale.models.configs import SIZES, GATrConfig, TransformerConfig, size_config
from eqscale.models.flops import measure_flops
from eqscale.models.gatr import GATr
from eqscale.models.layers_equivariant import IP_INDICES, POINT_START, TRIVECTOR_INDICES
from eqscale.models.registry import build_model
from eqscale.models.transformer import Transformer
from helpers.scenes import random_rigid_scene_batch


def test_counting_modules_import_no_torch():
    code = ("import sys, eqscale.models.counts, eqscale.models.configs; "
            "assert 'torch' not in sys.modules, sorted(m for m in sys.modules if m.startswith('torch'))[:5]")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_widths_written_in_configs_follow_from_the_algebra():
    assert configs.NUM_QK_FEATURES_PER_MV == len(IP_INDICES) + 5
    assert configs.NUM_V_COMPONENTS_PER_ODD == 16 - POINT_START and len(TRIVECTOR_INDICES) == 4
    assert num_pairs("gp") > SPARSE_BILINEAR_MAX_PAIRS  # dense form: all 256 pairs
    assert num_pairs("join") == configs.JOIN_TABLE_PAIRS <= SPARSE_BILINEAR_MAX_PAIRS


@pytest.mark.parametrize("model", list(SIZES))
def test_analytic_parameters_equal_the_modules_for_every_size(model):
    cls = GATr if model == "gatr" else Transformer
    for size, config in SIZES[model].items():
        with torch.device("meta"):  # counting needs shapes only
            net = cls(config)
        assert counts.num_params(model, size) == sum(p.numel() for p in net.parameters() if p.requires_grad), size


@pytest.mark.parametrize("model", list(SIZES))
def test_sizes_grow_and_span_more_than_30x(model):
    params = [counts.num_params(model, size) for size in SIZES[model]]
    assert params == sorted(params) and len(set(params)) == len(params)
    assert params[-1] / params[0] > 30


def test_gatr_design_configs_are_among_the_sizes_and_unknown_names_are_listed():
    found = {(c.mv_channels, c.s_channels, c.num_blocks) for c in SIZES["gatr"].values()}
    assert {(8, 16, 4), (16, 32, 4), (16, 64, 8), (32, 64, 8)} <= found
    assert all(c.head_dim % 8 == 0 for c in SIZES["transformer"].values())
    with pytest.raises(KeyError, match="xxs, xs, s, m, l, xl"):
        size_config("gatr", "huge")
    with pytest.raises(KeyError, match="gatr, transformer"):
        size_config("mlp", "s")
    with pytest.raises(ValueError, match="not divisible"):
        TransformerConfig(width=30, num_blocks=1, num_heads=4)


CONFIGS = [
    GATrConfig(mv_channels=4, s_channels=8, num_blocks=2, num_heads=2),
    SIZES["gatr"]["xxs"],
    GATrConfig(mv_channels=8, s_channels=16, num_blocks=1, num_heads=8),
    GATrConfig(mv_channels=6, s_channels=4, num_blocks=3, num_heads=3, head_odd=2),
    SIZES["transformer"]["xxs"],
    SIZES["transformer"]["s"],
    TransformerConfig(width=24, num_blocks=3, num_heads=2),  # 12-wide heads, padded to 16
]


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: type(c).__name__)
@pytest.mark.parametrize("batch_size, seed", [(1, 0), (3, 1)])
def test_analytic_flops_equal_flop_counter_on_packed_batches(config, batch_size, seed):
    torch.manual_seed(0)
    model = GATr(config) if isinstance(config, GATrConfig) else Transformer(config)
    batch = random_rigid_scene_batch(batch_size, min_objects=1, max_objects=4, seed=seed, dtype=torch.float32)
    measured = measure_flops(lambda: vertex_mse(model(batch), batch["vertices_target"]).backward())
    parts = model.flops_per_step(batch_structure(batch))
    assert parts["total"] == measured
    assert parts["total"] == parts["dense"] + parts["attention"] + parts["other"]
    assert min(parts["attention"], parts["dense"], parts["other"]) > 0


def test_flops_charge_real_tokens_and_the_attention_blocks_that_run():
    structure = counts.BatchStructure.from_scenes([[10, 20], [30]])
    assert structure == counts.BatchStructure(tokens=60, scene_tokens_sq=30**2 + 30**2,
                                              object_tokens_sq=100 + 400 + 900, objects=3, scenes=2)
    parts = counts.step_flops("transformer", "xs", structure)
    c = SIZES["transformer"]["xs"]
    attention = 2 * 7 * 2 * c.num_heads * c.padded_head_dim * (structure.object_tokens_sq + structure.scene_tokens_sq)
    assert parts["attention"] == attention  # 2 local and 2 global blocks
    bigger = counts.step_flops("transformer", "xs", counts.BatchStructure.from_scenes([[10, 20], [30], [5]]))
    assert bigger["dense"] == pytest.approx(parts["dense"] * 65 / 60)


def test_counts_take_arrays_of_steps():
    steps = counts.BatchStructure(tokens=np.array([60, 65]), scene_tokens_sq=np.array([1800, 1825]),
                                  object_tokens_sq=np.array([1400, 1425]), objects=np.array([3, 4]),
                                  scenes=np.array([2, 3]))
    totals = counts.step_flops("gatr", "xs", steps)["total"]
    first = counts.step_flops("gatr", "xs", counts.BatchStructure.from_scenes([[10, 20], [30]]))["total"]
    assert totals.shape == (2,) and totals[0] == first


def test_expected_structure_matches_sampled_batches():
    faces = [40, 90, 96, 60]
    expected = counts.expected_structure(faces, 3, 10, 8)
    rng = np.random.default_rng(0)
    draws = [counts.BatchStructure.from_scenes([list(rng.choice(faces, size=rng.integers(3, 11))) for _ in range(8)])
             for _ in range(4000)]
    for field in ("tokens", "scene_tokens_sq", "object_tokens_sq", "objects", "scenes"):
        sampled = np.mean([getattr(d, field) for d in draws])
        assert getattr(expected, field) == pytest.approx(sampled, rel=0.02), field
    weighted = counts.expected_structure({40: 3, 90: 1}, 2, 2, 1)
    assert weighted.tokens == pytest.approx(2 * (40 * 0.75 + 90 * 0.25))
    with pytest.raises(ValueError, match="min_objects"):
        counts.expected_structure(faces, 4, 3, 8)


def test_steps_for_budget_lands_within_one_step_of_the_budget():
    per_step = [counts.BatchStructure.from_scenes([[20 + (i % 7)] * (1 + i % 3)]) for i in range(5000)]

    def structures(start, stop):
        chosen = per_step[start:stop]
        names = ("tokens", "scene_tokens_sq", "object_tokens_sq", "objects", "scenes")
        return counts.BatchStructure(**{f: np.array([getattr(s, f) for s in chosen]) for f in names})

    flops = np.array([counts.step_flops("gatr", "xxs", s)["total"] for s in per_step])
    budget = float(flops[:1234].sum() + 0.4 * flops[1234])
    for guess in (10, 1234, 4000):  # too small guesses are extended, large ones cut
        steps = counts.steps_for_budget("gatr", "xxs", budget, structures, guess=guess)
        assert steps == 1234
    assert counts.steps_for_budget("gatr", "xxs", float(flops[:3].sum()), structures, guess=2, min_steps=20) == 20
    with pytest.raises(ValueError, match="positive"):
        counts.steps_for_budget("gatr", "xxs", 0.0, structures, guess=1)


def test_registry_builds_every_size_and_names_unknown_ones():
    assert isinstance(build_model("gatr", "xxs"), GATr)
    assert isinstance(build_model("transformer", "xxs"), Transformer)
    with pytest.raises(KeyError, match="valid: xxs"):
        build_model("transformer", "huge")


def test_cpu_flash_attention_is_counted_forward_and_backward():
    q = torch.randn(2, 1, 24, 16, requires_grad=True)
    k = torch.randn(2, 1, 8, 16, requires_grad=True)
    v = torch.randn(2, 1, 8, 16, requires_grad=True)
    forward = measure_flops(lambda: F.scaled_dot_product_attention(q, k, v))
    assert forward == 2 * 2 * (2 * 24 * 8 * 16)  # QK^T and AV
    both = measure_flops(lambda: F.scaled_dot_product_attention(q, k, v).sum().backward())
    assert both == 7 * 2 * 2 * 24 * 8 * 16
