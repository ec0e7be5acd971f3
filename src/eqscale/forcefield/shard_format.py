"""The molecule shard format: one HDF5 file per `eqscale molecules` job, every configuration it labelled.

    / attrs
        format = "eqscale-molecules", format_version = 1, complete = True (written last)
        global_seed, shard, num_shards, num_molecules, num_configurations, num_atoms (summed over configurations)
        method = "GFN2-xTB", program = "tblite", units_json ({"energy": "eV", "forces": "eV/Angstrom",
        "positions": "Angstrom", ...}), omp_num_threads (the labelling process's OpenMP threads: 1)
        config_hash (sha256 of the seed and molecules sections), config_json, smiles_sha256 (the list's bytes)
        versions_json (python, eqscale, tblite, ase, rdkit, numpy, h5py)
    /molecules        (K,)  compound, one row per molecule of the shard, by id:
        molecule_id i8 (index in the SMILES list), smiles S, name S, num_atoms i4,
        first_configuration i8, num_configurations i8 (its rows of /configurations),
        failed_runs i4 (MD runs an SCF failure stopped early; their earlier configurations are kept)
    /configurations   (C,)  compound, one row per configuration:
        molecule_id i8, conformer i4, temperature f8 (K), step i4 (MD step it was taken at),
        energy f8 (eV, total GFN2-xTB energy: no reference subtracted), first_atom i8, num_atoms i4
    /numbers          (A,)    u1   atomic numbers, configurations back to back
    /positions        (A, 3)  f8   Angstrom
    /forces           (A, 3)  f8   eV/Angstrom (-dE/dx of GFN2-xTB)

Atoms of configuration c are rows first_atom[c] : first_atom[c] + num_atoms[c] of the atom arrays.
Every dataset carries a Fletcher-32 checksum and no timestamps: the same seed gives the same bytes;
a flipped byte fails on read, `complete` and the counts against the header catch truncation.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from eqscale.hdf5_io import open_checked
from eqscale.io_utils import atomic_path

MOLECULES_FORMAT = "eqscale-molecules"
MOLECULES_VERSION = 1
_RERUN = "re-run eqscale molecules for this shard"


class MoleculeShardError(ValueError):
    """A molecule shard is missing, truncated, corrupt, foreign or of another version; the message names the file."""


@dataclass
class ShardData:
    """A shard's tables and packed atom arrays, as numpy arrays (field names as in the file)."""

    attrs: dict
    molecules: np.ndarray  # structured (K,)
    configurations: np.ndarray  # structured (C,)
    numbers: np.ndarray  # (A,) uint8
    positions: np.ndarray  # (A, 3) float64
    forces: np.ndarray  # (A, 3) float64

    @property
    def config_hash(self) -> str:
        """The labelling config's hash."""
        return str(self.attrs["config_hash"])


MOLECULE_FIELDS = [("molecule_id", "<i8"), ("num_atoms", "<i4"), ("first_configuration", "<i8"),
                   ("num_configurations", "<i8"), ("failed_runs", "<i4")]
CONFIGURATION_DTYPE = np.dtype([("molecule_id", "<i8"), ("conformer", "<i4"), ("temperature", "<f8"),
                                ("step", "<i4"), ("energy", "<f8"), ("first_atom", "<i8"), ("num_atoms", "<i4")])


def molecule_table(rows: list[dict]) -> np.ndarray:
    """The /molecules table from dicts with its fields (smiles and name as str)."""
    def text(key: str) -> np.ndarray:
        # fixed-length bytes: variable-length strings cannot carry a checksum filter
        return np.array([r[key].encode() for r in rows] or [b""], dtype="S")[:len(rows)]

    smiles, names = text("smiles"), text("name")
    dtype = np.dtype(MOLECULE_FIELDS[:1] + [("smiles", smiles.dtype), ("name", names.dtype)] + MOLECULE_FIELDS[1:])
    table = np.zeros(len(rows), dtype=dtype)
    table["smiles"], table["name"] = smiles, names
    for key, _ in MOLECULE_FIELDS:
        table[key] = [r[key] for r in rows]
    return table


