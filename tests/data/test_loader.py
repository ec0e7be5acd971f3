"""Dataset and loaders: sample indexing, packed batches, contacts, data fractions, augmentation, workers,
resumption, the structure of future batches, and the shard checksums of stats.json."""

import json
import shutil

import numpy as np
import pytest
import torch

from eqscale.data.augment import sample_transform
from eqscale.data.batch import BATCH_KEYS, batch_structure, collate_scenes, per_scene_squared_error, validate_batch
from eqscale.data.dataset import SampleOrder, TokenDataset, eval_batches, make_loader, train_batch_stream
from eqscale.data.token_format import STATS_NAME, TokenShardError, contact_frames
from eqscale.physics.raw_format import open_raw_shard, read_trajectory
from eqscale.symmetry import apply_to_points


def _same(batches_a, batches_b):
    batches_a, batches_b = list(batches_a), list(batches_b)
    assert len(batches_a) == len(batches_b)
    for step, (a, b) in enumerate(zip(batches_a, batches_b)):
        assert a.keys() == b.keys()
        for key in a:
            assert torch.equal(a[key], b[key]), f"batch {step} differs in {key}"


def _sources(ds):
    return {(s["source_shard"], s["source_index"]) for s in map(ds.source_of, range(ds.num_trajectories))}


def test_samples_cover_t_from_1_to_T_minus_1_minus_h(tokens_dir):
    for horizon in (1, 4):
        ds = TokenDataset(tokens_dir, "train", horizon)
        assert ds.samples_per_trajectory == ds.num_frames - 1 - horizon
        assert len(ds) == ds.num_trajectories * ds.samples_per_trajectory
        assert ds.locate(0) == (0, 1)
        assert ds.locate(len(ds) - 1) == (ds.num_trajectories - 1, ds.num_frames - 1 - horizon)
        assert ds.locate(ds.samples_per_trajectory) == (1, 1)
        with pytest.raises(IndexError):
            ds.locate(len(ds))
        with pytest.raises(IndexError):
            ds.get_sample(0, 0)  # t-1 would be frame -1
        with pytest.raises(IndexError):
            ds.get_sample(0, ds.num_frames - horizon)  # t+h would be past the last frame


def test_collated_batch_is_packed_in_the_batch_layout(tokens_dir):
    ds = TokenDataset(tokens_dir, "train", 1)
    # scenes of different sizes: one sample from each of the first trajectories
    samples = [ds[i * ds.samples_per_trajectory + 3] for i in range(min(4, ds.num_trajectories))]
    assert len({len(s["faces"]) for s in samples}) > 1
    batch = collate_scenes(samples)
    validate_batch(batch)
    assert set(batch) == set(BATCH_KEYS)
    for key in ("vertices_prev", "vertices_curr", "vertices_target"):
        assert batch[key].dtype == torch.float32
    for key in ("vertex_object", "faces", "face_object", "object_scene", "object_offsets", "scene_offsets", "sample"):
        assert batch[key].dtype == torch.int64
    assert batch["faces"].shape[0] == sum(len(s["faces"]) for s in samples)  # no padding at all
    v0 = f0 = k0 = 0
    for i, s in enumerate(samples):
        nv, nf, k = len(s["vertices_curr"]), len(s["faces"]), s["num_objects"]
        assert batch["scene_offsets"][i : i + 2].tolist() == [f0, f0 + nf]
        assert batch["scene_vertex_offsets"][i : i + 2].tolist() == [v0, v0 + nv]
        assert torch.equal(batch["vertices_curr"][v0 : v0 + nv], torch.from_numpy(s["vertices_curr"]))
        assert torch.equal(batch["faces"][f0 : f0 + nf], torch.from_numpy(s["faces"]) + v0)
        assert torch.equal(batch["face_object"][f0 : f0 + nf], torch.from_numpy(s["face_object"]) + k0)
        assert batch["object_scene"][k0 : k0 + k].tolist() == [i] * k
        assert int(batch["sample"][i]) == i * ds.samples_per_trajectory + 3
        assert bool(batch["in_contact"][i]) == s["in_contact"]
        v0, f0, k0 = v0 + nv, f0 + nf, k0 + k
    sq_sum, n_values = per_scene_squared_error(batch["vertices_target"], batch["vertices_curr"], batch)
    for i, s in enumerate(samples):
        assert float(sq_sum[i]) == pytest.approx(float(((s["vertices_target"] - s["vertices_curr"]) ** 2).sum()),
                                                 rel=1e-5)
        assert int(n_values[i]) == 3 * len(s["vertices_curr"])
    with pytest.raises(ValueError, match="ordered by object"):
        collate_scenes([{**samples[0], "face_object": samples[0]["face_object"][::-1].copy()}])


