"""A cell of the study, its arm and its path: the one home every producer and consumer takes them from.

A cell is one training run: (model family, size, how long it trains, data fraction, symmetry arm,
learning rate, seed). Its run directory is `results/runs/<cell.id>`, where

    cell.id = <model>/size~<size>/<stop>~<budget>/data~<fraction>/aug~<0|1|sym>/lr~<lr>/seed~<seed>

* aug: 0 plain, 1 trained with data augmentation, sym: trained with the symmetry loss (the
  force-field study's `mpnn+sym` arm);

* stop: `budget` trains for exactly the compute budget (the scaling grid's IsoFLOP lines);
  `converge` trains until the validation loss stops improving, the budget being the cap (the
  data-efficiency arms, whose claim is about "sufficient epochs");
* lr: `auto` is the study's learning rate for the family and size (the fitted rule of the
  learning-rate stage, or the config's); a number is a fixed rate (the learning-rate sweep).

`Cell.dir`, `Cell.from_dir` and `Cell.from_wildcards` are the only places that turn a cell into
text or back; the Snakemake rules take their wildcard pattern and constraints from `PATH_PATTERN`
and `WILDCARD_CONSTRAINTS`. The number of optimizer steps is not part of a cell's identity: it
follows from the budget and the FLOPs of a step (`eqscale.grid`), and run.json records the steps
a run really took.

Arms group cells for the analysis: the model, plus "+aug" when trained with data augmentation or
"+sym" with the symmetry loss. `ARMS` declares each arm once, with how figures draw it. Two
studies share these cells: `STUDY_MODELS` says which families each trains.

This module imports nothing heavy (no torch, no pandas): the Snakefile, the analysis and the
stages all read it.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

RIGID, FORCEFIELD = "rigid", "forcefield"  # the studies (config key `study`)
STUDY_MODELS = {
    RIGID: ("gatr", "transformer"),  # Brehmer et al. 2024
    FORCEFIELD: ("mpnn", "invariant", "egnn", "tensor2", "tensor4"),  # Ngo & Ravanbakhsh 2025, the symmetry staircase
}
MODELS = tuple(m for models in STUDY_MODELS.values() for m in models)
# where each family is defined (tensor2 and tensor4 share one module: editing it reruns both)
MODEL_MODULES = {"gatr": "eqscale.models.gatr", "transformer": "eqscale.models.transformer",
                 "mpnn": "eqscale.forcefield.models.mpnn", "invariant": "eqscale.forcefield.models.invariant",
                 "egnn": "eqscale.forcefield.models.egnn", "tensor2": "eqscale.forcefield.models.tensor",
                 "tensor4": "eqscale.forcefield.models.tensor"}


def study_of(model: str) -> str:
    """The study a model family belongs to."""
    return next(study for study, models in STUDY_MODELS.items() if model in models)


@dataclass(frozen=True)
class Arm:
    """A group of cells the analysis fits separately: a model with or without augmentation."""

    name: str
    model: str
    augment: bool
    label: str  # legend and report label
    colour: str  # colour-blind-safe palette (Okabe-Ito)
    marker: str
    symmetry_loss: bool = False


ARMS: dict[str, Arm] = {a.name: a for a in (
    Arm("gatr", "gatr", False, "GATr", "#0072B2", "o"),
    Arm("transformer", "transformer", False, "Transformer", "#D55E00", "s"),
    Arm("transformer+aug", "transformer", True, "Transformer + aug.", "#CC79A7", "^"),
    Arm("gatr+aug", "gatr", True, "GATr + aug.", "#009E73", "D"),
    # the force-field staircase, in order of symmetry (Okabe-Ito again: the studies never share a figure)
    Arm("mpnn", "mpnn", False, "MPNN", "#D55E00", "s"),
    Arm("mpnn+aug", "mpnn", True, "MPNN + aug.", "#CC79A7", "^"),
    Arm("mpnn+sym", "mpnn", False, "MPNN + sym. loss", "#E69F00", "v", symmetry_loss=True),
    Arm("invariant", "invariant", False, "Invariant (angles)", "#56B4E9", "P"),
    Arm("egnn", "egnn", False, "EGNN", "#009E73", "D"),
    Arm("tensor2", "tensor2", False, "Tensor l<=2", "#0072B2", "o"),
    Arm("tensor4", "tensor4", False, "Tensor l<=4", "#000000", "h"),
)}
REFERENCE_ARM = "gatr"  # rigid study: comparisons are "other arm vs GATr" (each findings module names its own)


def arm_name(model: str, augment: bool, symmetry_loss: bool = False) -> str:
    """The arm of a model trained plain, with augmentation ('transformer+aug') or the symmetry loss ('mpnn+sym')."""
    return model + ("+aug" if augment else "+sym" if symmetry_loss else "")


def parse_arm(name: str) -> tuple[str, bool]:
    """(model, augment) of a plain or '+aug' arm name; ValueError for an unknown model."""
    model, augment = name.removesuffix("+aug"), name.endswith("+aug")
    if model not in MODELS:
        raise ValueError(f"unknown arm {name!r} (models: {', '.join(MODELS)}; add '+aug' for augmentation)")
    return model, augment


def format_fraction(fraction: float) -> str:
    """Shortest exact-enough text for a data fraction ('1', '0.25')."""
    return f"{fraction:.6g}"


def format_budget(budget: float) -> str:
    """A budget in FLOPs as path text: '2e12', '1.5e13' (no '+', exact to 6 significant digits)."""
    return f"{budget:.6g}".replace("e+", "e")


def format_lr(lr: float | None) -> str:
    """A learning rate as path text: 'auto' for the study's own, else 6 significant digits ('0.003')."""
    return "auto" if lr is None else f"{lr:.6g}"


