"""Simulation: determinism across processes, regenerable trajectories, physical sanity, bad shards."""

import json
import os
import subprocess
import sys
import tempfile

import h5py
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from eqscale.config import validate_config
from eqscale.physics.assets import load_manifest, read_meshes, rpy_matrix
from eqscale.physics.raw_format import ShardError, open_raw_shard, read_trajectory
from eqscale.physics.simulate import ShardSimulator, simulate_shard, simulate_trajectory, trajectory_seed

GRAVITY = 10.0


def _all_trajectories(path):
    with open_raw_shard(path) as fh:
        return [read_trajectory(fh["trajectories"][name], path) for name in fh["trajectories"]]


def _rotations(quaternions_wxyz):
    q = quaternions_wxyz
    return Rotation.from_quat(q[..., [1, 2, 3, 0]].reshape(-1, 4)).as_matrix().reshape(q.shape[:-1] + (3, 3))


def test_shard_layout(raw_shards, test_config):
    with open_raw_shard(raw_shards[0]) as fh:
        assert fh.attrs["num_trajectories"] == test_config["simulation"]["trajectories_per_shard"]
        assert json.loads(fh.attrs["versions_json"])["pybullet"] == "3.2.7"
        assert len(fh.attrs["config_hash"]) == 16
        assert set(fh["trajectories/000000"]) == {"objects", "states", "contacts"}
    traj = _all_trajectories(raw_shards[0])[0]
    k, t = traj["num_objects"], test_config["simulation"]["num_frames"]
    assert test_config["simulation"]["min_objects"] <= k <= test_config["simulation"]["max_objects"]
    assert traj["positions"].shape == (t, k, 3)
    assert traj["quaternions"].shape == (t, k, 4)
    assert set(traj["materials"]) <= {"metal", "rubber"}
    assert all(0.7 <= s <= 1.4 for s in traj["scales"])


def test_simulating_leaves_the_temp_dir_setting_as_it_was(raw_shards):
    # the shard's scratch dir is gone; later code and subprocesses must not be pointed at it
    assert os.path.isdir(tempfile.gettempdir())
    assert ".simulate-" not in os.environ.get("TMPDIR", "")


def test_same_seed_gives_bit_identical_shard_across_processes(asset_dir, tmp_path):
    config = {"seed": 3, "assets": {"max_faces": 96, "vhacd_resolution": 20000},
              "simulation": {"num_shards": 2, "trajectories_per_shard": 3, "num_frames": 24}}
    outs = []
    for run in range(2):
        out = tmp_path / f"run{run}" / "shard-0001.h5"
        subprocess.run([sys.executable, "-m", "eqscale", "simulate", "--config-json", json.dumps(config),
                        "--shard", "1", "--assets", str(asset_dir), "--out", str(out), "--no-progress"],
                       check=True, capture_output=True)
        outs.append(out)
    assert outs[0].read_bytes() == outs[1].read_bytes()
    assert not list(outs[0].parent.glob(".*"))  # no temp files or scratch dirs left behind


def test_different_shards_differ(raw_shards):
    a, b = _all_trajectories(raw_shards[0]), _all_trajectories(raw_shards[1])
    assert [t["seed"] for t in a] != [t["seed"] for t in b]
    assert not np.array_equal(a[0]["positions"][0], b[0]["positions"][0])


def test_any_trajectory_regenerates_alone(raw_shards, test_config, asset_dir, tmp_path):
    stored = _all_trajectories(raw_shards[1])[4]
    simulator = ShardSimulator(test_config, asset_dir, tmp_path)
    try:
        again = simulator.trajectory(shard=1, index=4)
    finally:
        simulator.close()
    assert again["seed"] == trajectory_seed(test_config["seed"], 1, 4) == stored["seed"]
    for key in ("positions", "quaternions", "velocities", "contacts"):
        np.testing.assert_array_equal(again[key], stored[key])


def test_reused_client_matches_kubrics_own_view(raw_shards, test_config, asset_dir, tmp_path):
    # a shard runs every scene on one PyBullet client, reset in between; the shard's last scene (run
    # after all the others) must equal that scene on Kubric's own view with a client of its own
    stored = _all_trajectories(raw_shards[1])[-1]
    simulator = ShardSimulator(test_config, asset_dir, tmp_path)
    try:
        fresh = simulate_trajectory(simulator.source, simulator.manifest, simulator.params, stored["seed"], tmp_path)
    finally:
        simulator.close()
    assert len(fresh["contacts"]) > 0
    for key, value in fresh.items():
        if isinstance(value, np.ndarray):
            np.testing.assert_array_equal(value, stored[key], err_msg=key)
        else:
            assert value == stored[key], key


@pytest.fixture(scope="module")
def many_trajectories(asset_dir, tmp_path_factory):
    """200 MOVi-B trajectories (2 s at 48 fps, 3-10 objects) for the physics sanity checks."""
    config = validate_config({"seed": 11, "assets": {"max_faces": 96, "vhacd_resolution": 20000},
                              "simulation": {"num_shards": 1, "trajectories_per_shard": 200}})
    path = simulate_shard(config, asset_dir, 0, tmp_path_factory.mktemp("many") / "shard.h5", progress=False)
    return _all_trajectories(path)


