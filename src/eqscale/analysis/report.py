"""`eqscale report`: results/report.md -- each finding of the paper with the rule applied, our numbers, the verdict.

The verdicts come from results/fits/findings.json (eqscale fit judges them; this stage writes them
down): for every check, the rule, the estimate and its interval, the margin, the share of resamples
that refitted, the seed-to-seed spread and the verdict with its reason. Around them: the study's
cells, headline losses with the constant-velocity ratio, where each family's compute goes, whether
the IsoFLOP minima are bracketed, the data-efficiency points with their epochs, the evaluation error
of every cell, and the learning-rate stage. Reads the fit files through store.read_fits; never fits.

This module writes the rigid study's report; findings.json of the force-field study (or --study
forcefield) gets report_forcefield.py's. The parts both share live in report_common.py.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from eqscale.analysis.errors import FitError
from eqscale.analysis.figures import FIGURE_NAMES
from eqscale.analysis.report_common import (
    allocation_lines,
    check_row,
    finding_lines,
    figure_links,
    fmt_estimate,
    fmt_number,
    fmt_share,
    frontier_lines,
    geo_mean,
    label,
    loss_with_se,
    lr_lines,
    noise_lines,
    skipped_lines,
    study_lines,
    table,
)
from eqscale.analysis.report_forcefield import render_forcefield_report
from eqscale.analysis.results import DataEfficiencyArm, FamilyCompute, Fits, FrontierArm
from eqscale.analysis.store import FitsFileError, read_fits
from eqscale.analysis.studies import STUDIES, study_key
from eqscale.analysis.table import StudyTable, read_table
from eqscale.analysis.verdicts import fmt
from eqscale.cells import FORCEFIELD, RIGID
from eqscale.io_utils import atomic_write_text

# the shared helpers, importable from here as before
__all__ = ["check_row", "fmt_estimate", "fmt_number", "lr_lines", "main", "render_report"]


# ---------------------------------------------------------------- the study


def headline_lines(t: StudyTable, fits: Fits) -> list[str]:
    """Per arm the best cell at its largest budget: test MSE +- SE and the constant-velocity ratios."""
    rows = []
    frontier = fits.frontier.arms if fits.frontier else {}
    for arm in t.arms():
        res = frontier.get(arm)
        if not isinstance(res, FrontierArm):
            continue
        points = [b for b in res.budgets if b.cells]
        if not points:
            continue
        top = points[-1]
        cells = t.rows[t.rows["cell"].isin(top.cells)]
        rows.append([label(arm), fmt(top.budget), top.size, loss_with_se(cells), geo_mean(cells, "cv_ratio"),
                     geo_mean(cells, "cv_ratio_contact"), geo_mean(cells, "cv_ratio_free")])
    if not rows:
        return ["No arm has a usable cell on its scaling grid."]
    return ["The best configuration at each arm's largest budget (seed means). The constant-velocity ratio is test MSE "
            "over the MSE of extrapolating every vertex at constant velocity on the same samples: below 1 the model "
            "beats the trivial prediction; split by whether objects touch in the sample's frames.", "",
            *table(["Arm", "Budget [FLOPs]", "Size", "Test MSE [m^2] +- SE", "CV ratio", "CV ratio, contact",
                    "CV ratio, free"], rows)]


# ---------------------------------------------------------------- compute and data


def compute_lines(fits: Fits) -> list[str]:
    """Where each family's FLOPs go, and F(N) per size: why C is not 6*N*S."""
    if fits.compute is None:
        return ["No compute file."]
    lines = ["Compute C of a cell is its steps times the FLOPs of one step, F(N), counted analytically on the batches "
             "it runs. Attention over the (padded) scene grows with the tokens, not the parameters, so F grows slower "
             "than N and F/N varies across sizes: C is not 6*N*tokens with one constant.", ""]
    for family, rec in fits.compute.families.items():
        if not isinstance(rec, FamilyCompute):
            lines += [f"- {family}: {rec.reason}"]
            continue
        lines += [f"**{family}**: F = {fmt(rec.power_k)} * N^{rec.power_p:.2f} fitted over the sizes (used: "
                  f"{rec.method}); source: {rec.source}. Of all its recorded FLOPs: attention "
                  f"{fmt_share(rec.attention_share)}, padding {fmt_share(rec.padding_share)}, dense layers "
                  f"{fmt_share(_dense(rec.attention_share, rec.padding_share))}.", ""]
        lines += table(["Size", "Parameters N", "FLOPs per step F", "F / N", "Attention", "Padding", "Dense", "Cells"],
                       [[s.size, f"{s.params:,}", fmt(s.flops_per_step), fmt(s.flops_per_param_step),
                         fmt_share(s.attention_share), fmt_share(s.padding_share),
                         fmt_share(_dense(s.attention_share, s.padding_share)), s.n_cells] for s in rec.sizes])
        lines.append("")
    return lines


