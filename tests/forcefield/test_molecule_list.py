"""The shipped SMILES list, the seeded selection, conformers, and refusal of bad lists."""

from __future__ import annotations

import numpy as np
import pytest

from eqscale.forcefield.molecules import (ELEMENTS, MoleculeListError, conformer_positions, conformer_seed,
                                          load_molecule_list, select_molecules, shard_molecules)


def test_shipped_list_is_a_few_hundred_small_organics():
    molecules = load_molecule_list()
    assert len(molecules) >= 300
    assert all(1 <= m.num_atoms <= 30 for m in molecules)
    present = set().union(*(set(m.numbers) for m in molecules))
    assert present == set(ELEMENTS)  # H, C, N, O, F, S and Cl all occur
    assert [m.molecule_id for m in molecules] == list(range(len(molecules)))


def test_selection_is_seeded_and_shards_partition_it():
    molecules = load_molecule_list()
    a = select_molecules(molecules, 40, 20, seed=3)
    assert a == select_molecules(molecules, 40, 20, seed=3)
    assert a != select_molecules(molecules, 40, 20, seed=4)
    assert len(a) == 40 and all(m.num_atoms <= 20 for m in a)
    shards = [shard_molecules(a, s, 3) for s in range(3)]
    assert sorted(m.molecule_id for shard in shards for m in shard) == [m.molecule_id for m in a]
    with pytest.raises(MoleculeListError, match="num_molecules"):
        select_molecules(molecules, 10_000, 30, seed=0)


def test_conformers_are_deterministic_and_seed_dependent():
    ethanol = next(m for m in load_molecule_list() if m.name == "ethanol")
    seed = conformer_seed(0, ethanol.molecule_id, 0)
    first = conformer_positions(ethanol, seed)
    assert first.shape == (ethanol.num_atoms, 3)
    np.testing.assert_array_equal(first, conformer_positions(ethanol, seed))
    assert not np.allclose(first, conformer_positions(ethanol, conformer_seed(0, ethanol.molecule_id, 1)))
    distances = np.linalg.norm(first[:, None] - first[None], axis=-1)[np.triu_indices(len(first), 1)]
    assert distances.min() > 0.9  # a real geometry (H-H and bonds included), not collapsed atoms


@pytest.mark.parametrize("line,reason", [
    ("C1CC\tbroken ring", "cannot parse"),
    ("[Na+].[Cl-]\tsalt", "outside the study's elements"),
    ("C[O-]\tmethoxide", "neutral and closed-shell"),
    ("OC\tmethanol again", "same molecule as line 1"),
])
def test_bad_smiles_lines_are_refused_naming_file_and_line(tmp_path, line, reason):
    path = tmp_path / "list.txt"
    path.write_text(f"CO\tmethanol\n# comment\n{line}\n")
    with pytest.raises(MoleculeListError, match=reason) as err:
        load_molecule_list(path)
    assert str(path) in str(err.value) and "line 3" in str(err.value)


def test_missing_list_names_the_config_key(tmp_path):
    with pytest.raises(MoleculeListError, match="molecules.smiles_file"):
        load_molecule_list(tmp_path / "nope.txt")
