"""The transformer baseline on packed batches: multi-query attention, the object-local / global pattern,
scenes that do not see each other, packed equals padded attention on real batches, exactly rigid
outputs, bf16 autocast, and fitting a tiny batch."""

from __future__ import annotations

import math

import pytest
import torch

from eqscale.data.batch import face_corners, num_scenes, vertex_mse
from eqscale.data.dataset import make_loader
from eqscale.models.attention import BlockLayout, padded_reference
from eqscale.models.configs import TRANSFORMER_SIZES, TransformerConfig
from eqscale.models.transformer import MultiQueryAttention, Transformer
from helpers.scenes import random_rigid_scene_batch, scene_of

TINY = TransformerConfig(width=16, num_blocks=2, num_heads=2, rff_frequencies=4)


def _model(config: TransformerConfig = TINY, seed: int = 0, **overrides) -> Transformer:
    torch.manual_seed(seed)
    if overrides:
        config = TransformerConfig(**{**config.__dict__, **overrides})
    return Transformer(config).double()


def _batch(batch_size=3, seed=0, **kwargs):
    return random_rigid_scene_batch(batch_size=batch_size, seed=seed, dtype=torch.float64, **kwargs)


# ---- attention


def test_multi_query_attention_matches_explicit_shared_key_value_math():
    torch.manual_seed(1)
    config = TransformerConfig(width=24, num_blocks=1, num_heads=2)  # head width 12, padded to 16
    assert config.padded_head_dim == 16
    attention = MultiQueryAttention(config).double()
    x = torch.randn(9, 24, dtype=torch.float64)
    layout = BlockLayout([0, 4, 9])
    h, d = 2, 12
    qkv = attention.qkv(x).unflatten(-1, (h + 2, d))
    q, k, v = qkv[:, :h], qkv[:, h], qkv[:, h + 1]
    logits = torch.einsum("nhd,md->hnm", q, k) / math.sqrt(d)
    block = layout.block_index()
    weights = logits.masked_fill(block[:, None] != block[None, :], float("-inf")).softmax(-1)
    expected = attention.out(torch.einsum("hnm,md->nhd", weights, v).reshape(9, h * d))
    torch.testing.assert_close(attention(x, layout), expected, rtol=1e-12, atol=1e-12)


def test_objects_interact_only_through_the_global_blocks():
    batch = _batch(1, 3, min_objects=3, max_objects=3)
    moved = dict(batch)
    on_object_0 = (batch["vertex_object"] == 0)[..., None]
    moved["vertices_curr"] = batch["vertices_curr"] + 0.2 * on_object_0
    others = ~on_object_0[:, 0]
    with torch.no_grad():
        local_only = _model(num_blocks=1)  # a single block: object-local attention
        assert torch.equal(local_only(batch)[others], local_only(moved)[others])
        local_then_global = _model(num_blocks=2)
        assert (local_then_global(batch)[others] - local_then_global(moved)[others]).abs().max() > 1e-6


# ---- the network


def test_scenes_of_a_batch_do_not_see_each_other():
    batch = _batch(3, 6, min_objects=1, max_objects=4)
    model = _model()
    with torch.no_grad():
        together = model(batch)
        offsets = batch["scene_vertex_offsets"].tolist()
        for i in range(num_scenes(batch)):
            torch.testing.assert_close(model(scene_of(batch, i)), together[offsets[i] : offsets[i + 1]], rtol=1e-10,
                                       atol=1e-10)


def test_packed_attention_equals_padded_attention_on_real_batches(tokens_dir):
    batch = make_loader(tokens_dir, "train", 4, horizon=1, seed=0).batch(0)
    torch.manual_seed(0)
    model = Transformer(TransformerConfig(width=32, num_blocks=4, num_heads=2))
    with torch.no_grad():
        packed = model(batch)
        with padded_reference():
            padded = model(batch)
    assert packed.dtype == torch.float32
    assert (packed - padded).abs().max() <= 1e-6 * max(1.0, float(padded.abs().max()))


def test_prediction_is_exactly_rigid_per_object():
    batch = _batch(3, 8, min_objects=2, max_objects=4)
    model = _model(output_gain=1.0)  # large initial outputs: far from the identity motion
    with torch.no_grad():
        pred = model(batch)
    curr = batch["vertices_curr"]
    assert (pred - curr).abs().max() > 1e-2, "the test needs a non-trivial motion"
    for k in range(batch["object_scene"].shape[0]):
        on = batch["vertex_object"] == k
        before, after = torch.cdist(curr[on], curr[on]), torch.cdist(pred[on], pred[on])
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
    assert (low - full).abs().max() < 0.03 * full.abs().max()


def test_overfits_a_tiny_batch_of_rigid_scenes():
    batch = random_rigid_scene_batch(batch_size=2, seed=0, dtype=torch.float32)
    torch.manual_seed(0)
    model = Transformer(TRANSFORMER_SIZES["xxs"])
    steps = 200
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    losses = []
    for _ in range(steps):
        loss = vertex_mse(model(batch), batch["vertices_target"])
        opt.zero_grad()
        loss.backward()
        opt.step()
        schedule.step()
        losses.append(loss.item())
    assert all(math.isfinite(x) for x in losses)
    assert losses[-1] < losses[0] / 100
    assert losses[-1] < 1e-3
