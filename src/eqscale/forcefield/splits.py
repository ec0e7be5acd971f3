"""Splits by molecule, per-element reference energies fitted on train, and the statistics file.

A molecule's configurations all go to one split, so test molecules are never seen in training.
The reference energy of a configuration is sum_Z n_Z e_Z over its atoms; the e_Z (eV per atom of
element Z) are the least-squares fit of the training configurations' total energies (the
minimum-norm solution when the training compositions do not pin every e_Z down; the residuals are
the same). Models learn the residual E - sum_Z n_Z e_Z.

stats.json (format "eqscale-molecule-stats", version 1): config_hash, seed, method, units,
splits {train/val/test: [molecule ids]}, reference_energies {"Z": eV}, statistics per split
(molecules, configurations, atoms, residual energy per atom mean/std in eV, force RMS per
component and mean force norm in eV/A), shards [{name, sha256, configurations}], versions.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from eqscale.config import config_hash
from eqscale.forcefield.shard_format import MoleculeShardError, ShardData, read_shard
from eqscale.io_utils import atomic_write_text, package_versions

STATS_FORMAT = "eqscale-molecule-stats"
STATS_VERSION = 1
SPLITS = ("train", "val", "test")


class StatisticsError(ValueError):
    """A stats file or its shards are missing, foreign or inconsistent; the message names the file."""


def assign_splits(molecule_ids, seed: int, val_fraction: float, test_fraction: float) -> dict[str, list[int]]:
    """Molecule ids per split: a seeded permutation, round(fraction x molecules) each for test and val (>= 1 test)."""
    ids = np.array(sorted(set(int(i) for i in molecule_ids)), dtype=np.int64)
    n = len(ids)
    n_test = max(1, round(test_fraction * n))
    n_val = round(val_fraction * n)
    if n - n_test - n_val < 1:
        raise ValueError(f"{n} molecules are too few for val_fraction {val_fraction} and test_fraction "
                         f"{test_fraction}: no training molecule would be left (config keys molecules.*_fraction)")
    order = ids[np.random.default_rng(np.random.SeedSequence([seed, 0x73706C])).permutation(n)]  # "spl"
    return {"test": sorted(order[:n_test].tolist()), "val": sorted(order[n_test:n_test + n_val].tolist()),
            "train": sorted(order[n_test + n_val:].tolist())}


def composition(numbers: np.ndarray, num_atoms: np.ndarray, elements: list[int]) -> np.ndarray:
    """(configurations, elements) atom counts of configurations packed back to back."""
    config_of_atom = np.repeat(np.arange(len(num_atoms)), num_atoms)
    unknown = sorted(set(numbers.tolist()) - set(elements))
    if unknown:
        raise ValueError(f"atomic numbers {unknown} have no reference energy")
    column = np.searchsorted(elements, numbers)
    counts = np.zeros((len(num_atoms), len(elements)))
    np.add.at(counts, (config_of_atom, column), 1.0)
    return counts


def fit_reference_energies(energies: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Least-squares e_Z with energies ~ counts @ e_Z (minimum norm when rank-deficient)."""
    solution, *_ = np.linalg.lstsq(counts, energies, rcond=None)
    return solution


def _merged(shards: list[ShardData]) -> dict[str, np.ndarray]:
    configs = np.concatenate([s.configurations for s in shards])
    return {"molecule_id": configs["molecule_id"], "energy": configs["energy"], "num_atoms": configs["num_atoms"],
            "numbers": np.concatenate([s.numbers for s in shards]),
            "forces": np.concatenate([s.forces for s in shards])}


def _check_shards(paths: list[Path], shards: list[ShardData], config: dict | None) -> None:
    expected = config_hash(config, ["seed", "molecules"]) if config is not None else shards[0].config_hash
    for path, shard in zip(paths, shards):
        if shard.config_hash != expected:
            raise StatisticsError(f"molecule shard {path} was labelled with config hash {shard.config_hash}, "
                                  f"not {expected} (a shard of another config; re-run eqscale molecules)")
    num_shards = int(shards[0].attrs["num_shards"])
    found = sorted(int(s.attrs["shard"]) for s in shards)
    if found != list(range(num_shards)):
        raise StatisticsError(f"the statistics need each of the {num_shards} shards once; got shard indices {found} "
                              f"from {[str(p) for p in paths]}")