def test_contact_flags_cover_the_frames_of_each_sample(tokens_dir, raw_shards):
    raw = {}
    for path in raw_shards:
        with open_raw_shard(path) as fh:
            for name in fh["trajectories"]:
                traj = read_trajectory(fh["trajectories"][name], path)
                raw[(int(fh.attrs["shard"]), traj["index"])] = traj
    horizon = 3
    seen = set()
    for split in ("train", "val", "test"):
        ds = TokenDataset(tokens_dir, split, horizon)
        for trajectory in range(ds.num_trajectories):
            src = ds.source_of(trajectory)
            contacts = raw[(src["source_shard"], src["source_index"])]["contacts"]
            touching = {int(f) for f, _, b, _ in contacts if b >= 0}
            on_floor = {int(f) for f, _, b, _ in contacts if b < 0}
            for t in range(1, ds.num_frames - horizon):
                frames = set(range(t - 1, t + horizon + 1))
                sample = ds.get_sample(trajectory, t)
                assert sample["in_contact"] == bool(frames & touching)
                assert sample["floor_contact"] == bool(frames & on_floor)
                seen.add((sample["in_contact"], sample["floor_contact"]))
    # the scenes do collide with each other and land on the floor: every flag takes both values
    assert {flags[0] for flags in seen} == {False, True} and {flags[1] for flags in seen} == {False, True}
    flags = contact_frames(np.array([[2, 0, 1, 5.0], [4, 1, -1, 2.0]]), 6)
    assert flags[0].tolist() == [False, False, True, False, False, False]
    assert flags[1].tolist() == [False, False, False, False, True, False]


def test_data_fraction_subsets_are_nested_and_deterministic(tokens_dir):
    full = TokenDataset(tokens_dir, "train", 1)
    n = full.num_trajectories
    previous = set()
    for fraction in (0.1, 0.25, 0.5, 0.75, 1.0):
        ds = TokenDataset(tokens_dir, "train", 1, data_fraction=fraction)
        sources = _sources(ds)
        assert len(sources) == ds.num_trajectories == max(1, int(np.ceil(fraction * n)))
        assert previous <= sources
        assert sources == _sources(TokenDataset(tokens_dir, "train", 1, data_fraction=fraction, seed=5))
        previous = sources
    assert previous == _sources(full)
    for bad in (0.0, 1.01, -1.0):
        with pytest.raises(ValueError, match=r"data_fraction must lie in \(0, 1\]"):
            TokenDataset(tokens_dir, "train", 1, data_fraction=bad)


