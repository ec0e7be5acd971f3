"""The GATr network: exact symmetry (E(3) with the floor moved, the problem group with it fixed),
the floor input is really used, padding is inert, and it can fit a tiny batch."""

from __future__ import annotations

import pytest
import torch

from eqscale import symmetry
from eqscale.algebra import embed_oriented_plane
from eqscale.data.batch import masked_vertex_mse
from eqscale.models.gatr import GATr, GATrConfig, attention_masks
from helpers.equivariance import assert_equivariant, random_group
from helpers.scenes import random_rigid_scene_batch

TINY = [GATrConfig(mv_channels=4, s_channels=8, num_blocks=2, num_heads=2),
        GATrConfig(mv_channels=2, s_channels=4, num_blocks=3, num_heads=1, head_odd=2)]


def _model(config: GATrConfig, seed: int = 0) -> GATr:
    torch.manual_seed(seed)
    return GATr(config).double()


def _batch(batch_size=3, seed=0, **kwargs):
    return random_rigid_scene_batch(batch_size=batch_size, seed=seed, dtype=torch.float64, **kwargs)


@pytest.mark.parametrize("config", TINY)
@pytest.mark.parametrize("batch_size, seed", [(2, 0), (4, 1)])
def test_equivariant_under_e3_with_reflections_when_the_floor_moves_too(config, batch_size, seed):
    model = _model(config)
    batch = _batch(batch_size, seed)
    floor = model.floor_plane.expand(batch_size, 16)
    group = random_group(batch_size, seed=seed + 10)
    assert group.odd.any(), "the draw should include reflections"
    assert_equivariant(lambda b, f: model(b, f), (batch, floor), ("batch", "mv"), "points", group=group)


@pytest.mark.parametrize("config", TINY)
def test_equivariant_under_the_problem_group_with_the_floor_fixed(config):
    model = _model(config)
    batch = _batch(4, 2)
    group = random_group(4, seed=3, kind="problem")
    assert group.odd.any()
    assert_equivariant(model, (batch,), ("batch",), "points", group=group)


def test_the_floor_breaks_general_rotations_measurably():
    model = _model(TINY[0])
    batch = _batch(3, 4)
    with torch.no_grad():
        rotations = [symmetry.random_e3(3, torch.Generator().manual_seed(i)) for i in range(3)]
        mirrors_and_turns = [symmetry.random_problem_transform(3, torch.Generator().manual_seed(i)) for i in range(3)]
        # the evaluation's metric: violation relative to the size of the predicted motion
        broken = symmetry.equivariance_error(model, batch, rotations)
        kept = symmetry.equivariance_error(model, batch, mirrors_and_turns)
    assert broken > 1e-3  # orders of magnitude above the 1e-9 of the kept group
    assert kept < 1e-9


def test_a_moved_floor_changes_the_prediction_and_the_config_sets_the_default():
    batch = _batch(2, 5)
    model = _model(TINY[0])
    tilted = embed_oriented_plane(torch.tensor([0.3, 0.0, 1.0], dtype=torch.float64), torch.zeros(3, dtype=torch.float64))
    with torch.no_grad():
        default, moved = model(batch), model(batch, tilted)
        assert (default - moved).abs().max() > 1e-4
        other = GATrConfig(4, 8, 2, num_heads=2, floor_normal=(0.3, 0.0, 1.0))
        torch.manual_seed(0)
        model_tilted = GATr(other).double()
        torch.testing.assert_close(model_tilted(batch), moved)
    torch.testing.assert_close(model.floor_plane, embed_oriented_plane(torch.tensor([0.0, 0, 1]), torch.zeros(3)).double())


def test_padding_does_not_change_real_predictions():
    batch = _batch(3, 6, min_objects=1, max_objects=4)
    model = _model(TINY[0])
    with torch.no_grad():
        together = model(batch)
        for i in range(3):
            nv, nf = int(batch["vertex_mask"][i].sum()), int(batch["face_mask"][i].sum())
            k = int(batch["object_mask"][i].sum())
            single = {key: value[i : i + 1] for key, value in batch.items()}
            single = {**single, **{key: single[key][:, :nv] for key in ("vertices_prev", "vertices_curr",
                                                                       "vertices_target", "vertex_object", "vertex_mask")}}
            single = {**single, **{key: single[key][:, :nf] for key in ("faces", "face_object", "face_mask")}}
            single["object_mask"] = single["object_mask"][:, :k]
            torch.testing.assert_close(model(single)[0], together[i, :nv], rtol=1e-10, atol=1e-10)


def test_attention_masks_are_object_local_and_global():
    face_object = torch.tensor([[0, 0, 1, 1, 0]])
    face_mask = torch.tensor([[True, True, True, False, False]])
    local, global_ = attention_masks(face_object, face_mask)
    assert local[0].tolist() == [[True, True, False, False, False], [True, True, False, False, False],
                                 [False, False, True, False, False], [False, False, False, True, False],
                                 [False, False, False, False, True]]
    assert global_[0, :3, :3].all() and not global_[0, :3, 3:].any() and not global_[0, 3, :3].any()


def test_overfits_a_tiny_batch_of_rigid_scenes():
    batch = random_rigid_scene_batch(batch_size=2, seed=0, dtype=torch.float32)
    torch.manual_seed(0)
    model = GATr(TINY[0])
    steps = 200
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    losses = []
    for _ in range(steps):
        loss = masked_vertex_mse(model(batch), batch["vertices_target"], batch["vertex_mask"])
        opt.zero_grad()
        loss.backward()
        opt.step()
        schedule.step()
        losses.append(loss.item())
    assert all(map(lambda x: x == x, losses)), "NaN loss"
    assert losses[-1] < losses[0] / 100
    assert losses[-1] < 1e-3
