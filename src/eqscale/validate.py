"""`eqscale validate`: every check a study config must pass before any job starts.

`check_study` is what the Snakefile runs at the top of every `snakemake` invocation and what
`eqscale validate` runs by hand, so the two accept and refuse exactly the same configs:

* the schema and the cross-key rules of `eqscale.config.validate_config` (types, whole numbers for
  counts, finite numbers, ranges, upper bounds with their reasons, horizon within the frames);
* the splits: the split rule applied to every planned trajectory must leave the train and test
  splits (and the validation split, when asked for) non-empty; in the force-field study, every
  element of the held-out molecules must occur in a training molecule (reference energies);
* the grid (`eqscale.grid.build_grid`): every cell buildable and distinct, steps within bounds.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

from eqscale.cells import Cell
from eqscale.config import ConfigError, add_config_arguments, config_from_args, default_configfile, read_yaml, \
    validate_config
from eqscale.data.token_format import planned_split_counts
from eqscale.grid import build_grid


# a split expected to hold this many trajectories cannot come out empty: that would take this many
# independent hash draws all missing its interval, probability below e^-50
SURE_SPLIT_SIZE = 50


def check_splits(config: dict) -> None:
    """ConfigError when a split the study needs is empty under the split rule (exact for small studies)."""
    sim, tok = config["simulation"], config["tokens"]
    total = sim["num_shards"] * sim["trajectories_per_shard"]
    expected = {"train": total * (1 - tok["val_fraction"] - tok["test_fraction"]),
                "val": total * tok["val_fraction"], "test": total * tok["test_fraction"]}
    if min(expected.values()) >= SURE_SPLIT_SIZE or (tok["val_fraction"] == 0
                                                    and min(expected["train"], expected["test"]) >= SURE_SPLIT_SIZE):
        return  # hashing every trajectory of a large study (2 s for 400,000) would tell nothing more
    counts = planned_split_counts(config)
    needs = {"train": "lower tokens.val_fraction and tokens.test_fraction",
             "test": "raise tokens.test_fraction",
             "val": "raise tokens.val_fraction (or set it to 0 for no validation split)"}
    for split, hint in needs.items():
        if split == "val" and tok["val_fraction"] == 0:
            continue
        if counts[split] == 0:
            raise ConfigError(f"config key tokens: the {split} split of the {total} simulated trajectories "
                              f"(simulation.num_shards x trajectories_per_shard) is empty under the split rule "
                              f"(val {tok['val_fraction']:g}, test {tok['test_fraction']:g}); {hint} or simulate more "
                              "trajectories")


def check_study(config: dict | None) -> tuple[dict, list[Cell]]:
    """The validated config (defaults filled in) and its planned cells; ConfigError/GridError naming the key or cell."""
    config = validate_config(config)
    if config["study"] == "forcefield":
        from eqscale.forcefield.plan import check_pool

        check_pool(config)
    else:
        check_splits(config)
    return config, build_grid(config)


def check_config_files(paths) -> None:
    """Read each YAML config file strictly (duplicate keys, syntax errors with line and column)."""
    for path in paths:
        read_yaml(path)


def main(argv: list[str] | None = None) -> int:
    """`eqscale validate`: check a config the way `snakemake` does and print it with defaults filled in."""
    parser = argparse.ArgumentParser(prog="eqscale validate", description=main.__doc__)
    add_config_arguments(parser)
    parser.add_argument("--print", action="store_true", help="print the full config with defaults")
    args = parser.parse_args(argv)
    default_configfile(args)
    try:
        config, cells = check_study(config_from_args(args))
    except ConfigError as err:
        print(f"eqscale: {err}", file=sys.stderr)
        return 1
    if args.print:
        print(yaml.safe_dump(config, sort_keys=False))
    else:
        source = args.configfile or Path("defaults")
        print(f"config OK: {source} plans {len(cells)} cells")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
