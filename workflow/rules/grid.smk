# The study grid as Snakemake sees it: cells, their paths and per-cell inputs (eqscale.cells is their one home).

from eqscale.cells import PATH_PATTERN, RUNS_DIR, WILDCARD_CONSTRAINTS, Cell  # noqa: E402
from eqscale.grid import sweep_cells  # noqa: E402

# CELLS: the planned grid, built by check_study in common.smk
PLANNED = {c: c for c in CELLS}  # a cell parsed from wildcards -> the same cell with the grid's plan
SWEEP = sweep_cells(CELLS)  # the learning-rate sweep's cells (their rule sets the rate of every lr~auto cell)
STUDY = [c for c in CELLS if c not in SWEEP]  # the cells the analysis reads
LR_RULE = "results/lr/rule.json"

CELL_PATTERN = f"{RUNS_DIR}/{PATH_PATTERN}"  # a cell's directory; logs and benchmarks use PATH_PATTERN below them


def cell_files(name, cells=None):
    """`name` (e.g. 'eval.json') in the run directory of every study cell (or of `cells`)."""
    return [f"{c.dir}/{name}" for c in (STUDY if cells is None else cells)]


def lr_rule_input(wildcards):
    """The learning-rate rule a cell reads: for lr~auto cells when the sweep is on, nothing otherwise."""
    return [LR_RULE] if SWEEP and wildcards.lr == "auto" else []


def cell_of(wildcards):
    """The planned grid cell a job's wildcards name."""
    return PLANNED[Cell.from_wildcards(wildcards)]


def train_runtime(wildcards, attempt):
    """Minutes for a cell on a cluster GPU: its budget at the configured utilisation, plus slack."""
    rate = config["compute"]["gpu_peak_flops_per_s"] * config["compute"]["gpu_utilisation"]
    return int(10 + 2 * attempt * cell_of(wildcards).budget / rate / 60)
