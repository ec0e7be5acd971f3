"""Tokenize: exact round trip to the simulation, splits by trajectory, deterministic bytes, exact stats."""

import json

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from eqscale.config import deep_merge, validate_config
from eqscale.data.dataset import TokenDataset
from eqscale.data.token_format import (
    SPLITS, STATS_NAME, planned_token_files, read_shard_index, split_of, verify_token_shard,
)
from eqscale.data.tokenize import main, tokenize
from eqscale.physics.assets import read_meshes
from eqscale.physics.raw_format import ShardError, open_raw_shard, read_trajectory


def _raw_trajectories(raw_shards):
    out = {}
    for path in raw_shards:
        with open_raw_shard(path) as fh:
            shard = int(fh.attrs["shard"])
            for name in fh["trajectories"]:
                traj = read_trajectory(fh["trajectories"][name], path)
                out[(shard, traj["index"])] = traj
    return out


def _reference_vertices(traj, meshes, frame):
    """All vertices of a raw trajectory at `frame`, posed with scipy (independent of the loader)."""
    parts = []
    for k, asset in enumerate(traj["asset_ids"]):
        w, x, y, z = traj["quaternions"][frame, k]
        rotation = Rotation.from_quat([x, y, z, w])
        parts.append(rotation.apply(traj["scales"][k] * meshes[asset][0]) + traj["positions"][frame, k])
    return np.concatenate(parts)