def _dataset(fh: h5py.File, name: str, data: np.ndarray) -> None:
    rows = max(1, min(len(data), 65536))
    fh.create_dataset(name, data=data, chunks=(rows, *data.shape[1:]), maxshape=(None, *data.shape[1:]),
                      fletcher32=True, track_times=False)


def write_shard(path: str | Path, attrs: dict, molecules: np.ndarray, configurations: np.ndarray,
                numbers: np.ndarray, positions: np.ndarray, forces: np.ndarray) -> Path:
    """Write a complete shard atomically (attrs: the header keys the docstring lists, counts excluded)."""
    path = Path(path)
    if not len(numbers) == len(positions) == len(forces) == int(configurations["num_atoms"].sum()):
        raise ValueError(f"{path}: atom arrays ({len(numbers)}, {len(positions)}, {len(forces)}) do not match the "
                         f"configurations' atom count {int(configurations['num_atoms'].sum())}")
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w", track_order=False) as fh:
            fh.attrs["format"] = MOLECULES_FORMAT
            fh.attrs["format_version"] = MOLECULES_VERSION
            fh.attrs["complete"] = False
            for key, value in attrs.items():
                fh.attrs[key] = value
            fh.attrs["num_molecules"] = len(molecules)
            fh.attrs["num_configurations"] = len(configurations)
            fh.attrs["num_atoms"] = len(numbers)
            _dataset(fh, "molecules", molecules)
            _dataset(fh, "configurations", configurations.astype(CONFIGURATION_DTYPE))
            _dataset(fh, "numbers", np.asarray(numbers, dtype=np.uint8))
            _dataset(fh, "positions", np.asarray(positions, dtype=np.float64).reshape(-1, 3))
            _dataset(fh, "forces", np.asarray(forces, dtype=np.float64).reshape(-1, 3))
            fh.attrs["complete"] = True
    return path


def open_molecule_shard(path: str | Path) -> h5py.File:
    """Open a molecule shard read-only once it is a complete shard of this version with consistent counts."""

    def counts_agree(fh: h5py.File) -> None:
        for dataset, key in (("molecules", "num_molecules"), ("configurations", "num_configurations"),
                             ("numbers", "num_atoms"), ("positions", "num_atoms"), ("forces", "num_atoms")):
            found, expected = len(fh[dataset]), int(fh.attrs[key])
            if found != expected:
                raise MoleculeShardError(f"molecule shard {path}: /{dataset} has {found} rows, its header "
                                         f"says {key} = {expected}; {_RERUN}")

    return open_checked(path, fmt=MOLECULES_FORMAT, version=MOLECULES_VERSION, what="molecule shard",
                        error=MoleculeShardError, rerun=_RERUN, check=counts_agree)


def read_shard(path: str | Path) -> ShardData:
    """Every table and array of a shard; checksum failures and inconsistent offsets name the file."""
    with open_molecule_shard(path) as fh:
        try:
            data = ShardData(attrs={k: (v.item() if hasattr(v, "item") else v) for k, v in fh.attrs.items()},
                             molecules=fh["molecules"][...], configurations=fh["configurations"][...],
                             numbers=fh["numbers"][...], positions=fh["positions"][...], forces=fh["forces"][...])
        except (OSError, KeyError) as err:
            raise MoleculeShardError(f"molecule shard {path} fails its checksum or cannot be read: {err}; "
                                     f"{_RERUN}") from err
    configs = data.configurations
    ends = configs["first_atom"] + configs["num_atoms"]
    if len(configs) and (configs["first_atom"][0] != 0 or np.any(configs["first_atom"][1:] != ends[:-1])
                         or ends[-1] != len(data.numbers)):
        raise MoleculeShardError(f"molecule shard {path}: configuration atom offsets do not tile the atom arrays; "
                                 f"{_RERUN}")
    return data


def shard_units(data: ShardData) -> dict:
    """The units a shard records (energy eV, forces eV/Angstrom, ...)."""
    return json.loads(data.attrs["units_json"])
