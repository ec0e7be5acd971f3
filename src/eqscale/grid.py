"""The study grid: which cells to train, generated from the config in one place.

A cell is one training run: (model, size, steps, data fraction, augmentation, seed). Two grids
make the study:

* the scaling grid: compute budgets x model sizes per model; each cell's number of steps is its
  budget divided by the model's analytic FLOPs per optimizer step, so every budget is an IsoFLOP
  line;
* the data-efficiency grid: data fractions x arms (transformer, transformer + augmentation, GATr)
  at one fixed budget.

Both are crossed with the seeds; a cell that both grids (or a repeated config entry) produce runs
once. `cell_dir` is the only place that turns a cell into a path; the Snakemake rules and the
analysis read paths through it and `parse_cell_dir`.

FLOPs accounting for the grid assumes every scene is padded to the expected largest scene of its
batch, each object with the full face budget (`nominal_faces_per_scene`): the loader pads a batch
to its largest scene and the models spend FLOPs on the padding, so the mean scene would undercount
a step by ~1.7x (attention is quadratic in the padded length). Every run counts its actual FLOPs
from its real batches into run.json, and the fits use those; on the default config they land
within ~10% of the budget.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from eqscale.config import ConfigError

MODELS = ("gatr", "transformer")
CELL_DIR_RE = re.compile(
    r"(?:^|/)runs/(?P<model>[a-z]+)/size~(?P<size>[A-Za-z0-9_.-]+)/steps~(?P<steps>\d+)/"
    r"data~(?P<data_fraction>[0-9.e-]+)/aug~(?P<augment>[01])/seed~(?P<seed>\d+)/?$"
)


class GridError(ConfigError):
    """The grid in the config cannot be built; the message names the cell or the key."""


@dataclass(frozen=True)
class Cell:
    """One training run of the study."""

    model: str
    size: str
    steps: int
    data_fraction: float
    augment: bool
    seed: int
    budget: float | None = field(default=None, compare=False, hash=False)

    @property
    def dir(self) -> str:
        """The cell's run directory (relative to the working directory)."""
        return cell_dir(self.model, self.size, self.steps, self.data_fraction, self.augment, self.seed)

    @property
    def arm(self) -> str:
        """Model plus '+aug' when trained with augmentation (the analysis groups by arm)."""
        return self.model + ("+aug" if self.augment else "")


def format_fraction(fraction: float) -> str:
    """Shortest exact-enough text for a data fraction ('1', '0.25')."""
    return f"{fraction:.6g}"


def cell_dir(model: str, size: str, steps: int, data_fraction: float, augment: bool, seed: int) -> str:
    """results/runs/<model>/size~<size>/steps~<steps>/data~<fraction>/aug~<0|1>/seed~<seed>."""
    return (f"results/runs/{model}/size~{size}/steps~{int(steps)}/data~{format_fraction(data_fraction)}/"
            f"aug~{int(bool(augment))}/seed~{int(seed)}")


def parse_cell_dir(path: str) -> dict:
    """Inverse of `cell_dir` (accepts any prefix before `runs/`)."""
    match = CELL_DIR_RE.search(str(path).rstrip("/"))
    if not match:
        raise ValueError(f"{path!r} is not a cell directory (expected .../runs/<model>/size~S/steps~N/data~F/aug~A/seed~K)")
    d = match.groupdict()
    return {"model": d["model"], "size": d["size"], "steps": int(d["steps"]),
            "data_fraction": float(d["data_fraction"]), "augment": d["augment"] == "1", "seed": int(d["seed"])}


def expected_max_objects(min_objects: int, max_objects: int, batch_size: int) -> float:
    """E[largest object count among `batch_size` scenes], counts uniform on [min_objects, max_objects]."""
    n = max_objects - min_objects + 1
    # E[max] = max_objects - sum_k P(max <= k) over k below max_objects
    return max_objects - sum((j / n) ** batch_size for j in range(1, n))


def nominal_faces_per_scene(config: dict) -> int:
    """Face tokens per (padded) scene the grid's FLOPs accounting assumes: expected batch max x face budget."""
    sim = config["simulation"]
    objects = expected_max_objects(sim["min_objects"], sim["max_objects"], config["training"]["batch_size"])
    return max(1, round(objects * config["assets"]["max_faces"]))


def steps_for_budget(budget: float, flops_per_step: float) -> int:
    """Optimizer steps that spend `budget` FLOPs (rounded down)."""
    return int(budget // flops_per_step)


def build_grid(config: dict, flops_per_step=None) -> list[Cell]:
    """Every cell of the study, deduplicated, in a stable order; GridError names a bad cell."""
    if flops_per_step is None:
        from eqscale.models.registry import flops_per_step
    grid = config["grid"]
    batch_size = config["training"]["batch_size"]
    faces = nominal_faces_per_scene(config)
    cells: dict[Cell, Cell] = {}

    def add(cell: Cell) -> None:
        cells.setdefault(cell, cell)

    def steps_of(model: str, size: str, budget: float, where: str) -> int:
        try:
            per_step = flops_per_step(model, size, batch_size, faces)
        except KeyError as err:
            raise GridError(f"{where}: {err.args[0] if err.args else err}") from None
        steps = steps_for_budget(budget, per_step)
        if steps < 1:
            raise GridError(f"{where}: budget {budget:.3g} FLOPs is less than one optimizer step of {model} size "
                            f"{size} ({per_step:.3g} FLOPs at batch {batch_size} x {faces} faces); raise the budget")
        return steps

    for model, spec in grid["scaling"].items():
        for budget in grid["scaling_budgets"]:
            kept = 0
            for size in spec["sizes"]:
                where = f"grid cell {model}/size~{size} at budget {budget:.3g}"
                steps = steps_of(model, size, budget, where)
                if steps < grid["min_steps"]:
                    continue  # too large a model for this budget: not a useful point on its IsoFLOP line
                kept += 1
                for seed in grid["seeds"]:
                    add(Cell(model, size, steps, 1.0, spec["augment"], seed, budget))
            if kept == 0:
                raise GridError(f"grid.scaling_budgets: budget {budget:.3g} gives every {model} size fewer than "
                                f"grid.min_steps={grid['min_steps']} steps; raise the budget or add smaller sizes")
    data = grid["data_efficiency"]
    for arm in data["arms"]:
        model, augment = arm.split("+")[0], arm.endswith("+aug")
        size = data["sizes"][model]
        for fraction in data["fractions"]:
            where = f"grid cell {arm}/size~{size}/data~{format_fraction(fraction)}"
            if not 0 < fraction <= 1:
                raise GridError(f"{where}: data fraction {fraction} is outside (0, 1]")
            steps = steps_of(model, size, data["budget"], where)
            for seed in grid["seeds"]:
                add(Cell(model, size, steps, fraction, augment, seed, data["budget"]))
    return sorted(cells.values(), key=lambda c: (c.model, c.dir))
