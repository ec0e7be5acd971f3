# The study grid as Snakemake sees it: cells, their paths and per-cell inputs.

# ---- the study grid (src/eqscale/grid.py builds it; invalid cells stop the run here)
from eqscale.grid import GridError, build_grid, cell_dir  # noqa: E402

try:
    CELLS = build_grid(config)
except GridError as err:
    raise WorkflowError(str(err)) from None
CELL_BY_DIR = {c.dir: c for c in CELLS}

# a cell's path below results/runs, results/logs/<rule> and results/benchmarks/<rule>
CELL_SUBPATH = "{model}/size~{size}/steps~{steps}/data~{data}/aug~{aug}/seed~{seed}"
CELL_PATTERN = f"results/runs/{CELL_SUBPATH}"
CELL_CONSTRAINTS = dict(model="gatr|transformer", size=r"[A-Za-z0-9_.-]+", steps=r"\d+",
                        data=r"[0-9.e-]+", aug="[01]", seed=r"\d+")


def cell_files(name):
    """`name` (e.g. 'eval.json') in every cell's run directory."""
    return [f"{c.dir}/{name}" for c in CELLS]


def cell_of(wildcards):
    """The grid cell a job's wildcards name."""
    return CELL_BY_DIR[CELL_PATTERN.format(**wildcards)]


def model_code(wildcards):
    """Source files a cell's training depends on: the shared stack plus its own model family.

    Editing GATr's code (the algebra, the equivariant layers, gatr*.py) reruns only GATr cells;
    editing transformer.py only transformer cells; the training loop, the loader and the shared
    model modules (rigidity, FLOP counting, registry) rerun both.
    """
    package = REPO / "src" / "eqscale"
    shared = [p for p in package.glob("training/*.py") if p.name != "evaluate.py"]
    shared += list(package.glob("data/*.py")) + [package / "symmetry.py", package / "grid.py"]
    models = sorted(package.glob("models/*.py"))
    gatr_only = [p for p in models if p.name.startswith(("gatr", "layers_equivariant"))]
    gatr_only += sorted(package.glob("algebra/*.py"))
    transformer_only = [p for p in models if p.name.startswith("transformer")]
    shared += [p for p in models if p not in gatr_only and p not in transformer_only]
    own = gatr_only if wildcards.model == "gatr" else transformer_only
    return sorted(str(p) for p in shared + own)


def train_runtime(wildcards, attempt):
    """Minutes for a cell on a cluster GPU: analytic FLOPs at the configured utilisation, plus slack."""
    from eqscale.models.registry import flops_per_step
    from eqscale.grid import nominal_faces_per_scene

    cell = cell_of(wildcards)
    flops = int(wildcards.steps) * flops_per_step(cell.model, cell.size, config["training"]["batch_size"],
                                                  nominal_faces_per_scene(config))
    rate = config["compute"]["gpu_peak_flops_per_s"] * config["compute"]["gpu_utilisation"]
    return int(10 + 2 * attempt * flops / rate / 60)