BUDGET, CONVERGE = "budget", "converge"
PATH_PATTERN = "{model}/size~{size}/{stop}~{budget}/data~{data}/aug~{aug}/lr~{lr}/seed~{seed}"
WILDCARD_CONSTRAINTS = {"model": "|".join(MODELS), "size": r"[A-Za-z0-9_.-]+", "stop": f"{BUDGET}|{CONVERGE}",
                        "budget": r"[0-9.e-]+", "data": r"[0-9.e-]+", "aug": "[01]|sym", "lr": r"auto|[0-9.e-]+",
                        "seed": r"\d+"}
RUNS_DIR = "results/runs"
_CELL_RE = re.compile("(?:^|/)" + PATH_PATTERN.format(**{k: f"(?P<{k}>{v})" for k, v in WILDCARD_CONSTRAINTS.items()})
                      + "/?$")


class CellError(ValueError):
    """Text that is not a cell, or a cell with impossible values; the message says which and why."""


@dataclass(frozen=True)
class Cell:
    """One training run of the study: its identity, and what the grid planned for it (not part of identity).

    `steps` and `flops_per_step` are the grid's plan (the nominal FLOPs of one step of this size on the
    study's expected batch, and budget // that); `designs` says which parts of the study asked for
    the cell ("scaling", "data_efficiency"). A cell parsed back from its path has none of them.
    """

    model: str
    size: str
    budget: float  # FLOPs: the compute trained for, or the cap of a converging cell
    data_fraction: float
    augment: bool
    seed: int
    converge: bool = False  # train until the validation loss stops improving (the budget caps it)
    lr: float | None = None  # None: the study's learning rate for this family and size
    symmetry_loss: bool = False  # trained with the symmetry loss (force-field mpnn+sym arm)
    steps: int | None = field(default=None, compare=False, hash=False)
    flops_per_step: float | None = field(default=None, compare=False, hash=False)
    designs: frozenset[str] = field(default=frozenset(), compare=False, hash=False)

    def __post_init__(self) -> None:
        if self.model not in MODELS:
            raise CellError(f"unknown model {self.model!r} (known: {', '.join(MODELS)})")
        if not re.fullmatch(WILDCARD_CONSTRAINTS["size"], self.size):
            raise CellError(f"size {self.size!r} may only hold letters, digits, '_', '.' and '-'")
        if not (isinstance(self.budget, (int, float)) and math.isfinite(self.budget) and self.budget > 0):
            raise CellError(f"budget {self.budget!r} is not a positive finite number of FLOPs")
        if not (math.isfinite(self.data_fraction) and 0 < self.data_fraction <= 1):
            raise CellError(f"data fraction {self.data_fraction!r} is outside (0, 1]")
        if not (isinstance(self.seed, int) and self.seed >= 0):
            raise CellError(f"seed {self.seed!r} is not a non-negative integer")
        if self.augment and self.symmetry_loss:
            raise CellError("a cell trains with augmentation or with the symmetry loss, not both")
        if self.lr is not None and not (math.isfinite(self.lr) and self.lr > 0):
            raise CellError(f"learning rate {self.lr!r} is not a positive finite number")
        # the path rounds to 6 significant digits: keep only what the path can say, so a cell and
        # the cell parsed back from its path are equal
        object.__setattr__(self, "budget", float(format_budget(self.budget)))
        object.__setattr__(self, "data_fraction", float(format_fraction(self.data_fraction)))
        if self.lr is not None:
            object.__setattr__(self, "lr", float(format_lr(self.lr)))

    @property
    def arm(self) -> str:
        """Model plus '+aug' (augmentation) or '+sym' (symmetry loss): the analysis groups by arm."""
        return arm_name(self.model, self.augment, self.symmetry_loss)

    @property
    def wildcards(self) -> dict[str, str]:
        """The Snakemake wildcards of this cell (the fields of `PATH_PATTERN`)."""
        return {"model": self.model, "size": self.size, "stop": CONVERGE if self.converge else BUDGET,
                "budget": format_budget(self.budget), "data": format_fraction(self.data_fraction),
                "aug": "sym" if self.symmetry_loss else str(int(self.augment)), "lr": format_lr(self.lr),
                "seed": str(self.seed)}

    @property
    def id(self) -> str:
        """The cell's path below the runs directory."""
        return PATH_PATTERN.format(**self.wildcards)

    @property
    def dir(self) -> str:
        """The cell's run directory relative to the working directory: results/runs/<id>."""
        return f"{RUNS_DIR}/{self.id}"

    def as_record(self) -> dict:
        """The cell as plain JSON values (what run.json and eval.json record under "cell")."""
        return {"model": self.model, "size": self.size, "budget": self.budget, "data_fraction": self.data_fraction,
                "augment": self.augment, "seed": self.seed, "converge": self.converge, "lr": self.lr,
                "symmetry_loss": self.symmetry_loss}

    @classmethod
    def from_record(cls, record: dict) -> Cell:
        """Inverse of `as_record`; CellError names a missing or bad field."""
        try:
            lr = record["lr"]
            return cls(model=record["model"], size=str(record["size"]), budget=float(record["budget"]),
                       data_fraction=float(record["data_fraction"]), augment=bool(record["augment"]),
                       seed=int(record["seed"]), converge=bool(record["converge"]),
                       lr=None if lr is None else float(lr), symmetry_loss=bool(record.get("symmetry_loss", False)))
        except KeyError as err:
            raise CellError(f"cell record lacks {err.args[0]!r}") from None
        except (TypeError, ValueError) as err:
            raise CellError(f"cell record {record!r} is invalid: {err}") from None

    @classmethod
    def from_wildcards(cls, wildcards) -> Cell:
        """The cell a Snakemake job's wildcards name."""
        return cls(model=wildcards["model"], size=wildcards["size"], budget=float(wildcards["budget"]),
                   data_fraction=float(wildcards["data"]), augment=wildcards["aug"] == "1",
                   seed=int(wildcards["seed"]), converge=wildcards["stop"] == CONVERGE,
                   lr=None if wildcards["lr"] == "auto" else float(wildcards["lr"]),
                   symmetry_loss=wildcards["aug"] == "sym")

    @classmethod
    def from_dir(cls, path) -> Cell:
        """The cell whose run directory is `path` (any prefix before the cell's id)."""
        match = _CELL_RE.search(str(path).replace("\\", "/").rstrip("/"))
        if not match:
            raise CellError(f"{str(path)!r} is not a cell directory (expected .../{PATH_PATTERN})")
        return cls.from_wildcards(match.groupdict())
