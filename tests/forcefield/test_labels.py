"""GFN2-xTB labels: forces are -dE/dx, MD sampling is reproducible, OpenMP runs on one thread."""

from __future__ import annotations

import numpy as np
import pytest

from eqscale.forcefield.labels import (LabelSettings, openmp_max_threads, sample_run, single_point,
                                       single_thread_openmp)
from eqscale.forcefield.shard_format import read_shard


def _configuration(shard, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    row = shard.configurations[index]
    atoms = slice(row["first_atom"], row["first_atom"] + row["num_atoms"])
    return shard.numbers[atoms], shard.positions[atoms], shard.forces[atoms], float(row["energy"])


def test_forces_are_minus_the_energy_gradient_by_central_differences(molecule_shards, ff_config):
    settings = LabelSettings.from_config(ff_config)
    shard = read_shard(molecule_shards[0])
    hot = np.flatnonzero(shard.configurations["temperature"] == 800.0)
    step = 1e-3  # Angstrom
    for index in (hot[0], hot[-1]):  # MD configurations at 800 K, away from any minimum
        numbers, positions, stored_forces, stored_energy = _configuration(shard, index)
        energy, forces = single_point(numbers, positions, settings)
        # a fresh SCF reproduces the label the MD's restarted SCF stored, to convergence accuracy
        np.testing.assert_allclose(forces, stored_forces, atol=1e-4)
        assert abs(energy - stored_energy) < 1e-5
        numeric = np.zeros_like(positions)
        for atom in range(len(numbers)):
            for axis in range(3):
                plus, minus = positions.copy(), positions.copy()
                plus[atom, axis] += step
                minus[atom, axis] -= step
                numeric[atom, axis] = -(single_point(numbers, plus, settings)[0]
                                        - single_point(numbers, minus, settings)[0]) / (2 * step)
        assert np.abs(numeric - forces).max() < 1e-4, np.abs(numeric - forces).max()
        assert np.abs(forces).max() > 0.1  # the check is not trivially satisfied by zero forces


def test_md_run_is_bit_reproducible_and_seed_dependent():
    settings = LabelSettings(equilibration_steps=3, sample_interval=2, configurations_per_run=3)
    start = np.array([[0.0, 0.0, 0.0], [0.96, 0.0, 0.0], [-0.24, 0.93, 0.0]])
    runs = [sample_run((8, 1, 1), start, 500.0, seed, settings) for seed in (1, 1, 2)]
    assert runs[0].steps == [3, 5, 7] and runs[0].single_points == 8 and not runs[0].failure
    for key in ("positions", "forces"):
        assert all(np.array_equal(a, b) for a, b in zip(getattr(runs[0], key), getattr(runs[1], key)))
    assert runs[0].energies == runs[1].energies
    assert not np.array_equal(runs[0].positions[-1], runs[2].positions[-1])


def test_labelling_runs_openmp_on_one_thread():
    single_thread_openmp()
    threads = openmp_max_threads()
    if threads is None:
        pytest.skip("no libgomp here: tblite runs without OpenMP")
    assert threads == 1


def test_shards_record_method_units_and_versions(molecule_shards):
    attrs = read_shard(molecule_shards[0]).attrs
    assert attrs["method"] == "GFN2-xTB" and attrs["program"] == "tblite"
    assert attrs["omp_num_threads"] == 1
    import json

    assert json.loads(attrs["units_json"])["forces"] == "eV/Angstrom"
    versions = json.loads(attrs["versions_json"])
    assert versions["tblite"] == "0.8.0" and versions["ase"] != "not installed"


def test_conformers_are_relaxed_under_gfn2_before_md():
    from eqscale.forcefield.labels import relax
    from eqscale.forcefield.molecules import conformer_positions, load_molecule_list

    co2 = next(m for m in load_molecule_list() if m.name == "carbon dioxide")
    settings = LabelSettings()
    start = conformer_positions(co2, 0)
    assert np.abs(single_point(co2.numbers, start, settings)[1]).max() > 5.0  # MMFF's CO2 is far off GFN2-xTB's
    trace: list = []
    relaxed = relax(co2.numbers, start, settings, trace)
    assert np.abs(single_point(co2.numbers, relaxed, settings)[1]).max() <= settings.relax_fmax
    kind, numbers, geometries = trace[0]
    assert kind == "relax" and numbers == co2.numbers and np.array_equal(geometries[-1], relaxed)
    np.testing.assert_array_equal(relax(co2.numbers, start, LabelSettings(relax_steps=0)), start)
