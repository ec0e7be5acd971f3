# Helpers shared by all rule files -- config validation, source-file inputs, output paths.
import json
import shlex
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError

from eqscale.cells import MODEL_MODULES
from eqscale.cli import STAGES
from eqscale.config import RUNTIME_SETTINGS, ConfigError
from eqscale.sources import PACKAGE_DIR, sources_digest
from eqscale.validate import check_config_files, check_study

# Validate before any job starts, exactly as `eqscale validate` does: unknown keys, bad types, non-finite or
# absurd values, empty splits and impossible cells stop here, naming the key or the cell.
try:
    check_config_files(dict.fromkeys(Path(p).resolve() for p in workflow.configfiles))  # duplicate keys (Snakemake's YAML reader keeps the last silently)
    _validated, CELLS = check_study(config)
except ConfigError as err:
    raise WorkflowError(str(err)) from None
config.clear()
config.update(_validated)

# the sources this workflow ships (a checkout's src/eqscale), else those of the installed package
SOURCE_DIR = Path(workflow.basedir) / "src" / "eqscale"
if not (SOURCE_DIR / "__init__.py").is_file():
    SOURCE_DIR = PACKAGE_DIR

# settings that change how fast a job runs, never what it computes: they reach the stages as threads and
# resources (integers; the checkpoint interval in milliseconds), outside `params`, because a change of
# params reruns a job and a change of resources does not
RUNTIME_KEYS = RUNTIME_SETTINGS
RUNTIME_RESOURCES = {"loader_workers": config["training"]["num_workers"],
                     "checkpoint_ms": max(1, round(1000 * config["training"]["checkpoint_every_s"]))}
# Jobs call the `eqscale` console script of the environment running Snakemake; without eqscale
# there (e.g. --sdm conda from a bare Snakemake env), the job's own environment provides it.
shell.prefix(f'PATH={shlex.quote(str(Path(sys.executable).parent))}:"$PATH"; ')


def code(stage, model=None):
    """Digest of the source files `eqscale <stage>` runs (its module and everything it imports; for a model's
    cell only that model's family). As a parameter, editing that code reruns exactly the jobs that run it; a
    touched file or a moved clone reruns nothing (see eqscale.sources)."""
    others = tuple(module for name, module in MODEL_MODULES.items()
                   if name != model and module != MODEL_MODULES[model]) if model else ()
    return sources_digest(STAGES[stage][0], without=others, package_dir=SOURCE_DIR)


# The study this config runs: its data stages, and the stages that train and evaluate one of its cells.
STUDY_KIND = config["study"]
FORCEFIELD = STUDY_KIND == "forcefield"
DATA_READY = "results/molecules/stats.json" if FORCEFIELD else "results/tokens/stats.json"  # stands for the data
TRAIN_STAGE, EVALUATE_STAGE = ("ff-train", "ff-evaluate") if FORCEFIELD else ("train", "evaluate")


def molecule_configurations():
    """Configurations the force-field study labels (every split)."""
    from eqscale.forcefield.plan import training_pool

    return training_pool(config).labelled


def config_slice(*sections):
    """JSON of the config sections a stage reads (passed as params, so only they trigger reruns)."""
    return json.dumps({s: config[s] for s in sections}, sort_keys=True)


def raw_shards():
    """Every raw shard of the configured simulation."""
    return [f"results/raw/shard-{i:04d}.h5" for i in range(config["simulation"]["num_shards"])]


# The study grid as Snakemake sees it: cells, their paths and per-cell inputs (eqscale.cells is their one home).

from eqscale.cells import PATH_PATTERN, RUNS_DIR, WILDCARD_CONSTRAINTS, Cell  # noqa: E402
from eqscale.grid import sweep_cells  # noqa: E402

# CELLS: the planned grid, built by check_study in common.smk
PLANNED = {c: c for c in CELLS}  # a cell parsed from wildcards -> the same cell with the grid's plan
SWEEP = sweep_cells(CELLS)  # the learning-rate sweep's cells (their rule sets the rate of every lr~auto cell)
STUDY = [c for c in CELLS if c not in SWEEP]  # the cells the analysis reads
SWEPT = sorted({c.model for c in SWEEP})  # families with a learning-rate rule
LR_RULE = "results/lr/{model}.json"  # one rule per family, so a change to one family's code reruns only its cells

CELL_PATTERN = f"{RUNS_DIR}/{PATH_PATTERN}"  # a cell's directory; logs and benchmarks use PATH_PATTERN below them


def cell_files(name, cells=None):
    """`name` (e.g. 'eval.json') in the run directory of every study cell (or of `cells`)."""
    return [f"{c.dir}/{name}" for c in (STUDY if cells is None else cells)]


def lr_rule_input(wildcards):
    """What an lr~auto cell reads when the sweep is on (the fitted learning-rate rule), nothing otherwise."""
    return [LR_RULE.format(model=wildcards.model)] if wildcards.model in SWEPT and wildcards.lr == "auto" else []


def lr_rule_path(wildcards):
    """The learning-rate rule file of a cell's family (read only by lr~auto cells when the sweep is on)."""
    return LR_RULE.format(model=wildcards.model)


def cell_of(wildcards):
    """The planned grid cell a job's wildcards name."""
    return PLANNED[Cell.from_wildcards(wildcards)]


def train_runtime(wildcards, attempt):
    """Minutes for a cell on a cluster GPU: its budget at the configured utilisation, plus slack."""
    rate = config["compute"]["gpu_peak_flops_per_s"] * config["compute"]["gpu_utilisation"]
    return int(10 + 2 * attempt * cell_of(wildcards).budget / rate / 60)


def molecule_shards():
    """Every label shard of the configured molecules."""
    return [f"results/molecules/shard-{i:04d}.h5" for i in range(config["molecules"]["num_shards"])]


def train_config(wildcards):
    """The config a cell's training reads (as params: a change to it reruns the cell, nothing else does)."""
    runtime_free = {k: v for k, v in config["training"].items() if k not in RUNTIME_KEYS}
    if FORCEFIELD:
        ff = config["forcefield"]
        return json.dumps({"seed": config["seed"], "molecules": config["molecules"],
                           "forcefield": {**ff, "lr": {wildcards.model: ff["lr"][wildcards.model]}},
                           "training": {"log_every": runtime_free["log_every"]}}, sort_keys=True)
    return json.dumps({"seed": config["seed"], "tokens": config["tokens"],
                       "assets": {"max_faces": config["assets"]["max_faces"]},
                       "simulation": {k: config["simulation"][k] for k in ("min_objects", "max_objects")},
                       "lr_sweep": {"enabled": config["lr_sweep"]["enabled"]},
                       "training": {**runtime_free, "lr": {wildcards.model: config["training"]["lr"][wildcards.model]}}},
                      sort_keys=True)


def train_data_arguments(wildcards):
    """Where a cell's training data (and, when the sweep is on, its learning-rate rule) are."""
    if FORCEFIELD:
        return "--molecules results/molecules"
    return f"--tokens results/tokens --lr-rule {lr_rule_path(wildcards)}"