def test_augmented_sample_is_the_transform_of_the_plain_sample(tokens_dir):
    plain = TokenDataset(tokens_dir, "train", 2)
    seed = 11
    augmented = TokenDataset(tokens_dir, "train", 2, augment=True, seed=seed)
    for epoch, index in ((0, 0), (0, 17), (3, 17), (1, len(plain) - 1)):
        q, t = sample_transform(seed, epoch, index)
        # a problem-group element: keeps z, det +-1, no vertical shift
        assert torch.allclose(q[0, 2], torch.tensor([0.0, 0.0, 1.0], dtype=q.dtype))
        assert abs(abs(float(torch.linalg.det(q[0]))) - 1) < 1e-12 and float(t[0, 2]) == 0.0
        base, moved = plain[index], augmented[(epoch, index)]
        for key in ("vertices_prev", "vertices_curr", "vertices_target"):
            # the evaluation's own way of applying a transform
            expected = apply_to_points((q, t), torch.from_numpy(base[key].astype(np.float64))[None])[0].numpy()
            np.testing.assert_allclose(moved[key], expected, rtol=1e-6, atol=1e-5)
            assert np.abs(moved[key] - base[key]).max() > 1e-3  # the transform is not the identity
        for key in ("faces", "face_object", "vertex_object"):
            np.testing.assert_array_equal(moved[key], base[key])
    # the transform depends on the epoch and on the seed; the same key always gives the same one
    assert not torch.equal(sample_transform(seed, 0, 17)[0], sample_transform(seed, 3, 17)[0])
    assert not torch.equal(sample_transform(seed, 0, 17)[0], sample_transform(seed + 1, 0, 17)[0])
    np.testing.assert_array_equal(augmented[(3, 17)]["vertices_target"], augmented[(3, 17)]["vertices_target"])


def test_mirrors_and_rotations_both_occur():
    dets = [float(torch.linalg.det(sample_transform(0, 0, i)[0][0])) for i in range(64)]
    assert 10 < sum(d < 0 for d in dets) < 54


def test_shuffled_order_visits_every_sample_once_per_epoch():
    order = SampleOrder(np.arange(23), seed=4, shuffle=True)
    keys = order.keys(0, 3 * 23)
    for epoch in range(3):
        chunk = keys[epoch * 23:(epoch + 1) * 23]
        assert {e for e, _ in chunk} == {epoch}
        assert sorted(i for _, i in chunk) == list(range(23))
    assert [i for _, i in keys[:23]] != [i for _, i in keys[23:46]]
    assert keys[30:40] == SampleOrder(np.arange(23), seed=4, shuffle=True).keys(30, 40)
    assert keys != SampleOrder(np.arange(23), seed=5, shuffle=True).keys(0, 3 * 23)


def test_workers_give_identical_batches(tokens_dir):
    kwargs = dict(horizon=1, data_fraction=1.0, augment=True, seed=3, shuffle=True, epochs=None)
    serial = make_loader(tokens_dir, "train", 5, num_workers=0, **kwargs).batches_from(0)
    parallel = make_loader(tokens_dir, "train", 5, num_workers=2, **kwargs).batches_from(0)
    _same([next(serial) for _ in range(9)], [next(parallel) for _ in range(9)])
    _same(make_loader(tokens_dir, "val", 4, horizon=1, num_workers=0, shuffle=False),
          make_loader(tokens_dir, "val", 4, horizon=1, num_workers=2, shuffle=False))


