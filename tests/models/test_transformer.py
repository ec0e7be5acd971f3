"""The transformer baseline: sizes, analytic FLOPs against FlopCounterMode, multi-query attention,
the object-local / global pattern, inert padding, exactly rigid outputs, and fitting a tiny batch."""

from __future__ import annotations

import math

import pytest
import torch

from eqscale.data.batch import face_corners, masked_vertex_mse
from eqscale.models.flops import attention_flops, measure_flops
from eqscale.models.transformer import (
    TRANSFORMER_SIZES,
    MultiQueryAttention,
    Transformer,
    TransformerConfig,
    additive_mask,
    attention_masks,
    transformer_config,
)
from helpers.scenes import random_rigid_scene_batch

TINY = TransformerConfig(width=16, num_blocks=2, num_heads=2, rff_frequencies=4)


def _model(config: TransformerConfig = TINY, seed: int = 0, **overrides) -> Transformer:
    torch.manual_seed(seed)
    if overrides:
        config = TransformerConfig(**{**config.__dict__, **overrides})
    return Transformer(config).double()


def _batch(batch_size=3, seed=0, **kwargs):
    return random_rigid_scene_batch(batch_size=batch_size, seed=seed, dtype=torch.float64, **kwargs)


def _scene(batch: dict, i: int) -> dict:
    """Scene i of a batch with all padding cut away."""
    nv, nf = int(batch["vertex_mask"][i].sum()), int(batch["face_mask"][i].sum())
    k = int(batch["object_mask"][i].sum())
    out = {key: value[i : i + 1] for key, value in batch.items()}
    for key in ("vertices_prev", "vertices_curr", "vertices_target", "vertex_object", "vertex_mask"):
        out[key] = out[key][:, :nv]
    for key in ("faces", "face_object", "face_mask"):
        out[key] = out[key][:, :nf]
    out["object_mask"] = out["object_mask"][:, :k]
    return out


# ---- sizes and counts


def test_sizes_grow_and_span_more_than_30x_in_parameters():
    counts = [Transformer(c).num_params() for c in TRANSFORMER_SIZES.values()]
    assert counts == sorted(counts) and len(set(counts)) == len(counts)
    assert counts[-1] / counts[0] > 30
    assert TRANSFORMER_SIZES["xxs"].width <= 32 and TRANSFORMER_SIZES["xxs"].num_blocks <= 2
    assert all(c.head_dim % 8 == 0 for c in TRANSFORMER_SIZES.values())


def test_unknown_size_names_the_valid_ones():
    assert transformer_config("xs") is TRANSFORMER_SIZES["xs"]
    with pytest.raises(KeyError, match="xxs, xs, s, m, l, xl"):
        transformer_config("huge")
    with pytest.raises(ValueError, match="not divisible"):
        TransformerConfig(width=30, num_blocks=1, num_heads=4)


def test_counting_on_the_meta_device_matches_a_real_model():
    config = TRANSFORMER_SIZES["s"]
    with torch.device("meta"):
        meta = Transformer(config)
    assert meta.num_params() == Transformer(config).num_params()
    assert meta.flops_per_step(4, 100) == Transformer(config).flops_per_step(4, 100)


@pytest.mark.parametrize("config", [TRANSFORMER_SIZES["xxs"], TRANSFORMER_SIZES["xs"], TRANSFORMER_SIZES["s"],
                                    TransformerConfig(width=24, num_blocks=3, num_heads=2)],  # padded heads
                         ids=["xxs", "xs", "s", "padded-heads"])
