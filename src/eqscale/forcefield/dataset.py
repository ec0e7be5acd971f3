"""Labelled configurations of one split in memory, and batches of them in the models' batch layout.

`load_split(shards, stats, "train")` reads every shard (checked against the statistics they were
fitted with), keeps the split's molecules and subtracts the per-element reference energies;
`MoleculeData.batch(indices)` concatenates configurations into the dict every force-field
network takes: positions (A, 3), numbers (A,), molecule (A,), num_atoms (M,), energy (M,) and
forces (A, 3). A few hundred thousand small configurations fit in memory, so there is no loader.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from eqscale.forcefield.shard_format import read_shard
from eqscale.forcefield.splits import SPLITS, StatisticsError, check_shards_match, read_statistics


@dataclass
class MoleculeData:
    """Configurations packed back to back (C of them, A atoms in all); energies reference-subtracted (eV)."""

    molecule_id: np.ndarray  # (C,)
    energy: np.ndarray  # (C,) eV, reference energies removed
    first_atom: np.ndarray  # (C,)
    num_atoms: np.ndarray  # (C,)
    numbers: np.ndarray  # (A,)
    positions: np.ndarray  # (A, 3) Angstrom
    forces: np.ndarray  # (A, 3) eV/Angstrom

    def __len__(self) -> int:
        return len(self.energy)

    @property
    def mean_atoms(self) -> float:
        """Mean atoms per configuration (what C = 3 x FLOPs per atom x atoms x samples needs)."""
        return float(self.num_atoms.mean()) if len(self) else 0.0

    def batch(self, indices, dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu"
              ) -> dict[str, torch.Tensor]:
        """The configurations `indices` as one batch dict (molecule index = position in `indices`)."""
        indices = np.asarray(indices, dtype=np.int64)
        counts = self.num_atoms[indices]
        config_of_atom = np.repeat(np.arange(len(indices)), counts)
        offsets = np.cumsum(counts) - counts
        atoms = self.first_atom[indices][config_of_atom] + np.arange(int(counts.sum())) - offsets[config_of_atom]
        return to_batch(self.numbers[atoms], self.positions[atoms], counts, self.energy[indices],
                        self.forces[atoms], dtype=dtype, device=device)


def to_batch(numbers, positions, num_atoms, energy=None, forces=None, dtype: torch.dtype = torch.float32,
             device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
    """A batch dict from packed numpy arrays (energy and forces optional, for inference)."""
    num_atoms = torch.as_tensor(np.asarray(num_atoms), dtype=torch.long, device=device)
    batch = {
        "positions": torch.as_tensor(np.asarray(positions), dtype=dtype, device=device),
        "numbers": torch.as_tensor(np.asarray(numbers), dtype=torch.long, device=device),
        "num_atoms": num_atoms,
        "molecule": torch.repeat_interleave(torch.arange(len(num_atoms), device=device), num_atoms),
    }
    if energy is not None:
        batch["energy"] = torch.as_tensor(np.asarray(energy), dtype=dtype, device=device)
    if forces is not None:
        batch["forces"] = torch.as_tensor(np.asarray(forces), dtype=dtype, device=device)
    return batch


def reference_energy(numbers: np.ndarray, num_atoms: np.ndarray, references: dict[str, float]) -> np.ndarray:
    """sum_Z n_Z e_Z per configuration of packed atoms; KeyError names an element without a reference."""
    table = np.full(max(int(z) for z in references) + 1 if references else 1, np.nan)
    for z, e in references.items():
        table[int(z)] = e
    per_atom = table[np.minimum(numbers, len(table) - 1)]
    missing = np.isnan(per_atom) | (numbers >= len(table))
    if missing.any():
        raise KeyError(f"no reference energy for atomic numbers {sorted(set(numbers[missing].tolist()))}")
    return np.add.reduceat(per_atom, np.cumsum(num_atoms) - num_atoms) if len(num_atoms) else np.zeros(0)


def load_split(shard_paths: list[str | Path], stats_path: str | Path, split: str) -> MoleculeData:
    """Every configuration of `split`'s molecules from the shards the statistics were fitted on."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r} (known: {', '.join(SPLITS)})")
    stats = read_statistics(stats_path)
    check_shards_match(stats, shard_paths, stats_path)
    keep_ids = np.array(stats["splits"][split], dtype=np.int64)
    parts = []
    for path in shard_paths:
        shard = read_shard(path)
        if shard.config_hash != stats["config_hash"]:
            raise StatisticsError(f"molecule shard {path} has config hash {shard.config_hash}, {stats_path} "
                                  f"was fitted on {stats['config_hash']}")
        configs = shard.configurations[np.isin(shard.configurations["molecule_id"], keep_ids)]
        atoms = np.concatenate([np.arange(f, f + n) for f, n in zip(configs["first_atom"], configs["num_atoms"])]
                               ) if len(configs) else np.zeros(0, np.int64)
        parts.append((configs, shard.numbers[atoms], shard.positions[atoms], shard.forces[atoms]))
    configs = np.concatenate([p[0] for p in parts])
    numbers = np.concatenate([p[1] for p in parts]).astype(np.int64)
    num_atoms = configs["num_atoms"].astype(np.int64)
    energy = configs["energy"] - reference_energy(numbers, num_atoms, stats["reference_energies"])
    return MoleculeData(molecule_id=configs["molecule_id"].astype(np.int64), energy=energy,
                        first_atom=np.cumsum(num_atoms) - num_atoms, num_atoms=num_atoms, numbers=numbers,
                        positions=np.concatenate([p[2] for p in parts]), forces=np.concatenate([p[3] for p in parts]))
