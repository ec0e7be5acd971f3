"""Each study's figures, declared once: name, title and caption (plots draw them, the report and Snakefile list them).

Imports nothing heavy (no matplotlib, no pandas), so the Snakefile can import it:

    from eqscale.analysis.figures import figure_names
    expand("results/figures/{name}.png", name=figure_names(config["study"]))

FIGURES / FIGURE_NAMES / BY_NAME are the rigid study's; `figures(study)` and `figure_names(study)`
give any study's (a name may recur across studies with its own caption: one workflow runs one study).
"""

from __future__ import annotations

from dataclasses import dataclass

from eqscale.cells import FORCEFIELD, RIGID


@dataclass(frozen=True)
class FigureSpec:
    """One figure: its file stem (results/figures/<name>.png and .pdf), its title and a caption."""

    name: str
    title: str
    caption: str


FIGURES: tuple[FigureSpec, ...] = (
    FigureSpec("loss_vs_compute", "Test loss vs compute (paper's Figure 1)",
               "Every cell's test loss (vertex MSE, m^2) against its training FLOPs; each arm's frontier L*(C) "
               "from the joint law with its bootstrap band, the best configuration per budget, and the envelope "
               "fit as a dashed cross-check; diverged cells as crosses on the top edge."),
    FigureSpec("isoflop", "IsoFLOP curves",
               "Test loss against model size on each budget line, with the parabolas fitted around each "
               "budget's best size and their minima (dotted: minimum not bracketed by the sampled sizes)."),
    FigureSpec("optimal_allocation", "Compute-optimal N*(C) and S*(C)",
               "The compute-optimal model size and training steps against compute along each family's real "
               "IsoFLOP curves: joint-law curves with bands and the IsoFLOP minima."),
    FigureSpec("data_efficiency", "Data efficiency (converged)",
               "Converged test loss (trained until the validation loss stops improving) against the number of "
               "training trajectories for the transformer, the transformer with augmentation and GATr, with "
               "the epochs each point reached."),
    FigureSpec("training_curves", "Training curves",
               "Training loss against optimizer step of every cell: a running median, the raw curve faint."),
)
FIGURE_NAMES: tuple[str, ...] = tuple(f.name for f in FIGURES)
BY_NAME: dict[str, FigureSpec] = {f.name: f for f in FIGURES}

FORCEFIELD_FIGURES: tuple[FigureSpec, ...] = (
    FigureSpec("loss_vs_compute", "Test loss vs compute, per family",
               "Every cell's test loss (per-atom energy error + per-atom force L2 error, eV) against its training "
               "FLOPs; each arm's frontier L*(C) from the joint law with its bootstrap band and gamma_C, the best "
               "configuration per budget, and the envelope fit as a dashed cross-check; diverged cells as crosses "
               "on the top edge."),
    FigureSpec("staircase", "gamma_C along the symmetry staircase: ours vs paper 2",
               "Left: the compute exponent gamma_C of every arm (joint law, with its bootstrap interval; hollow: "
               "the envelope fit's cross-check) beside Ngo & Ravanbakhsh 2025's value for the corresponding model. "
               "Right: the compute-optimal exponents a (N* ~ C^a) and b (D* ~ C^b) with their intervals, the "
               "paper's 0.5 and the margin the verdict uses."),
    FigureSpec("optimal_allocation", "Compute-optimal N*(C) and D*(C)",
               "The compute-optimal model size and training steps (one epoch: training data = steps x batch) "
               "against compute along each family's real IsoFLOP curves: joint-law curves with bands and the "
               "IsoFLOP minima."),
    FigureSpec("isoflop", "IsoFLOP curves",
               "Test loss against model size on each budget line, with the parabolas fitted around each "
               "budget's best size and their minima (dotted: minimum not bracketed by the sampled sizes)."),
    FigureSpec("training_curves", "Training curves",
               "Training loss against optimizer step of every cell: a running median, the raw curve faint."),
)
_BY_STUDY: dict[str, tuple[FigureSpec, ...]] = {RIGID: FIGURES, FORCEFIELD: FORCEFIELD_FIGURES}


def figures(study: str) -> tuple[FigureSpec, ...]:
    """The figures of a study ("rigid" or "forcefield", the config key `study`)."""
    if study not in _BY_STUDY:
        raise ValueError(f"unknown study {study!r} (known: {', '.join(_BY_STUDY)})")
    return _BY_STUDY[study]


def figure_names(study: str) -> tuple[str, ...]:
    """The file stems of a study's figures (results/figures/<name>.png and .pdf)."""
    return tuple(f.name for f in figures(study))


def figure_spec(name: str, study: str = RIGID) -> FigureSpec:
    """One figure of a study by name."""
    return {f.name: f for f in figures(study)}[name]
