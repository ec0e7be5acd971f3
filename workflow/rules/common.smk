# Helpers shared by all rule files -- config validation, source-file inputs, output paths.
import json
import shlex
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
# Jobs call the `eqscale` console script of the environment running Snakemake; without eqscale
# there (e.g. --sdm conda from a bare Snakemake env), the job's own environment provides it.
shell.prefix(f'PATH={shlex.quote(str(Path(sys.executable).parent))}:"$PATH"; ')


def src(*relative):
    """Absolute paths of package source files; as inputs, editing the code reruns the jobs using it."""
    return [str(REPO / "src" / "eqscale" / r) for r in relative]


def config_slice(*sections):
    """JSON of the config sections a stage reads (passed as params, so only they trigger reruns)."""
    return json.dumps({s: config[s] for s in sections}, sort_keys=True)


def raw_shards():
    """Every raw shard of the configured simulation."""
    return [f"results/raw/shard-{i:04d}.h5" for i in range(config["simulation"]["num_shards"])]



def token_shards():
    """Every token shard `eqscale tokenize` writes for this config (the split rule decides the counts)."""
    from eqscale.data.token_format import planned_token_files

    return [f"results/tokens/{name}" for name in planned_token_files(config)]
