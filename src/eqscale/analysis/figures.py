"""The study's figures, declared once: name, title and caption (plots draw them, the report and Snakefile list them).

Imports nothing heavy (no matplotlib, no pandas), so the Snakefile can import it:

    from eqscale.analysis.figures import FIGURE_NAMES
    expand("results/figures/{name}.png", name=FIGURE_NAMES)
"""

from __future__ import annotations

from dataclasses import dataclass


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