@pytest.mark.slow
def test_physics_sanity_over_hundreds_of_trajectories(many_trajectories, asset_dir):
    meshes = read_meshes(asset_dir)
    axes = {name: rpy_matrix(np.array(entry["metadata"]["principal_axes_rpy"]))
            for name, entry in load_manifest(asset_dir)["assets"].items()}
    with_object_contacts, settle_ratios = 0, []
    for traj in many_trajectories:
        q = traj["quaternions"]
        np.testing.assert_allclose(np.linalg.norm(q, axis=-1), 1.0, atol=1e-9)
        rot = _rotations(q)
        # nothing below the floor: the lowest posed vertex may sink only by contact penetration (a body falling
        # from 5 m hits at 10 m/s, 4 cm per 240 Hz step, before the contact pushes it out)
        for k, asset_id in enumerate(traj["asset_ids"]):
            vertices = meshes[asset_id][0] * traj["scales"][k]
            z = np.einsum("tij,vj->tvi", rot[:, k], vertices)[..., 2] + traj["positions"][:, k, None, 2]
            assert z.min() > -0.08, f"seed {traj['seed']}: {asset_id} sank to z={z.min():.3f}"
        # total mechanical energy never grows (restitution < 1 and friction only remove energy)
        m, v, w = traj["masses"], traj["velocities"], traj["angular_velocities"]
        # the inertia diagonal is about the principal axes: angular velocity in that frame
        principal = np.stack([axes[a] for a in traj["asset_ids"]])  # (K, 3, 3), columns in the mesh frame
        w_body = np.einsum("kji,tkj->tki", principal, np.einsum("tkji,tkj->tki", rot, w))
        kinetic = 0.5 * (m * (v**2).sum(-1)).sum(-1) + 0.5 * (traj["inertia_diagonal"] * w_body**2).sum((-1, -2))
        energy = kinetic + (m * GRAVITY * traj["positions"][..., 2]).sum(-1)
        assert energy.max() <= energy[0] * (1 + 1e-3), f"seed {traj['seed']}: energy grew"
        contacts = traj["contacts"]
        assert (contacts[:, 2] == -1).any(), f"seed {traj['seed']}: nothing touched the floor"
        with_object_contacts += bool((contacts[:, 2] >= 0).any())
        settle_ratios.append(kinetic[-1] / kinetic.max())
    assert with_object_contacts >= 0.5 * len(many_trajectories), "objects rarely collide"
    assert np.mean(settle_ratios) < 0.25, f"objects do not settle (mean final/peak KE {np.mean(settle_ratios):.2f})"


def test_truncated_and_foreign_files_are_refused(raw_shards, tmp_path):
    truncated = tmp_path / "truncated.h5"
    data = raw_shards[0].read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(ShardError, match="truncated.h5"):
        open_raw_shard(truncated)
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as fh:
        fh["x"] = np.arange(3)
    with pytest.raises(ShardError, match="not an eqscale raw shard"):
        open_raw_shard(foreign)
    with pytest.raises(ShardError, match="does not exist"):
        open_raw_shard(tmp_path / "missing.h5")


def test_incomplete_or_wrong_version_shard_is_refused(raw_shards, tmp_path):
    import shutil

    for attr, value, message in [("complete", False, "incomplete"), ("format_version", 99, "format_version 99")]:
        copy = tmp_path / f"{attr}.h5"
        shutil.copy(raw_shards[0], copy)
        with h5py.File(copy, "r+") as fh:
            fh.attrs[attr] = value
        with pytest.raises(ShardError, match=message):
            open_raw_shard(copy)


def test_flipped_bytes_fail_the_checksum(raw_shards, tmp_path):
    path = tmp_path / "flipped.h5"
    with h5py.File(raw_shards[0], "r") as fh:
        start = fh["trajectories/000000/states"].id.get_chunk_info(0).byte_offset
    data = bytearray(raw_shards[0].read_bytes())
    data[start + 10] ^= 0xFF
    path.write_bytes(bytes(data))
    with open_raw_shard(path) as fh, pytest.raises(ShardError, match="checksum"):
        read_trajectory(fh["trajectories/000000"], path)


def test_simulate_cli_rejects_bad_config_before_work(tmp_path, asset_dir):
    bad = json.dumps({"simulation": {"min_objects": 5, "max_objects": 2}})
    proc = subprocess.run([sys.executable, "-m", "eqscale", "simulate", "--config-json", bad, "--shard", "0",
                           "--assets", str(asset_dir), "--out", str(tmp_path / "s.h5")], capture_output=True, text=True)
    assert proc.returncode == 1
    assert "simulation.min_objects" in proc.stderr
    assert not (tmp_path / "s.h5").exists()
