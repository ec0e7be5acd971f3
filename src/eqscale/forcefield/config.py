"""The force-field sections of a study config (`molecules`, `forcefield`), read through the one study schema.

Both sections live in eqscale/config.schema.yaml beside the rigid-body ones, so `eqscale validate`,
the Snakefile and every force-field stage accept and refuse the same configs; these are shorthands.
"""

from __future__ import annotations

from eqscale.config import validate_config


def validate_forcefield_config(config: dict | None) -> dict:
    """A validated deep copy of a study config (force-field defaults filled in); ConfigError naming the key."""
    return validate_config(config)


def forcefield_settings(config: dict | None = None) -> dict:
    """The validated `forcefield` section (all defaults when `config` is None)."""
    return validate_config(config)["forcefield"]
