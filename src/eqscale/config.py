"""Load a study config, fill defaults from the JSON schema and validate it with readable errors.

`validate_config` checks one config on its own: the schema (types, with counts as true integers,
ranges and upper bounds with their reasons), every number finite, and the cross-key rules below.
`eqscale.validate.check_study` adds what needs the grid and the split rule; the Snakefile and
`eqscale validate` both call that, so they accept and refuse the same configs. YAML files are read
strictly: a duplicate key or a syntax error is refused with its line and column.
"""

from __future__ import annotations

import argparse
import copy
import functools
import hashlib
import json
import math
import sys
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from eqscale.shape_catalog import MIN_FACES

SCHEMA_NAME = "config.schema.yaml"  # shipped inside the package, so an installed eqscale validates too


# training settings that change how fast a run goes, never what it computes: they reach jobs as Snakemake
# resources (a change reruns nothing) and a resumed run may change them
RUNTIME_SETTINGS = ("threads", "num_workers", "checkpoint_every_s")


class ConfigError(ValueError):
    """A config value is invalid; the message names the key and the reason."""


@functools.lru_cache(maxsize=1)
def _schema_text() -> str:
    return resources.files("eqscale").joinpath(SCHEMA_NAME).read_text()


@functools.lru_cache(maxsize=1)
def _parsed_schema() -> dict:
    return yaml.safe_load(_schema_text())


def load_schema() -> dict:
    """The config JSON schema (eqscale/config.schema.yaml, a fresh copy; parsed once per process: ~0.3 s)."""
    return copy.deepcopy(_parsed_schema())


def _with_defaults(validator_class):
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, sub in properties.items():
                if "default" in sub and name not in instance:
                    instance[name] = copy.deepcopy(sub["default"])
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": set_defaults})


def _is_count(checker, instance) -> bool:
    # JSON Schema counts 2.0 as an integer; a count written as a float is a typo or a unit mix-up here
    return isinstance(instance, int) and not isinstance(instance, bool)


_StrictTypes = jsonschema.validators.extend(
    jsonschema.Draft202012Validator,
    type_checker=jsonschema.Draft202012Validator.TYPE_CHECKER.redefine("integer", _is_count))
_DefaultFillingValidator = _with_defaults(_StrictTypes)


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
    if error.validator == "type" and error.validator_value == "integer" and isinstance(error.instance, float):
        return f"{error.instance!r} is not a whole number (write it without a decimal point or exponent)"
    reason = error.schema.get("x-reason") if error.validator in ("maximum", "maxItems") else None
    return f"{error.message} ({reason})" if reason else error.message


def _non_finite(value: Any, key: str = "") -> list[str]:
    """Keys of every NaN or infinite number in a nested config (YAML reads .nan and .inf as floats)."""
    if isinstance(value, float) and not math.isfinite(value):
        return [key or "<top level>"]
    if isinstance(value, dict):
        return [k for name, sub in value.items() for k in _non_finite(sub, f"{key}.{name}" if key else str(name))]
    if isinstance(value, list):
        return [k for i, sub in enumerate(value) for k in _non_finite(sub, f"{key}[{i}]")]
    return []


def _semantic_checks(config: dict) -> None:
    sim = config["simulation"]
    usable = sim["num_frames"] - 1 - config["tokens"]["horizon"]
    if usable < 1:
        raise ConfigError(f"config key tokens.horizon: {config['tokens']['horizon']} frames ahead leaves no sample in "
                          f"trajectories of simulation.num_frames={sim['num_frames']} (a sample needs frames t-1, t "
                          f"and t+horizon); use a horizon of at most {sim['num_frames'] - 2}")
    tok = config["tokens"]
    if tok["val_fraction"] + tok["test_fraction"] >= 1:
        raise ConfigError(f"config keys tokens.val_fraction + tokens.test_fraction = "
                          f"{tok['val_fraction'] + tok['test_fraction']:g} leave no trajectories for training")
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


def _forcefield_checks(config: dict) -> None:
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


def _study_checks(config: dict) -> None:
    """The grid names only the study's families; what one study has and the other lacks is refused by key."""
    from eqscale.cells import STUDY_MODELS, study_of

    study, grid = config["study"], config["grid"]
    for model, spec in grid["scaling"].items():
        if model not in STUDY_MODELS[study]:
            raise ConfigError(f"config key grid.scaling.{model}: {model} is a family of the {study_of(model)} study, "
                              f"this config runs study: {study} (its families: {', '.join(STUDY_MODELS[study])})")
        if spec["symmetry_arms"] and study != "forcefield":
            raise ConfigError(f"config key grid.scaling.{model}.symmetry_arms: symmetry arms belong to the "
                              "force-field study (the rigid study's augmentation is grid.scaling.<model>.augment)")
        if spec["augment"] and spec["symmetry_arms"]:
            raise ConfigError(f"config key grid.scaling.{model}.augment: with symmetry_arms the plain cells stay "
                              "plain and each arm is listed there; set augment: false")
    if study == "forcefield" and config["lr_sweep"]["enabled"]:
        raise ConfigError("config key lr_sweep.enabled: the force-field study sets each size's rate by "
                          "forcefield.lr and forcefield.lr_width_exponent; the sweep belongs to the rigid study")


