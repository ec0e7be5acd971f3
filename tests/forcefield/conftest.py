"""Force-field fixtures: a small SMILES list, two real label shards (tblite, tiny MD) and their statistics."""

from __future__ import annotations

from pathlib import Path

import pytest

# small C/H/O molecules: every split shares the training elements whatever the seed draws
SMILES = """# test list
O\twater
CO\tmethanol
CCO\tethanol
C=O\tformaldehyde
CC=O\tacetaldehyde
C\tmethane
COC\tdimethyl ether
CC(C)=O\tacetone
"""

MD = {"temperatures": [300, 800], "equilibration_steps": 4, "sample_interval": 3, "configurations_per_run": 3,
      "num_shards": 2, "val_fraction": 0.125, "test_fraction": 0.25}


@pytest.fixture(scope="session")
def smiles_file(tmp_path_factory) -> Path:
    """The test SMILES list (8 molecules)."""
    path = tmp_path_factory.mktemp("smiles") / "smiles.txt"
    path.write_text(SMILES)
    return path


@pytest.fixture(scope="session")
def ff_config(smiles_file) -> dict:
    """A validated config labelling the test list with tiny MD runs."""
    from eqscale.forcefield.config import validate_forcefield_config

    return validate_forcefield_config({"seed": 5, "molecules": {"smiles_file": str(smiles_file), **MD}})


@pytest.fixture(scope="session")
def molecule_shards(tmp_path_factory, ff_config) -> list[Path]:
    """Both label shards of the test config, labelled for real (read-only: copy before damaging)."""
    from eqscale.forcefield.molecules_cli import label_shard

    out = tmp_path_factory.mktemp("molecules")
    return [label_shard(ff_config, s, out / f"shard-{s:04d}.h5", progress=False)
            for s in range(ff_config["molecules"]["num_shards"])]


@pytest.fixture(scope="session")
def molecule_stats(molecule_shards, ff_config) -> Path:
    """stats.json of the session's shards."""
    from eqscale.forcefield.splits import write_statistics

    path = molecule_shards[0].parent / "stats.json"
    write_statistics(molecule_shards, ff_config, path)
    return path
