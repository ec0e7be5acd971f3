"""Splits by molecule, reference energies fitted on train, statistics, and loading a split as batches."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from eqscale.forcefield.dataset import load_split, reference_energy
from eqscale.forcefield.shard_format import MoleculeShardError, read_shard
from eqscale.forcefield.splits import (SPLITS, StatisticsError, assign_splits, composition, fit_reference_energies,
                                       read_statistics, statistics)


def test_assign_splits_partitions_molecules_and_is_seeded():
    ids = list(range(100, 150))
    splits = assign_splits(ids, seed=1, val_fraction=0.1, test_fraction=0.2)
    assert [len(splits[s]) for s in ("train", "val", "test")] == [35, 5, 10]
    assert sorted(sum(splits.values(), [])) == ids
    assert splits == assign_splits(reversed(ids), seed=1, val_fraction=0.1, test_fraction=0.2)
    assert splits != assign_splits(ids, seed=2, val_fraction=0.1, test_fraction=0.2)
    with pytest.raises(ValueError, match="no training molecule"):
        assign_splits([1, 2], seed=0, val_fraction=0.5, test_fraction=0.5)


def test_stats_splits_share_no_molecule_and_cover_all(molecule_stats, molecule_shards):
    stats = read_statistics(molecule_stats)
    sets = {name: set(stats["splits"][name]) for name in SPLITS}
    assert not (sets["train"] & sets["val"] or sets["train"] & sets["test"] or sets["val"] & sets["test"])
    labelled = {int(i) for p in molecule_shards for i in read_shard(p).molecules["molecule_id"]}
    assert set().union(*sets.values()) == labelled
    assert [len(sets[s]) for s in ("train", "val", "test")] == [5, 1, 2]


def test_reference_energies_are_the_least_squares_fit_on_train_only(molecule_stats, molecule_shards):
    stats = read_statistics(molecule_stats)
    refs = stats["reference_energies"]
    assert set(refs) == {"1", "6", "8"}
    train = load_split(molecule_shards, molecule_stats, "train")
    # residuals of a least-squares fit are orthogonal to the composition columns
    elements = [1, 6, 8]
    counts = composition(train.numbers, train.num_atoms, elements)
    np.testing.assert_allclose(counts.T @ train.energy, 0.0, atol=1e-6 * np.abs(counts.T).sum())
    # refitting on train reproduces the recorded references; test energies play no part
    raw = train.energy + reference_energy(train.numbers, train.num_atoms, refs)
    np.testing.assert_allclose(fit_reference_energies(raw, counts), [refs[str(z)] for z in elements], rtol=1e-9)
    per_atom = train.energy / train.num_atoms
    assert stats["statistics"]["train"]["energy_per_atom_std"] == pytest.approx(per_atom.std(), rel=1e-9)
    assert abs(per_atom).max() < 1.0  # eV/atom: the references remove the ~ -100 eV/atom totals


def test_load_split_keeps_only_its_molecules_and_builds_batches(molecule_stats, molecule_shards):
    stats = read_statistics(molecule_stats)
    for split in SPLITS:
        data = load_split(molecule_shards, molecule_stats, split)
        assert set(data.molecule_id.tolist()) == set(stats["splits"][split])
        assert len(data) == stats["statistics"][split]["configurations"]
    data = load_split(molecule_shards, molecule_stats, "train")
    batch = data.batch([3, 0, 7])
    assert batch["num_atoms"].tolist() == data.num_atoms[[3, 0, 7]].tolist()
    assert batch["positions"].shape == (int(data.num_atoms[[3, 0, 7]].sum()), 3)
    assert batch["molecule"].tolist() == sum(([k] * int(n) for k, n in enumerate(data.num_atoms[[3, 0, 7]])), [])
    first = slice(int(data.num_atoms[3]), int(data.num_atoms[3] + data.num_atoms[0]))  # configuration 0's atoms
    np.testing.assert_allclose(batch["forces"][first].numpy(), data.forces[: data.num_atoms[0]], rtol=1e-6)
    assert batch["energy"][1].item() == pytest.approx(data.energy[0], rel=1e-6)


def test_stats_refuse_an_incomplete_or_changed_set_of_shards(molecule_shards, molecule_stats, ff_config, tmp_path):
    with pytest.raises(StatisticsError, match="each of the 2 shards once"):
        statistics(molecule_shards[:1], ff_config)
    copy = tmp_path / molecule_shards[0].name
    shutil.copy(molecule_shards[1], copy)  # shard 1's bytes under shard 0's name
    with pytest.raises(MoleculeShardError, match="changed since"):
        load_split([copy, molecule_shards[1]], molecule_stats, "train")
    bad = tmp_path / "stats.json"
    bad.write_text(json.dumps({"format": "eqscale-molecule-stats", "format_version": 0}))
    with pytest.raises(StatisticsError, match="format_version 0"):
        read_statistics(bad)


def test_an_element_never_seen_in_training_is_refused(tmp_path):
    from eqscale.forcefield.config import validate_forcefield_config
    from eqscale.forcefield.molecules_cli import label_shard

    smiles = tmp_path / "smiles.txt"
    smiles.write_text("C\tmethane\nCC\tethane\nO\twater\n")  # 2 hydrocarbons, and water (oxygen) held out
    md = {"temperatures": [300], "equilibration_steps": 0, "sample_interval": 1, "configurations_per_run": 1,
          "num_shards": 1, "val_fraction": 0.0, "test_fraction": 0.34}
    for seed in range(20):  # a seed whose test molecule is water
        config = validate_forcefield_config({"seed": seed, "molecules": {"smiles_file": str(smiles), **md}})
        if assign_splits([0, 1, 2], seed, 0.0, 0.34)["test"] == [2]:
            break
    shard = label_shard(config, 0, tmp_path / "shard.h5", progress=False)
    with pytest.raises(StatisticsError, match=r"elements \[8\]"):
        statistics([shard], config)
