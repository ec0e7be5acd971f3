"""The GATr network on packed batches: exact symmetry (E(3) with the floor moved, the problem group with it
fixed; float64, reflections and large translations), the floor input is really used, scenes do not
see each other, packed equals padded attention on real batches, and it can fit a tiny batch."""

from __future__ import annotations

import pytest
import torch

from eqscale.algebra import embed_oriented_plane
from eqscale.data.batch import act_on_batch, act_on_vertices, num_scenes, prediction_equivariance_error, vertex_mse
from eqscale.data.dataset import make_loader
from eqscale.models.attention import padded_reference
from eqscale.models.configs import GATrConfig
from eqscale.models.gatr import GATr
from eqscale.symmetry import assert_equivariant, random_group
from helpers.scenes import random_rigid_scene_batch, scene_of

TINY = [GATrConfig(mv_channels=4, s_channels=8, num_blocks=2, num_heads=2),
        GATrConfig(mv_channels=2, s_channels=4, num_blocks=3, num_heads=1, head_odd=2)]


def _model(config: GATrConfig, seed: int = 0) -> GATr:
    torch.manual_seed(seed)
    return GATr(config).double()


def _batch(batch_size=3, seed=0, **kwargs):
    return random_rigid_scene_batch(batch_size=batch_size, seed=seed, dtype=torch.float64, **kwargs)


@pytest.mark.parametrize("config", TINY)
@pytest.mark.parametrize("batch_size, seed, shift", [(2, 0, 3.0), (4, 1, 1e3)])
def test_equivariant_under_e3_with_reflections_when_the_floor_moves_too(config, batch_size, seed, shift):
    model = _model(config)
    batch = _batch(batch_size, seed)
    floors = model.floor_plane.expand(batch_size, 16)  # one floor plane per scene, moved with it
    group = random_group(batch_size, seed=seed + 10, translation_scale=shift)
    assert group.odd.any(), "the draw should include reflections"
    assert_equivariant(model, (batch, floors), (act_on_batch, "mv"), act_on_vertices(batch), group=group,
                       baseline=lambda b, f: b["vertices_curr"])


@pytest.mark.parametrize("config", TINY)
def test_equivariant_under_the_problem_group_with_the_floor_fixed(config):
    model = _model(config)
    batch = _batch(4, 2)
    group = random_group(4, seed=3, kind="problem", translation_scale=1e3)
    assert group.odd.any()
    with torch.no_grad():
        assert prediction_equivariance_error(model, batch, group) < 1e-9


def test_the_floor_breaks_general_rotations_measurably():
    model = _model(TINY[0])
    batch = _batch(3, 4)
    with torch.no_grad():
        broken = max(prediction_equivariance_error(model, batch, random_group(3, seed=i)) for i in range(3))
        kept = max(prediction_equivariance_error(model, batch, random_group(3, seed=i, kind="problem"))
                   for i in range(3))
    assert broken > 1e-3  # orders of magnitude above the 1e-9 of the kept group
    assert kept < 1e-9


def test_a_moved_floor_changes_the_prediction_and_the_config_sets_the_default():
    batch = _batch(2, 5)
    model = _model(TINY[0])
    tilted = embed_oriented_plane(torch.tensor([0.3, 0.0, 1.0], dtype=torch.float64),
                                  torch.zeros(3, dtype=torch.float64))
    with torch.no_grad():
        default, moved = model(batch), model(batch, tilted)
        assert (default - moved).abs().max() > 1e-4
        other = GATrConfig(4, 8, 2, num_heads=2, floor_normal=(0.3, 0.0, 1.0))
        torch.testing.assert_close(_model(other)(batch), moved)
        # a floor per scene: only the scene whose floor moved changes
        per_scene = torch.stack([model.floor_plane.double(), tilted])
        mixed = model(batch, per_scene)
        first = batch["scene_vertex_offsets"][1]
        torch.testing.assert_close(mixed[:first], default[:first])
        torch.testing.assert_close(mixed[first:], moved[first:])
    default_floor = embed_oriented_plane(torch.tensor([0.0, 0, 1]), torch.zeros(3)).double()
    torch.testing.assert_close(model.floor_plane, default_floor)


def test_scenes_of_a_batch_do_not_see_each_other():
    batch = _batch(3, 6, min_objects=1, max_objects=4)
    model = _model(TINY[0])
    with torch.no_grad():
        together = model(batch)
        offsets = batch["scene_vertex_offsets"].tolist()
        for i in range(num_scenes(batch)):
            torch.testing.assert_close(model(scene_of(batch, i)), together[offsets[i] : offsets[i + 1]], rtol=1e-10,
                                       atol=1e-10)


def test_packed_attention_equals_padded_attention_on_real_batches(tokens_dir):
    batch = make_loader(tokens_dir, "train", 4, horizon=1, seed=0).batch(0)
    assert len(set(batch["scene_offsets"].diff().tolist())) > 1  # scenes of different lengths
    torch.manual_seed(0)
    model = GATr(GATrConfig(mv_channels=4, s_channels=8, num_blocks=4, num_heads=2))
    with torch.no_grad():
        packed = model(batch)
        with padded_reference():
            padded = model(batch)
    assert packed.dtype == torch.float32
    assert (packed - padded).abs().max() <= 1e-6 * max(1.0, float(padded.abs().max()))


def test_overfits_a_tiny_batch_of_rigid_scenes():
    batch = random_rigid_scene_batch(batch_size=2, seed=0, dtype=torch.float32)
    torch.manual_seed(0)
    model = GATr(TINY[0])
    steps = 200
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    losses = []
    for _ in range(steps):
        loss = vertex_mse(model(batch), batch["vertices_target"])
        opt.zero_grad()
        loss.backward()
        opt.step()
        schedule.step()
        losses.append(loss.item())
    assert all(map(lambda x: x == x, losses)), "NaN loss"
    assert losses[-1] < losses[0] / 100
    assert losses[-1] < 1e-3
