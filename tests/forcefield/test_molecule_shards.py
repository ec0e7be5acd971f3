"""Molecule shards: layout, bit-identical relabelling, refusal of corrupt and foreign files, the CLI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import h5py
import numpy as np
import pytest

from eqscale.forcefield.molecules_cli import label_shard, main
from eqscale.forcefield.shard_format import MoleculeShardError, read_shard


def test_shard_layout_matches_the_molecules_and_md_settings(molecule_shards, ff_config):
    m = ff_config["molecules"]
    total = 0
    for path in molecule_shards:
        data = read_shard(path)
        configs, mols = data.configurations, data.molecules
        assert len(mols) == 4  # 8 molecules dealt to 2 shards
        runs = len(m["temperatures"]) * m["conformers"]
        np.testing.assert_array_equal(mols["num_configurations"], runs * m["configurations_per_run"])
        assert set(configs["step"]) == {4, 7, 10}
        assert set(configs["temperature"]) == {300.0, 800.0}
        for row in mols:  # each molecule's rows: its id, its atoms
            rows = configs[row["first_configuration"]:row["first_configuration"] + row["num_configurations"]]
            assert set(rows["molecule_id"]) == {row["molecule_id"]} and set(rows["num_atoms"]) == {row["num_atoms"]}
        assert data.positions.shape == data.forces.shape == (len(data.numbers), 3)
        assert np.all(configs["energy"] < 0) and np.abs(data.forces).max() > 0.1
        total += len(configs)
    assert total == 8 * 2 * 3


def test_same_seed_gives_bit_identical_shards(molecule_shards, ff_config, tmp_path):
    again = label_shard(ff_config, 1, tmp_path / "again.h5", progress=False)
    assert again.read_bytes() == molecule_shards[1].read_bytes()


def test_cli_in_a_fresh_process_with_threads_allowed_gives_the_same_bytes(molecule_shards, ff_config, tmp_path):
    # OMP_NUM_THREADS=2 in the environment: the stage itself must pin tblite to one thread
    out = tmp_path / "cli.h5"
    env = dict(os.environ, OMP_NUM_THREADS="2")
    config = json.dumps({"seed": ff_config["seed"], "molecules": ff_config["molecules"]})
    result = subprocess.run([sys.executable, "-m", "eqscale", "molecules", "--shard", "0", "--out", str(out),
                             "--config-json", config, "--no-progress"], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert out.read_bytes() == molecule_shards[0].read_bytes()


def _copy(path, tmp_path):
    target = tmp_path / path.name
    shutil.copy(path, target)
    return target


def test_flipped_bytes_are_refused_naming_the_file(molecule_shards, tmp_path):
    path = _copy(molecule_shards[0], tmp_path)
    with h5py.File(path, "r") as fh:
        offset = fh["forces"].id.get_chunk_info(0).byte_offset
    raw = bytearray(path.read_bytes())
    raw[offset + 11] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(MoleculeShardError, match="checksum") as err:
        read_shard(path)
    assert str(path) in str(err.value)


@pytest.mark.parametrize("damage,reason", [
    (lambda fh: fh.attrs.__setitem__("format", "eqscale-raw"), "not an eqscale molecule shard"),
    (lambda fh: fh.attrs.__setitem__("format_version", 99), "format_version 99"),
    (lambda fh: fh.attrs.__setitem__("complete", False), "incomplete"),
    (lambda fh: fh.attrs.__setitem__("num_configurations", 3), "header says num_configurations"),
])
def test_foreign_or_inconsistent_shards_are_refused_naming_the_file(molecule_shards, tmp_path, damage, reason):
    path = _copy(molecule_shards[0], tmp_path)
    with h5py.File(path, "r+") as fh:
        damage(fh)
    with pytest.raises(MoleculeShardError, match=reason) as err:
        read_shard(path)
    assert str(path) in str(err.value)


def test_truncated_and_missing_shards_are_refused(molecule_shards, tmp_path):
    path = _copy(molecule_shards[0], tmp_path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(MoleculeShardError, match="not a readable HDF5 file"):
        read_shard(path)
    with pytest.raises(MoleculeShardError, match="does not exist"):
        read_shard(tmp_path / "missing.h5")


@pytest.mark.parametrize("section,value,key", [
    ("molecules", {"temperatures": [300, -5]}, "molecules.temperatures.1"),
    ("molecules", {"timestep": 0.5}, "molecules.timestep"),
    ("molecules", {"val_fraction": 0.5, "test_fraction": 0.5}, "molecules.test_fraction"),
    ("forcefield", {"angle_cutoff": 6.0}, "forcefield.angle_cutoff"),
    ("forcefield", {"symmetry_loss_copies": 0}, "forcefield.symmetry_loss_copies"),
])
def test_bad_config_values_are_refused_naming_the_key(tmp_path, capsys, section, value, key):
    code = main(["--shard", "0", "--out", str(tmp_path / "x.h5"), "--config-json", json.dumps({section: value})])
    assert code == 1
    assert key in capsys.readouterr().err
    assert not (tmp_path / "x.h5").exists()


def test_stats_mode_of_the_cli(molecule_shards, ff_config, tmp_path):
    out = tmp_path / "stats.json"
    config = json.dumps({"seed": ff_config["seed"], "molecules": ff_config["molecules"]})
    assert main(["--stats", "--shards", *map(str, molecule_shards), "--out", str(out), "--config-json", config]) == 0
    stats = json.loads(out.read_text())
    assert stats["format"] == "eqscale-molecule-stats" and len(stats["shards"]) == 2
    # another seed's config: the shards are foreign to it
    other = json.dumps({"seed": ff_config["seed"] + 1, "molecules": ff_config["molecules"]})
    assert main(["--stats", "--shards", *map(str, molecule_shards), "--out", str(out), "--config-json", other]) == 1
