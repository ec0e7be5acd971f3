"""The study grid: which cells to train, generated from the config in one place.

Two designs make the study, both crossed with the seeds:

* the scaling grid: compute budgets x model sizes per model (one ladder for every budget, or a ladder
  per budget centred on its optimum); each cell trains for its budget divided by the FLOPs of one
  optimizer step of its size, so every budget is an IsoFLOP line;
* the data-efficiency grid: data fractions x arms (transformer, transformer + augmentation, GATr)
  at one fixed budget (rigid study).

The force-field study (config `study: forcefield`) plans only the scaling grid, with each family's
`symmetry_arms` (mpnn + augmentation, mpnn + symmetry loss) as further cells beside every plain one
on the same ladders. It trains one epoch, so a budget fixes the data: the plan checks the training
split the config labels holds the configurations each cell needs (eqscale.forcefield.plan).

A cell that both designs (or a repeated config entry) produce runs once and records both designs.
Cells and their paths live in `eqscale.cells`; this module decides which cells exist and plans
their steps.

FLOPs. Batches are packed (real faces only), so a step's FLOPs follow from the batch's structure
(`eqscale.models.counts.BatchStructure`). The plan uses the expected structure of a batch of the
configured scenes (objects uniform in [min, max], shapes uniform, each at its nominal face count):
that decides which sizes fit a budget and estimates runtimes. The training job then chooses its
steps from the exact structures of the batches it will see, so its recorded FLOPs land on the
budget; run.json records them. Nothing here imports torch: building the DAG stays fast.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from eqscale.cells import FORCEFIELD, Cell, CellError, format_budget, format_fraction, parse_arm, study_of
from eqscale.config import ConfigError
from eqscale.models.counts import BatchStructure, expected_structure, step_flops
from eqscale.shape_catalog import nominal_faces

SCALING, DATA_EFFICIENCY, LR_SWEEP = "scaling", "data_efficiency", "lr_sweep"
MAX_STEPS = 10**9  # no cell of any study trains this long; above it a budget is a typo

FlopsPerStep = Callable[[str, str, BatchStructure], float]  # (model, size, batch structure) -> FLOPs of a step


class GridError(ConfigError):
    """The grid in the config cannot be built; the message names the cell or the key."""


def nominal_structure(config: dict) -> BatchStructure:
    """The expected structure of a training batch of the configured scenes (what the plan charges a step)."""
    sim, assets = config["simulation"], config["assets"]
    faces = [nominal_faces(shape, assets["max_faces"]) for shape in assets["shapes"]]
    return expected_structure(faces, sim["min_objects"], sim["max_objects"], config["training"]["batch_size"])


def steps_for_budget(budget: float, flops_per_step: float) -> int:
    """Optimizer steps that spend `budget` FLOPs (rounded down)."""
    return int(budget // flops_per_step)


def _analytic_flops(model: str, size: str, structure: BatchStructure) -> float:
    return float(step_flops(model, size, structure)["total"])


def nominal_flops_per_step(model: str, size: str, config: dict, flops_per_step: FlopsPerStep | None = None) -> float:
    """Analytic FLOPs of one optimizer step of (model, size) on the study's expected batch; KeyError for a bad size."""
    return float((flops_per_step or _analytic_flops)(model, size, nominal_structure(config)))


def _forcefield_flops_per_step(cell: Cell, config: dict) -> float:
    """Planned FLOPs of a force-field step; GridError when one epoch of the training split cannot spend the budget."""
    from eqscale.forcefield import plan

    per_config = plan.flops_per_configuration(cell.model, cell.size, config, cell.symmetry_loss)
    pool = plan.training_pool(config)
    needed = cell.budget / per_config
    if needed > plan.HEADROOM * pool.configurations:
        raise GridError(
            f"grid cell {cell.id}: one epoch (paper 2 trains each configuration once) of {cell.model} size {cell.size} "
            f"needs {needed:,.0f} training configurations for {cell.budget:.3g} FLOPs, the config labels about "
            f"{pool.configurations:,} ({pool.molecules} training molecules; {plan.HEADROOM:.0%} usable, as real batches "
            "differ from the plan's reference); label more (molecules.num_molecules, conformers, temperatures, "
            "configurations_per_run) or lower the budget")
    return per_config * config["forcefield"]["batch_size"]