def statistics(shard_paths: list[str | Path], config: dict | None = None) -> dict:
    """The stats.json content for a complete set of shards (config: check the shards were labelled with it)."""
    paths = [Path(p) for p in shard_paths]
    if not paths:
        raise StatisticsError("no molecule shards given")
    shards = [read_shard(p) for p in paths]
    _check_shards(paths, shards, config)
    label_config = json.loads(shards[0].attrs["config_json"])
    seed, mol = label_config["seed"], label_config["molecules"]
    data = _merged(shards)
    splits = assign_splits(np.concatenate([s.molecules["molecule_id"] for s in shards]), seed,
                           mol["val_fraction"], mol["test_fraction"])
    split_of_config = {name: np.isin(data["molecule_id"], ids) for name, ids in splits.items()}
    atom_mask = {name: np.repeat(mask, data["num_atoms"]) for name, mask in split_of_config.items()}
    train_elements = sorted(set(data["numbers"][atom_mask["train"]].tolist()))
    for name in ("val", "test"):
        unseen = sorted(set(data["numbers"][atom_mask[name]].tolist()) - set(train_elements))
        if unseen:
            raise StatisticsError(f"{name} molecules contain elements {unseen} that no training molecule has: their "
                                  "reference energies cannot be fitted (label more molecules or change the seed)")
    counts = composition(data["numbers"], data["num_atoms"], train_elements)
    train = split_of_config["train"]
    if not train.any():
        raise StatisticsError("the training split holds no configuration (every training molecule's runs failed?)")
    references = fit_reference_energies(data["energy"][train], counts[train])
    residual_per_atom = (data["energy"] - counts @ references) / data["num_atoms"]
    stats = {}
    for name in SPLITS:
        mask, amask = split_of_config[name], atom_mask[name]
        forces = data["forces"][amask]
        stats[name] = {
            "molecules": len(splits[name]), "configurations": int(mask.sum()), "atoms": int(amask.sum()),
            "energy_per_atom_mean": float(residual_per_atom[mask].mean()) if mask.any() else None,
            "energy_per_atom_std": float(residual_per_atom[mask].std()) if mask.any() else None,
            "force_rms": float(np.sqrt(np.mean(forces**2))) if len(forces) else None,
            "force_norm_mean": float(np.linalg.norm(forces, axis=1).mean()) if len(forces) else None,
        }
    return {
        "format": STATS_FORMAT, "format_version": STATS_VERSION, "config_hash": shards[0].config_hash,
        "seed": seed, "method": shards[0].attrs["method"], "units": json.loads(shards[0].attrs["units_json"]),
        "splits": splits,
        "reference_energies": {str(z): float(e) for z, e in zip(train_elements, references)},
        "statistics": stats,
        "shards": [{"name": p.name, "sha256": hashlib.sha256(p.read_bytes()).hexdigest(),
                    "configurations": int(s.attrs["num_configurations"])} for p, s in zip(paths, shards)],
        "versions": package_versions("eqscale", "numpy"),
    }


def write_statistics(shard_paths: list[str | Path], config: dict | None, out_path: str | Path) -> dict:
    """Compute `statistics` and write them to `out_path` (JSON, atomically)."""
    stats = statistics(shard_paths, config)
    atomic_write_text(out_path, json.dumps(stats, indent=1, sort_keys=True) + "\n")
    return stats


def read_statistics(path: str | Path) -> dict:
    """A stats.json written by `write_statistics`, checked for format and version."""
    path = Path(path)
    rerun = "re-run eqscale molecules --stats"
    try:
        stats = json.loads(path.read_text())
    except FileNotFoundError as err:
        raise StatisticsError(f"molecule statistics {path} do not exist ({rerun})") from err
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise StatisticsError(f"molecule statistics {path} are not valid JSON (truncated?): {err}; {rerun}") from err
    if not isinstance(stats, dict) or stats.get("format") != STATS_FORMAT:
        raise StatisticsError(f"{path} is not an eqscale molecule statistics file")
    if stats.get("format_version") != STATS_VERSION:
        raise StatisticsError(f"molecule statistics {path} have format_version {stats.get('format_version')}; "
                              f"this eqscale reads {STATS_VERSION}: {rerun}")
    return stats


def check_shards_match(stats: dict, shard_paths: list[str | Path], stats_path: str | Path = "stats.json") -> None:
    """Refuse shards other than the ones the statistics were fitted on (by sha256), naming the file."""
    recorded = {s["name"]: s["sha256"] for s in stats["shards"]}
    for path in map(Path, shard_paths):
        if path.name not in recorded:
            raise MoleculeShardError(f"molecule shard {path} is not among the shards {stats_path} was fitted on")
        if hashlib.sha256(path.read_bytes()).hexdigest() != recorded[path.name]:
            raise MoleculeShardError(f"molecule shard {path} changed since {stats_path} was fitted on it "
                                     "(re-run eqscale molecules --stats)")
