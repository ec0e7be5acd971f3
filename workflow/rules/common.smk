# Helpers shared by every rule file: config validation, source-file inputs, output paths.
import json
import os
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError

from eqscale.config import ConfigError, validate_config

# Validate before any job starts: unknown keys, bad types and inconsistent values stop here.
try:
    _validated = validate_config(config)
except ConfigError as err:
    raise WorkflowError(str(err)) from None
config.clear()
config.update(_validated)

REPO = Path(workflow.basedir)
# Jobs call the `eqscale` console script of the environment running Snakemake (a conda env
# activated by --sdm conda goes first on PATH and brings its own).
os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"


def src(*relative):
    """Absolute paths of package source files (rule inputs, so editing the code reruns the rule)."""
    return [str(REPO / "src" / "eqscale" / r) for r in relative]


def config_slice(*sections):
    """JSON of the config sections a stage reads (passed as params, so only they trigger reruns)."""
    return json.dumps({s: config[s] for s in sections}, sort_keys=True)


def raw_shards():
    """Every raw shard of the configured simulation."""
    return [f"results/raw/shard-{i:04d}.h5" for i in range(config["simulation"]["num_shards"])]
