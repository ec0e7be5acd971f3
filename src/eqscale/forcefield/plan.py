"""What the grid needs to plan a force-field cell before any molecule is labelled: the training pool and FLOPs.

Single-epoch training (paper 2) means a cell's compute fixes its data: D = C / (3 x forward FLOPs per
configuration), and every configuration is seen at most once, so a budget is only plannable if the
training split holds D configurations. The pool is known from the config alone: the molecules it
selects, their split (the same rule `eqscale molecules --stats` applies) and the configurations each
MD run keeps. Forward FLOPs per configuration are the size table's FLOPs per atom (reference batch)
times the training molecules' mean atoms; the training job then counts every real batch exactly.
Torch-free (RDKit reads the SMILES list: ~0.5 s, once per process).
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass

from eqscale.forcefield.models import table

HEADROOM = 0.9  # a planned cell may use this share of the pool: real batches' edge counts differ from the reference


@dataclass(frozen=True)
class TrainingPool:
    """The training split a config will label: configurations and their mean atoms (failed MD runs not foreseen)."""

    molecules: int
    configurations: int
    mean_atoms: float
    labelled: int  # configurations of every split (what `eqscale molecules` computes)
    unseen_elements: tuple[int, ...] = ()  # atomic numbers of validation/test molecules no training molecule has


def training_pool(config: dict) -> TrainingPool:
    """The planned training split of a validated config."""
    m = config["molecules"]
    return _pool(json.dumps({k: m[k] for k in ("smiles_file", "num_molecules", "max_atoms", "val_fraction",
                                               "test_fraction")}, sort_keys=True), config["seed"],
                 m["conformers"] * len(m["temperatures"]) * m["configurations_per_run"])


@functools.lru_cache(maxsize=8)
def _pool(molecules_json: str, seed: int, per_molecule: int) -> TrainingPool:
    from eqscale.forcefield.molecules import load_molecule_list, select_molecules
    from eqscale.forcefield.splits import assign_splits

    m = json.loads(molecules_json)
    selected = select_molecules(load_molecule_list(m["smiles_file"]), m["num_molecules"], m["max_atoms"], seed)
    atoms = {mol.molecule_id: mol.num_atoms for mol in selected}
    splits = assign_splits(list(atoms), seed, m["val_fraction"], m["test_fraction"])
    train = splits["train"]
    elements = {mol.molecule_id: set(mol.numbers) for mol in selected}
    seen = set().union(*(elements[i] for i in train))
    held_out = set().union(*(elements[i] for i in splits["val"] + splits["test"]))
    return TrainingPool(molecules=len(train), configurations=len(train) * per_molecule,
                        mean_atoms=sum(atoms[i] for i in train) / len(train), labelled=len(atoms) * per_molecule,
                        unseen_elements=tuple(sorted(held_out - seen)))


def check_pool(config: dict) -> None:
    """ConfigError when the held-out molecules have elements no training molecule has (no reference energy)."""
    from eqscale.config import ConfigError

    pool = training_pool(config)
    if pool.unseen_elements:
        raise ConfigError(f"config key molecules: validation/test molecules contain elements {list(pool.unseen_elements)} "
                          "that no training molecule has, so their reference energies cannot be fitted; select more "
                          "molecules (molecules.num_molecules), another seed, or a SMILES list without them")


def step_passes(config: dict, symmetry_loss: bool) -> int:
    """Forward+backward passes of one step: 1, or 1 + M for the symmetry loss (each copy runs the network)."""
    return 1 + config["forcefield"]["symmetry_loss_copies"] if symmetry_loss else 1


def flops_per_configuration(family: str, size: str, config: dict, symmetry_loss: bool = False) -> float:
    """Planned training FLOPs of one configuration: 3 x forward FLOPs per atom x mean atoms (x passes)."""
    per_atom = table.forward_flops_per_atom(family, size, config["forcefield"])
    return 3.0 * per_atom * training_pool(config).mean_atoms * step_passes(config, symmetry_loss)


def flops_per_step(family: str, size: str, config: dict, symmetry_loss: bool = False) -> float:
    """Planned FLOPs of one optimizer step (forcefield.batch_size configurations)."""
    return flops_per_configuration(family, size, config, symmetry_loss) * config["forcefield"]["batch_size"]