def _dense(attention: float | None, padding: float | None) -> float | None:
    if attention is None:
        return None
    return 1.0 - attention - (padding or 0.0)


def data_lines(fits: Fits) -> list[str]:
    """The converged data-efficiency points: loss, CV ratio, epochs reached, early stopping."""
    if fits.data_efficiency is None:
        return ["No data-efficiency file."]
    rows = []
    for arm, res in fits.data_efficiency.arms.items():
        if not isinstance(res, DataEfficiencyArm):
            rows.append([label(arm), "-", "-", "-", "-", "-", "-", res.reason])
            continue
        for p in res.points:
            rows.append([label(arm), fmt(p.D), fmt(p.test_mse), fmt(p.cv_ratio), fmt(p.epochs), fmt(p.best_step),
                         fmt_share(p.stopped_early), p.n_seeds])
    lines = ["Each data fraction is trained until the validation loss stops improving (early stopping); the loss is "
             "the converged one, and the epochs are those it took.", ""]
    return lines + table(["Arm", "Training trajectories D", "Test MSE", "CV ratio", "Epochs", "Best step",
                          "Stopped early", "Seeds"], rows)


# ---------------------------------------------------------------- cells


def cell_lines(t: StudyTable, target: float | None) -> list[str]:
    """Every cell's test MSE with its standard error, relative error against the target, CV ratios, status."""
    rows = []
    for r in t.rows.itertuples(index=False):
        mse, se = float(r.test_mse), float(getattr(r, "test_mse_se", math.nan))
        rel = se / mse if mse > 0 and math.isfinite(se) else math.nan
        flag = "" if target is None or not math.isfinite(rel) else (" (above target)" if rel > target else "")
        status = r.status if r.status == "ok" else f"{r.status}: {r.status_reason}"
        rows.append([r.cell, fmt(mse), fmt(se), f"{rel:.1%}{flag}" if math.isfinite(rel) else "-",
                     fmt(float(getattr(r, "cv_ratio", math.nan))), fmt(float(getattr(r, "cv_ratio_contact", math.nan))),
                     fmt(float(getattr(r, "cv_ratio_free", math.nan))), fmt(float(getattr(r, "epochs", math.nan))),
                     status])
    return table(["Cell", "Test MSE [m^2]", "SE", "Relative SE", "CV ratio", "contact", "free", "Epochs", "Status"],
                 rows)


# ---------------------------------------------------------------- the document


def render_report(summary: pd.DataFrame, fits: Fits, figures_dir: Path, out: Path,
                  lr_rules: Sequence[Path] = (), study: str | None = None) -> str:
    """The report's markdown text: the study's (`study`, else the one findings.json names)."""
    if study is None:
        study = study_key(fits.findings.study) if fits.findings is not None else RIGID
    if study == FORCEFIELD:
        return render_forcefield_report(summary, fits, figures_dir, out, lr_rules)
    return render_rigid_report(summary, fits, figures_dir, out, lr_rules)