def test_resuming_at_a_step_gives_the_same_batches(tokens_dir):
    loader = make_loader(tokens_dir, "train", 7, horizon=1, augment=True, seed=2, epochs=2)
    everything = list(loader)
    assert len(everything) == len(loader) == -(-2 * len(loader.dataset) // 7)
    _same(everything[10:], loader.batches_from(10))
    _same(everything[10:], make_loader(tokens_dir, "train", 7, horizon=1, augment=True, seed=2, epochs=2,
                                       start_step=10))
    # the endless training stream across an epoch boundary (batches straddle it; none are short)
    stream = train_batch_stream(tokens_dir, batch_size=16, horizon=1, data_fraction=0.5, augment=True, seed=9,
                                num_workers=0)
    per_epoch = stream.num_samples / 16
    steps = int(per_epoch) + 3
    it = stream(0)
    from_zero = [next(it) for _ in range(steps)]
    it = stream(steps - 4)
    _same(from_zero[steps - 4:], [next(it) for _ in range(4)])
    assert all(b["sample"].shape[0] == 16 for b in from_zero)
    assert stream.seed == 9 and stream.num_trajectories == TokenDataset(tokens_dir, "train", 1, 0.5).num_trajectories


def test_seed_changes_the_order_and_drop_last_drops_the_short_batch(tokens_dir):
    a = make_loader(tokens_dir, "train", 8, horizon=1, seed=0)
    b = make_loader(tokens_dir, "train", 8, horizon=1, seed=1)
    assert a.order.keys(0, 8) != b.order.keys(0, 8)
    n = len(a.dataset)
    dropped = make_loader(tokens_dir, "train", 8, horizon=1, drop_last=True)
    assert len(dropped) == n // 8 and len(a) == -(-n // 8)
    assert list(a)[-1]["sample"].shape[0] == (n % 8 or 8)


def test_eval_batches_cover_the_split_once_in_order(tokens_dir):
    ds = TokenDataset(tokens_dir, "test", 1)
    batches = list(eval_batches(tokens_dir, "test", batch_size=6, horizon=1))
    assert torch.cat([b["sample"] for b in batches]).tolist() == list(range(len(ds)))
    _same(batches[:1], [collate_scenes([ds[i] for i in range(6)])])
    capped = list(eval_batches(tokens_dir, "test", batch_size=6, horizon=1, max_samples=10))
    samples = torch.cat([b["sample"] for b in capped]).tolist()
    assert len(samples) == 10 and samples[0] == 0 and samples[-1] == len(ds) - 1  # evenly spaced, both ends


def test_structure_of_future_batches_is_known_without_reading_them(tokens_dir):
    loader = make_loader(tokens_dir, "train", 5, horizon=1, augment=True, seed=4, epochs=None)
    per_epoch = len(loader.dataset) // 5
    steps = [0, 1, per_epoch, per_epoch + 1, 3 * per_epoch + 2]  # across epoch boundaries
    arrays = loader.structures(0, steps[-1] + 1)
    assert arrays.tokens.shape == (steps[-1] + 1,)
    for step in steps:
        expected = batch_structure(loader.batch(step))
        assert loader.structure(step) == expected
        assert all(int(getattr(arrays, f)[step]) == getattr(expected, f)
                   for f in ("tokens", "scene_tokens_sq", "object_tokens_sq", "objects", "scenes"))
    finite = make_loader(tokens_dir, "val", 4, horizon=1, shuffle=False)
    last = len(finite) - 1
    assert finite.structure(last) == batch_structure(list(finite)[-1])  # a short last batch
    assert len(finite.structures(0, last + 10).tokens) == len(finite)
    with pytest.raises(IndexError, match="past the end"):
        finite.structure(last + 1)
    mean = loader.dataset.expected_structure(5)
    assert mean.scenes == 5 and 0.5 * arrays.tokens.mean() < mean.tokens < 2 * arrays.tokens.mean()


def test_shards_that_changed_after_tokenizing_are_refused(tokens_dir, tmp_path):
    out = tmp_path / "tokens"
    shutil.copytree(tokens_dir, out)
    stats = json.loads((out / STATS_NAME).read_text())
    entry = stats["splits"]["train"]["shards"][0]
    entry["sha256"] = "0" * 64
    (out / STATS_NAME).write_text(json.dumps(stats))
    with pytest.raises(TokenShardError, match="sha256") as err:
        TokenDataset(out, "train", 1)
    assert str(out / entry["name"]) in str(err.value)
    TokenDataset(out, "train", 1, verify=False)  # the count check alone passes
    entry["trajectories"] += 1
    (out / STATS_NAME).write_text(json.dumps(stats))
    with pytest.raises(TokenShardError, match="lists"):
        TokenDataset(out, "train", 1, verify=False)