def plan_cell(cell: Cell, config: dict, flops_per_step: FlopsPerStep | None = None, *, allow_short: bool = False
              ) -> Cell:
    """The cell with its planned FLOPs per step and steps (budget // FLOPs per step); GridError if below one step.

    allow_short: return a cell of 0 steps instead (the scaling grid leaves such cells off their line).
    """
    where = f"grid cell {cell.id}"
    try:
        if study_of(cell.model) == FORCEFIELD:
            per_step = _forcefield_flops_per_step(cell, config)
        else:
            per_step = nominal_flops_per_step(cell.model, cell.size, config, flops_per_step)
    except KeyError as err:
        raise GridError(f"{where}: {err.args[0] if err.args else err}") from None
    steps = steps_for_budget(cell.budget, per_step)
    if steps > MAX_STEPS:
        raise GridError(f"{where}: budget {cell.budget:.3g} FLOPs gives {steps:.3g} optimizer steps of {cell.model} size "
                        f"{cell.size} ({per_step:.3g} FLOPs each), more than {MAX_STEPS:.0e}; lower the budget")
    if steps < 1 and not allow_short:
        batch = (f"{config['forcefield']['batch_size']} configurations" if study_of(cell.model) == FORCEFIELD
                 else f"{config['training']['batch_size']} scenes")
        raise GridError(f"{where}: budget {cell.budget:.3g} FLOPs is less than one optimizer step of {cell.model} size "
                        f"{cell.size} ({per_step:.3g} FLOPs on an expected batch of {batch}); raise the budget")
    return replace(cell, steps=steps, flops_per_step=per_step)


def _distinct_in_paths(values, fmt, key: str, field: str) -> None:
    """GridError when two different config values would name the same cell directory."""
    seen: dict[str, float] = {}
    for value in values:
        text = fmt(value)
        if text in seen and seen[text] != value:
            raise GridError(f"config key {key}: {seen[text]!r} and {value!r} name the same cell directory "
                            f"({field}~{text}); make them differ within 6 significant digits")
        seen[text] = value


def ladder(grid: dict, model: str, budget: float) -> list[str]:
    """The sizes of `model` on the IsoFLOP line of `budget`: its own ladder if it has one, else the model's sizes."""
    spec = grid["scaling"][model]
    for entry in spec["ladders"]:
        if entry["budget"] == budget:
            return list(entry["sizes"])
    return list(spec["sizes"])


def _check_ladders(grid: dict) -> None:
    """GridError for a ladder whose budget is not a scaling budget, or a budget with two ladders."""
    budgets = set(grid["scaling_budgets"])
    for model, spec in grid["scaling"].items():
        seen: set[float] = set()
        for i, entry in enumerate(spec["ladders"]):
            key = f"grid.scaling.{model}.ladders[{i}].budget"
            if entry["budget"] not in budgets:
                raise GridError(f"config key {key}: {entry['budget']:.3g} is not one of grid.scaling_budgets "
                                f"({', '.join(f'{b:.3g}' for b in grid['scaling_budgets'])})")
            if entry["budget"] in seen:
                raise GridError(f"config key {key}: budget {entry['budget']:.3g} has two ladders")
            seen.add(entry["budget"])


