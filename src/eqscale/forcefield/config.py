"""The force-field sections of a config (`molecules`, `forcefield`): defaults from schema.yaml, checks naming the key.

schema.yaml beside this module is a fragment of the study schema; until it is merged into
workflow/schemas/config.schema.yaml the force-field stages validate their sections here, with the
same default filling and error format as `eqscale.config` (other top-level sections pass through).
"""

from __future__ import annotations

import argparse
import copy
import functools
import json
from pathlib import Path

import yaml

from eqscale.config import ConfigError, _DefaultFillingValidator, _key_of, _reason_of, deep_merge

SCHEMA_PATH = Path(__file__).with_name("schema.yaml")


@functools.lru_cache(maxsize=1)
def _schema() -> dict:
    with open(SCHEMA_PATH) as fh:
        return yaml.safe_load(fh)


def load_forcefield_schema() -> dict:
    """The JSON-schema fragment of the `molecules` and `forcefield` sections (a copy)."""
    return copy.deepcopy(_schema())


def _semantic_checks(config: dict) -> None:
    mol, ff = config["molecules"], config["forcefield"]
    if mol["val_fraction"] + mol["test_fraction"] >= 1.0:
        total = mol["val_fraction"] + mol["test_fraction"]
        raise ConfigError(f"config key molecules.test_fraction: val_fraction + test_fraction = {total} leaves no "
                          "training molecules; keep the sum below 1")
    if len(set(mol["temperatures"])) != len(mol["temperatures"]):
        raise ConfigError(f"config key molecules.temperatures: {mol['temperatures']} repeats a temperature")
    if mol["num_molecules"] is not None and mol["num_shards"] > mol["num_molecules"]:
        raise ConfigError(f"config key molecules.num_shards: {mol['num_shards']} shards for "
                          f"{mol['num_molecules']} molecules would leave a shard empty")
    if ff["angle_cutoff"] > ff["cutoff"]:
        raise ConfigError(f"config key forcefield.angle_cutoff: {ff['angle_cutoff']} is above forcefield.cutoff "
                          f"({ff['cutoff']}); angles are formed from edges of the radius graph")


def validate_forcefield_config(config: dict | None) -> dict:
    """A validated deep copy of `config`, force-field defaults filled in; ConfigError naming the key."""
    config = copy.deepcopy(config) if config is not None else {}
    if not isinstance(config, dict):
        raise ConfigError(f"config must be a mapping of keys to values, got {type(config).__name__}")
    validator = _DefaultFillingValidator(_schema())
    errors = sorted(validator.iter_errors(config), key=lambda e: (list(e.absolute_path), e.validator))
    if errors:
        raise ConfigError("invalid config:\n" + "\n".join(f"  {_key_of(e)}: {_reason_of(e)}" for e in errors))
    _semantic_checks(config)
    return config


def forcefield_settings(config: dict | None = None) -> dict:
    """The validated `forcefield` section (all defaults when `config` is None)."""
    return validate_forcefield_config(config)["forcefield"]


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """--configfile / --config-json, as every eqscale stage takes them."""
    parser.add_argument("--configfile", type=Path, help="study config YAML (defaults fill the rest)")
    parser.add_argument("--config-json", help="config sections as JSON, merged over --configfile")


def config_from_args(args: argparse.Namespace) -> dict:
    """The validated config from --configfile and --config-json (force-field sections only are checked)."""
    config: dict = {}
    if args.configfile is not None:
        path = Path(args.configfile)
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist")
        with open(path) as fh:
            config = yaml.safe_load(fh) or {}
        if not isinstance(config, dict):
            raise ConfigError(f"config file {path}: top level must be a mapping")
    if args.config_json:
        try:
            overrides = json.loads(args.config_json)
        except json.JSONDecodeError as err:
            raise ConfigError(f"--config-json is not valid JSON: {err}") from err
        if not isinstance(overrides, dict):
            raise ConfigError("--config-json must be a JSON object of config sections")
        config = deep_merge(config, overrides)
    return validate_forcefield_config(config)