def validate_config(config: dict | None) -> dict:
    """Return a validated deep copy of `config` with every default filled in; raise ConfigError."""
    config = copy.deepcopy(config) if config is not None else {}
    if not isinstance(config, dict):
        raise ConfigError(f"config must be a mapping of keys to values, got {type(config).__name__}")
    bad = _non_finite(config)
    if bad:
        raise ConfigError("invalid config:\n" + "\n".join(f"  {key}: not a finite number (NaN or infinity)"
                                                          for key in bad))
    validator = _DefaultFillingValidator(load_schema())
    errors = sorted(validator.iter_errors(config), key=lambda e: (list(e.absolute_path), e.validator))
    if errors:
        lines = [f"  {_key_of(e)}: {_reason_of(e)}" for e in errors]
        raise ConfigError("invalid config:\n" + "\n".join(lines))
    _semantic_checks(config)
    _forcefield_checks(config)
    _study_checks(config)
    return config


class _StrictLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key given twice in one mapping (YAML itself keeps the last silently)."""

    def construct_mapping(self, node, deep=False):
        seen: dict = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                mark = key_node.start_mark
                raise ConfigError(f"line {mark.line + 1}, column {mark.column + 1}: key {key!r} is given twice in "
                                  f"one mapping (first on line {seen[key] + 1}); YAML would keep only the last")
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


def read_yaml(path: str | Path) -> Any:
    """The YAML document in `path`, read strictly; ConfigError with the file, line and column otherwise."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"config file {path} cannot be read ({err})") from None
    try:
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except ConfigError as err:
        raise ConfigError(f"config file {path}, {err}") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f", line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err)
        raise ConfigError(f"config file {path}{where}: not valid YAML ({problem})") from None


def load_config(path: str | Path | None = None, overrides: dict | None = None) -> dict:
    """Read a YAML config (or none: all defaults), merge `overrides` on top, validate."""
    config: dict[str, Any] = {}
    if path is not None:
        config = read_yaml(path) or {}
        if not isinstance(config, dict):
            raise ConfigError(f"config file {path}: top level must be a mapping of sections, got "
                              f"{type(config).__name__}")
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
        "--config-json", action="append", default=[], metavar="JSON",
        help="config sections as JSON, merged over --configfile in order (Snakemake passes the slice a stage reads)",
    )


def add_runtime_arguments(parser: argparse.ArgumentParser) -> None:
    """Add --threads / --checkpoint-every-s / --num-workers: how fast a job runs, never what it computes."""
    parser.add_argument("--threads", type=int, help="overrides training.threads")
    parser.add_argument("--checkpoint-every-s", type=float, help="overrides training.checkpoint_every_s")
    parser.add_argument("--num-workers", type=int, help="overrides training.num_workers")


def default_configfile(args: argparse.Namespace) -> None:
    """For user-facing commands: no --configfile and no --config-json means ./config.yaml, as in Snakemake."""
    if args.configfile is None and not getattr(args, "config_json", None) and Path("config.yaml").is_file():
        args.configfile = Path("config.yaml")


def config_from_args(args: argparse.Namespace) -> dict:
    """Build the validated config from --configfile and the --config-json slices (later ones win)."""
    overrides: dict = {}
    for i, text in enumerate(getattr(args, "config_json", None) or []):
        try:
            piece = json.loads(text)
        except json.JSONDecodeError as err:
            raise ConfigError(f"--config-json number {i + 1} is not valid JSON ({err.msg} at column {err.colno})") from None
        if not isinstance(piece, dict):
            raise ConfigError(f"--config-json number {i + 1} must be a JSON object of config sections")
        overrides = deep_merge(overrides, piece)
    # runtime flags (Snakemake passes them outside params, so changing them reruns nothing)
    runtime = {key: getattr(args, key) for key in ("threads", "checkpoint_every_s", "num_workers")
               if getattr(args, key, None) is not None}
    if runtime:
        overrides = deep_merge(overrides, {"training": runtime})
    return load_config(args.configfile, overrides or None)
