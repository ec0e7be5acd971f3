"""`eqscale molecules`: label one shard of molecular configurations with GFN2-xTB, or fit the splits' statistics.

    eqscale molecules --shard I --out results/molecules/shard-000I.h5 [--configfile F] [--config-json J]
    eqscale molecules --stats --shards results/molecules/shard-*.h5 --out results/molecules/stats.json

The first form runs every MD run of the shard's molecules (labels.py) and writes one shard
(shard_format.py); the second assigns molecules to train/val/test, fits per-element reference
energies on train and records the statistics (splits.py). Both are deterministic from the seed.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import numpy as np

from eqscale.config import ConfigError, add_config_arguments, config_from_args, config_hash
from eqscale.forcefield.labels import (METHOD, PROGRAM, UNITS, LabelSettings, label_molecule, openmp_max_threads,
                                       single_thread_openmp)
from eqscale.forcefield.molecules import (MoleculeListError, file_sha256, load_molecule_list, select_molecules,
                                          shard_molecules, smiles_path)
from eqscale.forcefield.shard_format import CONFIGURATION_DTYPE, MoleculeShardError, molecule_table, write_shard
from eqscale.io_utils import package_versions

LABEL_SECTIONS = ["seed", "molecules"]  # what a shard's bytes depend on


def study_molecules(config: dict):
    """The molecules a validated config labels (all shards), by id."""
    m = config["molecules"]
    return select_molecules(load_molecule_list(m["smiles_file"]), m["num_molecules"], m["max_atoms"], config["seed"])


def label_shard(config: dict, shard: int, out_path: str | Path, progress: bool = True,
                trace: list | None = None) -> Path:
    """Label every molecule of `shard` and write the shard to `out_path` atomically.

    `trace` (for the benchmark) receives each MD run's geometries, every one a single point was computed at.
    """
    single_thread_openmp()
    m = config["molecules"]
    molecules = shard_molecules(study_molecules(config), shard, m["num_shards"])
    settings = LabelSettings.from_config(config)
    iterator = molecules
    if progress:
        from tqdm import tqdm

        iterator = tqdm(molecules, desc=f"molecules shard {shard}", unit="mol", file=sys.stderr)
    rows, configs, numbers, positions, forces = [], [], [], [], []
    atoms_so_far = 0
    for molecule in iterator:
        runs = label_molecule(molecule, config["seed"], settings, trace=trace)
        first = len(configs)
        for run in runs:
            for step, pos, energy, force in zip(run.steps, run.positions, run.energies, run.forces):
                configs.append((molecule.molecule_id, run.conformer, run.temperature, step, energy, atoms_so_far,
                                molecule.num_atoms))
                numbers.append(molecule.numbers)
                positions.append(pos)
                forces.append(force)
                atoms_so_far += molecule.num_atoms
        rows.append({"molecule_id": molecule.molecule_id, "smiles": molecule.smiles, "name": molecule.name,
                     "num_atoms": molecule.num_atoms, "first_configuration": first,
                     "num_configurations": len(configs) - first,
                     "failed_runs": sum(1 for run in runs if run.failure)})
    attrs = {
        "global_seed": config["seed"],
        "shard": shard,
        "num_shards": m["num_shards"],
        "method": METHOD,
        "program": PROGRAM,
        "units_json": json.dumps(UNITS, sort_keys=True),
        "omp_num_threads": openmp_max_threads() or -1,
        "config_hash": config_hash(config, LABEL_SECTIONS),
        "config_json": json.dumps({k: config[k] for k in LABEL_SECTIONS}, sort_keys=True),
        "smiles_sha256": file_sha256(smiles_path(m["smiles_file"])),
        "versions_json": json.dumps(package_versions("eqscale", "tblite", "ase", "rdkit", "numpy", "h5py"),
                                    sort_keys=True),
    }
    return write_shard(out_path, attrs, molecule_table(rows), np.array(configs, dtype=CONFIGURATION_DTYPE),
                       np.concatenate([np.asarray(n, dtype=np.uint8) for n in numbers]) if numbers
                       else np.zeros(0, np.uint8),
                       np.concatenate(positions) if positions else np.zeros((0, 3)),
                       np.concatenate(forces) if forces else np.zeros((0, 3)))


def main(argv: list[str] | None = None) -> int:
    """`eqscale molecules`: label one shard (--shard) or fit splits and reference energies (--stats)."""
    parser = argparse.ArgumentParser(prog="eqscale molecules", description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.splitlines()[1:]))
    add_config_arguments(parser)
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--shard", type=int, help="label shard I in [0, molecules.num_shards)")
    mode.add_argument("--stats", action="store_true", help="fit splits and reference energies over --shards")
    parser.add_argument("--shards", type=Path, nargs="+", help="every label shard (with --stats)")
    parser.add_argument("--out", type=Path, help="output: the shard (default results/molecules/shard-NNNN.h5) "
                                                 "or stats.json (default results/molecules/stats.json)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        config = config_from_args(args)
        if args.stats:
            from eqscale.forcefield.splits import write_statistics

            if not args.shards:
                parser.error("--stats needs --shards (every label shard)")
            # without a config, the shards' own (recorded) config is used; with one, the shards must match it
            given = args.configfile is not None or bool(args.config_json)
            write_statistics(args.shards, config if given else None,
                             args.out or Path("results/molecules/stats.json"))
        else:
            out = args.out or Path("results/molecules") / f"shard-{args.shard:04d}.h5"
            label_shard(config, args.shard, out, progress=not args.no_progress)
    except (ConfigError, MoleculeListError, MoleculeShardError, FileNotFoundError, ValueError) as err:
        print(f"eqscale molecules: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