def build_grid(config: dict, flops_per_step: FlopsPerStep | None = None) -> list[Cell]:
    """Every cell of the study, planned and deduplicated, in a stable order; GridError names a bad cell."""
    grid = config["grid"]
    _distinct_in_paths(grid["scaling_budgets"], format_budget, "grid.scaling_budgets", "budget")
    _distinct_in_paths(grid["data_efficiency"]["fractions"], format_fraction, "grid.data_efficiency.fractions", "data")
    unknown = sorted(set(grid["replicates"]["budgets"]) - set(grid["scaling_budgets"]))
    if unknown:
        raise GridError(f"config key grid.replicates.budgets: [{', '.join(f'{b:.3g}' for b in unknown)}] are not "
                        f"scaling budgets (grid.scaling_budgets: {', '.join(f'{b:.3g}' for b in grid['scaling_budgets'])})")
    _check_ladders(grid)
    cells: dict[Cell, Cell] = {}

    def add(cell: Cell, design: str) -> None:
        known = cells.get(cell)
        cells[cell] = replace(known if known is not None else cell,
                              designs=(known.designs if known is not None else frozenset()) | {design})

    def make(where: str, allow_short: bool = False, **fields) -> Cell:
        try:
            return plan_cell(Cell(**fields), config, flops_per_step, allow_short=allow_short)
        except CellError as err:
            raise GridError(f"{where}: {err}") from None

    replicated = set(grid["replicates"]["budgets"])
    for model, spec in grid["scaling"].items():
        # the plain arm, then each symmetry arm on the same ladders (force-field mpnn: augmentation, symmetry loss)
        arms = [{"augment": spec["augment"]}] + [{"augment": arm == "augment", "symmetry_loss": arm == "symmetry_loss"}
                                                 for arm in spec["symmetry_arms"]]
        for budget in grid["scaling_budgets"]:
            seeds = list(grid["seeds"]) + [s for s in grid["replicates"]["seeds"] if budget in replicated]
            kept = 0
            for size in ladder(grid, model, budget):
                where = f"grid cell {model}/size~{size} at budget {budget:.3g}"
                for arm in arms:
                    planned = [make(where, allow_short=True, model=model, size=size, budget=budget, data_fraction=1.0,
                                    seed=seed, **arm) for seed in dict.fromkeys(seeds)]
                    if planned[0].steps < grid["min_steps"]:
                        continue  # too large a model for this budget: not a useful point on its IsoFLOP line
                    kept += 1
                    for cell in planned:
                        add(cell, SCALING)
            if kept == 0:
                raise GridError(f"grid.scaling_budgets: budget {budget:.3g} gives every {model} size fewer than "
                                f"grid.min_steps={grid['min_steps']} steps; raise the budget or add smaller sizes")
    if config["study"] == FORCEFIELD:
        # one epoch: data seen follows from compute, so there is no data-fraction design, and rates follow
        # forcefield.lr with its width rule (no sweep)
        return sorted(cells.values(), key=lambda c: (c.model, c.dir))
    data = grid["data_efficiency"]
    for arm in data["arms"]:
        model, augment = parse_arm(arm)
        size = data["sizes"][model]
        for fraction in data["fractions"]:
            where = f"grid cell {arm}/size~{size}/data~{format_fraction(fraction)}"
            for seed in grid["seeds"]:
                add(make(where, model=model, size=size, budget=data["budget"], data_fraction=fraction,
                         augment=augment, seed=seed, converge=data["converge"]), DATA_EFFICIENCY)
    sweep = config["lr_sweep"]
    if sweep["enabled"]:
        for model, sizes in sweep["sizes"].items():
            augment = grid["scaling"][model]["augment"] if model in grid["scaling"] else False
            for size in sizes:
                for factor in sweep["factors"]:
                    lr = factor * config["training"]["lr"][model]
                    where = f"learning-rate sweep cell {model}/size~{size}/lr~{lr:.6g}"
                    add(make(where, model=model, size=size, budget=sweep["budget"], data_fraction=1.0,
                             augment=augment, seed=sweep["seed"], lr=lr), LR_SWEEP)
    return sorted(cells.values(), key=lambda c: (c.model, c.dir))


def sweep_cells(cells: list[Cell]) -> list[Cell]:
    """The learning-rate sweep's cells of a grid."""
    return [c for c in cells if LR_SWEEP in c.designs]