@pytest.mark.parametrize("horizon", [1, 3])
def test_loader_vertices_equal_simulated_poses_on_the_asset_meshes(tokens_dir, raw_shards, asset_dir, horizon):
    meshes = read_meshes(asset_dir)
    raw = _raw_trajectories(raw_shards)
    checked = 0
    for split in SPLITS:
        ds = TokenDataset(tokens_dir, split, horizon)
        for trajectory in range(ds.num_trajectories):
            src = ds.source_of(trajectory)
            traj = raw[(src["source_shard"], src["source_index"])]
            num_frames = traj["positions"].shape[0]
            for t in (1, num_frames // 2, num_frames - 1 - horizon):  # first, middle and last valid t
                sample = ds.get_sample(trajectory, t)
                for key, frame in (("vertices_prev", t - 1), ("vertices_curr", t), ("vertices_target", t + horizon)):
                    assert sample[key].dtype == np.float32
                    np.testing.assert_allclose(sample[key], _reference_vertices(traj, meshes, frame),
                                               rtol=1e-6, atol=2e-6, err_msg=f"{split} {src} t={t} {key}")
                # faces are each object's mesh faces, offset into the scene's vertex list, in object order
                offsets = np.cumsum([0] + [len(meshes[a][0]) for a in traj["asset_ids"]])
                expected = np.concatenate([meshes[a][1] + o for a, o in zip(traj["asset_ids"], offsets)])
                np.testing.assert_array_equal(sample["faces"], expected)
                np.testing.assert_array_equal(
                    sample["face_object"], np.repeat(np.arange(len(traj["asset_ids"])),
                                                     [len(meshes[a][1]) for a in traj["asset_ids"]]))
                np.testing.assert_array_equal(sample["vertex_object"][sample["faces"]],
                                              sample["face_object"][:, None].repeat(3, 1))
                checked += 1
    assert checked == 3 * len(raw)


def test_every_trajectory_lands_in_exactly_one_split(tokens_dir, raw_shards, token_config):
    raw = _raw_trajectories(raw_shards)
    seen = {}
    for split in SPLITS:
        ds = TokenDataset(tokens_dir, split, 1)
        for trajectory in range(ds.num_trajectories):
            src = ds.source_of(trajectory)
            key = (src["source_shard"], src["source_index"])
            assert key not in seen, f"{key} is in both {seen.get(key)} and {split}"
            seen[key] = split
    assert set(seen) == set(raw)
    tok = token_config["tokens"]
    for (shard, index), split in seen.items():
        assert split == split_of(token_config["seed"], shard, index, tok["val_fraction"], tok["test_fraction"])
    assert {split for split in seen.values()} == set(SPLITS)  # the fixture's fractions fill every split


def test_split_of_a_trajectory_does_not_depend_on_the_other_shards(tokens_dir, raw_shards, asset_dir,
                                                                      token_config, tmp_path):
    tokenize([raw_shards[1]], asset_dir, tmp_path, token_config, progress=False)
    for split in SPLITS:
        alone = TokenDataset(tmp_path, split, 1)
        together = TokenDataset(tokens_dir, split, 1)
        together_sources = {(s["source_shard"], s["source_index"])
                            for s in map(together.source_of, range(together.num_trajectories))}
        for trajectory in range(alone.num_trajectories):
            src = alone.source_of(trajectory)
            assert src["source_shard"] == 1
            assert (1, src["source_index"]) in together_sources


def test_writes_the_planned_files_and_valid_shards(tokens_dir, token_config):
    written = sorted(p.name for p in tokens_dir.glob("*.h5"))
    assert written == sorted(planned_token_files(token_config))
    stats = json.loads((tokens_dir / STATS_NAME).read_text())
    for split in SPLITS:
        listed = stats["splits"][split]["shards"]
        assert [e["name"] for e in listed] == sorted(p.name for p in tokens_dir.glob(f"{split}-*.h5"))
        assert sum(e["trajectories"] for e in listed) == stats["splits"][split]["trajectories"]
        assert all(e["trajectories"] <= token_config["tokens"]["trajectories_per_shard"] for e in listed)
    for path in tokens_dir.glob("*.h5"):
        verify_token_shard(path)
        index = read_shard_index(path)
        assert index["attrs"]["split"] == path.name.split("-")[0]
        offsets = index["trajectories/object_offsets"]
        assert offsets[0] == 0 and np.all(np.diff(offsets) >= 1)


def test_same_inputs_give_identical_bytes(raw_shards, asset_dir, token_config, tmp_path):
    outs = [tmp_path / "a", tmp_path / "b"]
    for out in outs:
        tokenize(list(reversed(raw_shards)) if out.name == "b" else raw_shards, asset_dir, out, token_config,
                 progress=False)
    names = sorted(p.name for p in outs[0].iterdir())
    assert names == sorted(p.name for p in outs[1].iterdir())
    assert not [n for n in names if n.startswith(".")]  # no temp files left behind
    for name in names:
        assert (outs[0] / name).read_bytes() == (outs[1] / name).read_bytes(), name


def test_stats_are_train_only_and_match_brute_force(tokens_dir, raw_shards, asset_dir):
    stats = json.loads((tokens_dir / STATS_NAME).read_text())
    assert "normalisation" in stats["splits"]["train"]
    assert "normalisation" not in stats["splits"]["val"] and "normalisation" not in stats["splits"]["test"]
    meshes = read_meshes(asset_dir)
    raw = _raw_trajectories(raw_shards)
    h = stats["horizon"]
    ds = TokenDataset(tokens_dir, "train", h)
    positions, velocities, displacements = [], [], []
    faces = 0
    structure = np.zeros(4)  # tokens, tokens^2, sum of object tokens^2, objects per trajectory
    for trajectory in range(ds.num_trajectories):
        src = ds.source_of(trajectory)
        traj = raw[(src["source_shard"], src["source_index"])]
        num_frames = traj["positions"].shape[0]
        frames = np.stack([_reference_vertices(traj, meshes, f) for f in range(num_frames)])
        positions.append(frames.reshape(-1, 3))
        velocities.append((frames[1:num_frames - h] - frames[0:num_frames - h - 1]).reshape(-1, 3))
        displacements.append((frames[1 + h:] - frames[1:num_frames - h]).reshape(-1, 3))
        faces += sum(len(meshes[a][1]) for a in traj["asset_ids"])
        object_faces = np.array([len(meshes[a][1]) for a in traj["asset_ids"]])
        structure += [object_faces.sum(), object_faces.sum() ** 2, (object_faces**2).sum(), len(object_faces)]
    norm = stats["splits"]["train"]["normalisation"]
    for key, values in (("vertex_position", positions), ("vertex_velocity", velocities),
                        ("vertex_displacement_horizon", displacements)):
        values = np.concatenate(values)
        np.testing.assert_allclose(norm[key]["mean"], values.mean(0), rtol=1e-7, atol=1e-10)
        np.testing.assert_allclose(norm[key]["std"], values.std(0), rtol=1e-7, atol=1e-10)
        np.testing.assert_allclose(norm[key]["rms"], np.sqrt((values**2).mean()), rtol=1e-7)
    assert stats["splits"]["train"]["faces"] == faces
    assert stats["splits"]["train"]["samples"] == len(ds)
    per_sample = stats["splits"]["train"]["structure_per_sample"]
    np.testing.assert_allclose([per_sample[k] for k in ("tokens", "scene_tokens_sq", "object_tokens_sq", "objects")],
                               structure / ds.num_trajectories, rtol=1e-12)
    in_contact = [ds.get_sample(tr, t)["in_contact"] for tr in range(ds.num_trajectories)
                  for t in range(1, ds.samples_per_trajectory + 1)]
    assert stats["splits"]["train"]["object_contact_fraction"] == pytest.approx(np.mean(in_contact), abs=1e-12)


def test_refuses_shards_of_another_seed_or_other_assets(raw_shards, asset_dir, token_config, tmp_path):
    other_seed = validate_config(deep_merge(token_config, {"seed": token_config["seed"] + 1}))
    with pytest.raises(ShardError, match="seed"):
        tokenize(raw_shards, asset_dir, tmp_path / "a", other_seed, progress=False)
    with pytest.raises(ShardError, match="both shard"):
        tokenize([raw_shards[0], raw_shards[0]], asset_dir, tmp_path / "b", token_config, progress=False)
    # assets whose geometry differs from what the shards were simulated with
    other_assets = tmp_path / "assets"
    other_assets.mkdir()
    meshes = read_meshes(asset_dir)
    meshes = {name: (v * 1.01, f) for name, (v, f) in meshes.items()}
    from eqscale.physics.assets import write_meshes

    write_meshes(other_assets / "meshes.h5", meshes)
    with pytest.raises(ShardError, match="other asset geometry"):
        tokenize(raw_shards, other_assets, tmp_path / "c", token_config, progress=False)
    assert not (tmp_path / "c" / STATS_NAME).exists()


def test_cli_writes_tokens_and_names_a_bad_raw_shard(raw_shards, asset_dir, token_config, tmp_path, capsys):
    cfg = json.dumps({k: token_config[k] for k in ("seed", "tokens")})
    out = tmp_path / "tokens"
    assert main(["--raw", *map(str, raw_shards), "--assets", str(asset_dir), "--out", str(out),
                 "--config-json", cfg, "--no-progress"]) == 0
    assert (out / STATS_NAME).exists()
    bad = tmp_path / "shard-0009.h5"
    bad.write_bytes(raw_shards[0].read_bytes()[:5000])
    assert main(["--raw", str(bad), "--assets", str(asset_dir), "--out", str(tmp_path / "t2"),
                 "--config-json", cfg, "--no-progress"]) == 1
    assert str(bad) in capsys.readouterr().err


def test_retokenizing_with_fewer_trajectories_removes_stale_shards(raw_shards, asset_dir, token_config, tmp_path):
    tokenize(raw_shards, asset_dir, tmp_path, token_config, progress=False)
    before = {p.name for p in tmp_path.glob("*.h5")}
    tokenize(raw_shards[:1], asset_dir, tmp_path, token_config, progress=False)
    after = {p.name for p in tmp_path.glob("*.h5")}
    assert after < before
    stats = json.loads((tmp_path / STATS_NAME).read_text())
    assert after == {e["name"] for split in SPLITS for e in stats["splits"][split]["shards"]}


def test_an_empty_split_still_gets_its_file_and_a_clear_error(raw_shards, asset_dir, token_config, tmp_path):
    config = validate_config(deep_merge(token_config, {"tokens": {"val_fraction": 0.0}}))
    stats = tokenize(raw_shards, asset_dir, tmp_path, config, progress=False)
    assert stats["splits"]["val"]["trajectories"] == 0
    assert sorted(p.name for p in tmp_path.glob("*.h5")) == sorted(planned_token_files(config))
    verify_token_shard(tmp_path / "val-0000.h5")
    with pytest.raises(ValueError, match="no trajectories"):
        TokenDataset(tmp_path, "val", 1)


def test_a_killed_tokenize_leaves_no_stale_generation(raw_shards, asset_dir, token_config, tmp_path, monkeypatch):
    """stats.json goes first: a run killed after rewriting some shards leaves no stats.json listing the old ones."""
    import eqscale.data.tokenize as tokenize_module
    from eqscale.data.dataset import TokenDataset
    from eqscale.data.token_format import TokenShardError

    out = tmp_path / "tokens"
    tokenize_module.tokenize(raw_shards, asset_dir, out, token_config, progress=False)
    (out / ".train-0000.h5.abc.tmp").write_bytes(b"left by a killed writer")

    class Killed(Exception):
        pass

    calls = []
    real = tokenize_module.write_token_shard

    def dying(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise Killed
        return real(*args, **kwargs)

    monkeypatch.setattr(tokenize_module, "write_token_shard", dying)
    with pytest.raises(Killed):
        tokenize_module.tokenize(raw_shards, asset_dir, out, token_config, progress=False)
    assert not (out / "stats.json").exists()
    assert not list(out.glob(".*.tmp"))
    with pytest.raises(TokenShardError, match="stats.json not found"):
        TokenDataset(out, "train", 1)
