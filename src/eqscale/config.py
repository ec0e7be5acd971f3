"""Load a study config, fill defaults from the JSON schema and validate it with readable errors.

`eqscale validate --configfile presets/tiny.yaml` checks a file by hand; the Snakefile calls
`validate_config` before any job starts.
"""

from __future__ import annotations

import argparse
import copy
import functools
import hashlib
import json
import sys
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from eqscale.shape_catalog import MIN_FACES

SCHEMA_NAME = "config.schema.yaml"  # shipped inside the package, so an installed eqscale validates too


class ConfigError(ValueError):
    """A config value is invalid; the message names the key and the reason."""


@functools.lru_cache(maxsize=1)
def _schema_text() -> str:
    return resources.files("eqscale").joinpath(SCHEMA_NAME).read_text()


def load_schema() -> dict:
    """The config JSON schema (eqscale/config.schema.yaml, a fresh copy)."""
    return yaml.safe_load(_schema_text())


def _with_defaults(validator_class):
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, sub in properties.items():
                if "default" in sub and name not in instance:
                    instance[name] = copy.deepcopy(sub["default"])
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": set_defaults})


_DefaultFillingValidator = _with_defaults(jsonschema.Draft202012Validator)


def _key_of(error: jsonschema.ValidationError) -> str:
    path = ".".join(str(p) for p in error.absolute_path)
    if error.validator == "additionalProperties":
        # the offending key is in the message, not the path
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        path = ".".join(filter(None, [path, extra[0] if extra else ""]))
    return path or "<top level>"


def _reason_of(error: jsonschema.ValidationError) -> str:
    if error.validator == "additionalProperties":
        allowed = ", ".join(sorted(error.schema.get("properties", {})))
        return f"unknown key (allowed here: {allowed})"
    return error.message


def _semantic_checks(config: dict) -> None:
    sim = config["simulation"]
    if sim["min_objects"] > sim["max_objects"]:
        raise ConfigError(
            f"config key simulation.min_objects: {sim['min_objects']} is greater than "
            f"simulation.max_objects ({sim['max_objects']}); min objects must not exceed max objects"
        )
    if sim["step_rate"] % sim["frame_rate"]:
        raise ConfigError(
            f"config key simulation.step_rate: {sim['step_rate']} is not a multiple of "
            f"simulation.frame_rate ({sim['frame_rate']})"
        )
    low, high = sim["scale_range"]
    if low > high:
        raise ConfigError(f"config key simulation.scale_range: low {low} > high {high}")
    for axis, (lo, hi) in enumerate(zip(sim["spawn_low"], sim["spawn_high"])):
        if lo >= hi:
            raise ConfigError(f"config key simulation.spawn_low[{axis}]: {lo} is not below spawn_high[{axis}] ({hi})")
    if sim["spawn_low"][2] <= 0:
        raise ConfigError("config key simulation.spawn_low[2]: objects must spawn above the floor (z > 0)")
    needed = {shape: MIN_FACES[shape] for shape in config["assets"]["shapes"]}
    too_small = {shape: n for shape, n in needed.items() if n > config["assets"]["max_faces"]}
    if too_small:
        raise ConfigError(f"config key assets.max_faces: {config['assets']['max_faces']} is below what these shapes "
                          f"need: {too_small}; use at least {max(too_small.values())} or drop them from assets.shapes")


def validate_config(config: dict | None) -> dict:
    """Return a validated deep copy of `config` with every default filled in; raise ConfigError."""
    config = copy.deepcopy(config) if config is not None else {}
    if not isinstance(config, dict):
        raise ConfigError(f"config must be a mapping of keys to values, got {type(config).__name__}")
    validator = _DefaultFillingValidator(load_schema())
    errors = sorted(validator.iter_errors(config), key=lambda e: (list(e.absolute_path), e.validator))
    if errors:
        lines = [f"  {_key_of(e)}: {_reason_of(e)}" for e in errors]
        raise ConfigError("invalid config:\n" + "\n".join(lines))
    _semantic_checks(config)
    return config


def load_config(path: str | Path | None = None, overrides: dict | None = None) -> dict:
    """Read a YAML config (or none: all defaults), merge `overrides` on top, validate."""
    config: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.exists():
            raise ConfigError(f"config file {path} does not exist")
        with open(path) as fh:
            config = yaml.safe_load(fh) or {}
        if not isinstance(config, dict):
            raise ConfigError(f"config file {path}: top level must be a mapping")
    if overrides:
        config = deep_merge(config, overrides)
    return validate_config(config)


def deep_merge(base: dict, update: dict) -> dict:
    """Recursively merge `update` into a copy of `base` (update wins)."""
    out = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def config_hash(config: dict, sections: list[str] | None = None) -> str:
    """Stable sha256 (hex, 16 chars) of the given top-level sections (all when None)."""
    picked = config if sections is None else {k: config[k] for k in sections if k in config}
    blob = json.dumps(picked, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """Add --configfile / --config-json, the two ways a stage receives its config."""
    parser.add_argument("--configfile", type=Path, help="study config YAML (defaults fill the rest)")
    parser.add_argument(
        "--config-json",
        help="config sections as JSON, merged over --configfile (Snakemake passes the slice a stage reads)",
    )


def default_configfile(args: argparse.Namespace) -> None:
    """For user-facing commands: no --configfile and no --config-json means ./config.yaml, as in Snakemake."""
    if args.configfile is None and not getattr(args, "config_json", None) and Path("config.yaml").is_file():
        args.configfile = Path("config.yaml")


def config_from_args(args: argparse.Namespace) -> dict:
    """Build the validated config from --configfile and --config-json."""
    overrides = json.loads(args.config_json) if getattr(args, "config_json", None) else None
    return load_config(args.configfile, overrides)


def main(argv: list[str] | None = None) -> int:
    """`eqscale validate`: check a config file and print it with defaults filled in."""
    parser = argparse.ArgumentParser(prog="eqscale validate", description=main.__doc__)
    add_config_arguments(parser)
    parser.add_argument("--print", action="store_true", help="print the full config with defaults")
    args = parser.parse_args(argv)
    default_configfile(args)
    try:
        config = config_from_args(args)
    except ConfigError as err:
        print(f"eqscale: {err}", file=sys.stderr)
        return 1
    if args.print:
        print(yaml.safe_dump(config, sort_keys=False))
    else:
        print("config OK")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