@pytest.mark.parametrize("batch_size, seed", [(2, 0), (3, 1)])
def test_analytic_flops_match_flop_counter_on_forward_and_backward(config, batch_size, seed):
    torch.manual_seed(0)
    model = Transformer(config)
    batch = random_rigid_scene_batch(batch_size, seed=seed, dtype=torch.float32)

    def step():
        masked_vertex_mse(model(batch), batch["vertices_target"], batch["vertex_mask"]).backward()

    measured = measure_flops(step)
    b, f = batch["face_mask"].shape
    analytic = model.flops_per_step(b, f, num_objects=batch["object_mask"].shape[1])
    assert analytic == pytest.approx(measured, rel=0.02)
    # the attention kernels are really counted (flops.py registers the CPU flash formulas)
    attention = config.num_blocks * attention_flops(b, config.num_heads, f, f, config.padded_head_dim)
    assert measured - (analytic - attention) > 0.9 * attention


# ---- attention


def test_multi_query_attention_matches_explicit_shared_key_value_math():
    torch.manual_seed(1)
    config = TransformerConfig(width=24, num_blocks=1, num_heads=2)  # head width 12, padded to 16
    assert config.padded_head_dim == 16
    attention = MultiQueryAttention(config).double()
    x = torch.randn(2, 7, 24, dtype=torch.float64)
    mask = torch.rand(2, 1, 7, 7) < 0.6
    mask |= torch.eye(7, dtype=torch.bool)
    h, d = 2, 12
    qkv = attention.qkv(x).unflatten(-1, (h + 2, d))
    q, k, v = qkv[:, :, :h], qkv[:, :, h], qkv[:, :, h + 1]
    logits = torch.einsum("bnhd,bmd->bhnm", q, k) / math.sqrt(d)
    weights = logits.masked_fill(~mask, float("-inf")).softmax(-1)
    expected = attention.out(torch.einsum("bhnm,bmd->bnhd", weights, v).reshape(2, 7, h * d))
    torch.testing.assert_close(attention(x, mask), expected, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(attention(x, additive_mask(mask, torch.float64)), expected, rtol=1e-12, atol=1e-12)


def test_attention_masks_are_object_local_and_global():
    face_object = torch.tensor([[0, 0, 1, 1, 0]])
    face_mask = torch.tensor([[True, True, True, False, False]])
    local, global_ = attention_masks(face_object, face_mask)
    assert local.shape == (1, 1, 5, 5)
    assert local[0, 0].tolist() == [[True, True, False, False, False], [True, True, False, False, False],
                                    [False, False, True, False, False], [False, False, False, True, False],
                                    [False, False, False, False, True]]
    assert global_[0, 0, :3, :3].all() and not global_[0, 0, :3, 3:].any() and not global_[0, 0, 3, :3].any()


def test_objects_interact_only_through_the_global_blocks():
    batch = _batch(1, 3, min_objects=3, max_objects=3)
    moved = dict(batch)
    on_object_0 = (batch["vertex_object"] == 0)[..., None]
    moved["vertices_curr"] = batch["vertices_curr"] + 0.2 * on_object_0
    others = ~on_object_0[0, :, 0] & batch["vertex_mask"][0]
    with torch.no_grad():
        local_only = _model(num_blocks=1)  # a single block: object-local attention
        assert torch.equal(local_only(batch)[0, others], local_only(moved)[0, others])
        local_then_global = _model(num_blocks=2)
        assert (local_then_global(batch)[0, others] - local_then_global(moved)[0, others]).abs().max() > 1e-6


# ---- the network


def test_padding_does_not_change_real_predictions():
    batch = _batch(3, 6, min_objects=1, max_objects=4)
    model = _model()
    with torch.no_grad():
        together = model(batch)
        for i in range(3):
            single = _scene(batch, i)
            nv = single["vertices_curr"].shape[1]
            torch.testing.assert_close(model(single)[0], together[i, :nv], rtol=1e-10, atol=1e-10)


def test_extra_padding_with_garbage_values_changes_nothing():
    batch = _batch(2, 7)
    model = _model()
    gen = torch.Generator().manual_seed(0)
    padded = {}
    for key, value in batch.items():
        extra = 5 if key not in ("object_mask",) else 2
        shape = list(value.shape)
        shape[1] = extra
        if value.dtype == torch.bool:
            filler = torch.zeros(shape, dtype=torch.bool)
        elif value.is_floating_point():
            filler = 10 * torch.randn(shape, generator=gen, dtype=value.dtype)
        else:  # indices into real vertices/objects: padded faces may point anywhere valid
            filler = torch.randint(0, 2, shape, generator=gen)
        padded[key] = torch.cat([value, filler], 1)
    with torch.no_grad():
        nv = batch["vertices_curr"].shape[1]
        torch.testing.assert_close(model(padded)[:, :nv][batch["vertex_mask"]], model(batch)[batch["vertex_mask"]],
                                   rtol=1e-10, atol=1e-10)


def test_prediction_is_exactly_rigid_per_object():
    batch = _batch(3, 8, min_objects=2, max_objects=4)
    model = _model(output_gain=1.0)  # large initial outputs: far from the identity motion
    with torch.no_grad():
        pred = model(batch)
    curr = batch["vertices_curr"]
    assert (pred - curr)[batch["vertex_mask"]].abs().max() > 1e-2, "the test needs a non-trivial motion"
    for i in range(3):
        for k in range(int(batch["object_mask"][i].sum())):
            on = (batch["vertex_object"][i] == k) & batch["vertex_mask"][i]
            before, after = torch.cdist(curr[i, on], curr[i, on]), torch.cdist(pred[i, on], pred[i, on])
            assert (after - before).abs().max() < 1e-9


def test_fourier_frequencies_are_a_seeded_buffer_not_the_global_rng():
    a, b = _model(seed=0), _model(seed=1)
    assert torch.equal(a.embedding.frequencies, b.embedding.frequencies)
    assert "embedding.frequencies" in a.state_dict()
    assert not any(p is a.embedding.frequencies for p in a.parameters())
    other = _model(rff_seed=1)
    assert not torch.equal(a.embedding.frequencies, other.embedding.frequencies)
    assert a.embedding.frequencies.shape == (3, TINY.rff_frequencies)


def test_bf16_autocast_keeps_fourier_phases_in_float32():
    torch.manual_seed(0)
    model = Transformer(TINY)
    batch = random_rigid_scene_batch(2, seed=2, dtype=torch.float32)
    batch = {**batch, **{k: batch[k] + 40.0 for k in ("vertices_prev", "vertices_curr")}}  # far out: big phases
    prev, curr = face_corners(batch, "vertices_prev"), face_corners(batch, "vertices_curr")
    with torch.no_grad():
        features = model.embedding.features(prev, curr)
        full = model.predict_corners(batch) - curr
        with torch.autocast("cpu", dtype=torch.bfloat16):
            features_autocast = model.embedding.features(prev, curr)
            assert model.embedding(prev, curr).dtype == torch.bfloat16  # the rest does run in bf16
            low = model.predict_corners(batch) - curr
            assert torch.isfinite(model(batch)).all()
    assert features_autocast.dtype == torch.float32
    torch.testing.assert_close(features_autocast, features, rtol=0, atol=0)
    assert low.dtype == torch.float32
    # bf16 blocks keep the predicted displacements to about 1%
    real = batch["face_mask"]
    assert (low - full)[real].abs().max() < 0.03 * full[real].abs().max()


def test_overfits_a_tiny_batch_of_rigid_scenes():
    batch = random_rigid_scene_batch(batch_size=2, seed=0, dtype=torch.float32)
    torch.manual_seed(0)
    model = Transformer(TRANSFORMER_SIZES["xxs"])
    steps = 200
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    losses = []
    for _ in range(steps):
        loss = masked_vertex_mse(model(batch), batch["vertices_target"], batch["vertex_mask"])
        opt.zero_grad()
        loss.backward()
        opt.step()
        schedule.step()
        losses.append(loss.item())
    assert all(math.isfinite(x) for x in losses)
    assert losses[-1] < losses[0] / 100
    assert losses[-1] < 1e-3