def render_rigid_report(summary: pd.DataFrame, fits: Fits, figures_dir: Path, out: Path,
                        lr_rules: Sequence[Path] = ()) -> str:
    """The rigid study's report."""
    doc = fits.findings
    settings = doc.settings if doc is not None else None
    t = read_table(summary, diverged_cv_ratio=settings.diverged_cv_ratio if settings else 1.0)
    lines = ["# eqscale: does equivariance matter at scale?", "",
             f"Our measurements against the findings of {doc.study if doc else 'the paper'}.", "",
             "## The study", ""]
    lines += study_lines(t)
    if settings is not None:
        lines += [f"- Intervals: {settings.confidence:.0%}, {settings.bootstrap} bootstrap resamples (seed "
                  f"{settings.seed}): {fits.findings.bootstrap.method if fits.findings.bootstrap else ''}",
                  "- Verdicts: support needs an interval wholly on the claimed side; equivalence claims need the "
                  f"interval inside a margin of {settings.equivalence_margin:g}; a verdict from resamples needs at "
                  f"least {settings.min_refit_share:.0%} of them refitted; a diverged cell (NaN, or test MSE above "
                  f"{settings.diverged_cv_ratio:g} x the constant-velocity MSE) counts as a loss for its model at its "
                  "budget."]
    lines += ["", "## Headline numbers", ""] + headline_lines(t, fits)
    findings = doc.findings if doc is not None else []
    lines += ["", "## Verdicts", ""]
    lines += table(["Finding", "Verdict", "Why"], [[f"{f.number}. {f.claim}", f.verdict, f.reason] for f in findings]) \
        if findings else ["No findings file: run eqscale fit."]
    lines.append("")
    for f in findings:
        lines += finding_lines(f, figures_dir, out)
    lines += ["## Where the compute goes", ""] + compute_lines(fits)
    lines += ["", "## Compute-optimal allocation", ""] + allocation_lines(fits)
    lines += ["", "## The compute frontier", ""] + frontier_lines(fits)
    lines += ["", "## Data efficiency (converged)", ""] + data_lines(fits)
    lines += ["", "## Noise and evaluation error", ""] + noise_lines(fits)
    lines += ["", "## Learning-rate stage", ""] + lr_lines(lr_rules)
    lines += ["", "## Figures", ""]
    for name in FIGURE_NAMES:
        lines += figure_links(name, figures_dir, out)
    skipped = skipped_lines(fits)
    if skipped:
        lines += ["", "## Fits that could not be done", ""] + skipped
    lines += ["", "## Every cell", ""] + cell_lines(t, settings.target_rel_se if settings else None)
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and write the report."""
    parser = argparse.ArgumentParser(prog="eqscale report", description=__doc__.splitlines()[0])
    parser.add_argument("--summary", type=Path, default=Path("results/summary.csv"))
    parser.add_argument("--fits-dir", type=Path, default=Path("results/fits"))
    parser.add_argument("--figures-dir", type=Path, default=Path("results/figures"))
    parser.add_argument("--lr-rules", type=Path, nargs="*", default=[],
                        help="each family's learning-rate rule (results/lr/<model>.json); 'not run' without them")
    parser.add_argument("--out", type=Path, default=Path("results/report.md"))
    parser.add_argument("--study", choices=sorted(STUDIES), default=None,
                        help="whose report to write (default: the study findings.json names; rigid without it)")
    args = parser.parse_args(argv)
    try:
        summary = pd.read_csv(args.summary)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        print(f"eqscale report: error: cannot read {args.summary}: {err}", file=sys.stderr)
        return 1
    try:
        fits = read_fits(args.fits_dir)
        text = render_report(summary, fits, args.figures_dir, args.out, args.lr_rules, args.study)
    except (FitsFileError, FitError) as err:
        print(f"eqscale report: error: {err}", file=sys.stderr)
        return 1
    atomic_write_text(args.out, text)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
