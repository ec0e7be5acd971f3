"""report.md of the force-field study (Ngo & Ravanbakhsh 2025): our numbers beside paper 2's, and the verdicts.

Sections: the study; headline losses in eV with the energy and force errors; ours vs paper 2
(gamma_C per family with its interval beside the paper's, a and b); the staircase, step by step
with its verdict; the symmetry arms (augmentation, symmetry loss) against the plain MPNN; every
finding with its checks (report_common); compute, allocation, frontier, noise; every cell. The
rigid study's constant-velocity, data-efficiency and learning-rate sections have no counterpart
here (the learning-rate stage is shown only when rule files are given). Reads fit records; never fits.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from eqscale.analysis.figures import figure_names
from eqscale.analysis.findings_forcefield import (
    ARM_ORDER,
    AUGMENTED,
    PAPER,
    PLAIN,
    STAIRCASE,
    STEPS,
    SYMMETRY_LOSS,
    step_quantity,
)
from eqscale.analysis.report_common import (
    allocation_lines,
    figure_links,
    finding_lines,
    fmt_estimate,
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
from eqscale.analysis.results import BudgetComparison, FamilyCompute, Finding, Fits, FrontierArm, JointArm, LawResult
from eqscale.analysis.table import StudyTable, read_table
from eqscale.analysis.verdicts import INCONCLUSIVE, NOT_SUPPORTED, SUPPORTED, fmt
from eqscale.cells import FORCEFIELD



def ff_study_lines(t: StudyTable, fits: Fits) -> list[str]:
    """Cells, compute, budgets, seeds; what the loss is; how intervals and verdicts are formed."""
    lines = study_lines(t)
    lines.append("- Test loss: per-atom energy error + per-atom force L2 error (eV), on held-out molecules; training "
                 "is a single epoch, so the training data D is steps x batch size and the steps' exponent b is D's")
    doc = fits.findings
    if doc is not None:
        s = doc.settings
        lines += [f"- Intervals: {s.confidence:.0%}, {s.bootstrap} bootstrap resamples (seed {s.seed}): "
                  f"{doc.bootstrap.method if doc.bootstrap else ''}",
                  "- Verdicts: support needs an interval wholly on the claimed side; equivalence claims need the "
                  f"interval inside a margin of {s.equivalence_margin:g}; a verdict from resamples needs at least "
                  f"{s.min_refit_share:.0%} of them refitted; a diverged cell (NaN, or test loss above "
                  f"{s.diverged_cv_ratio:g} x the zero predictor's loss on the same configurations) counts as a loss "
                  "for its arm at its budget."]
    return lines


def headline_lines(t: StudyTable, fits: Fits) -> list[str]:
    """Per arm the best cell at its largest budget: loss +- SE, energy and force errors, the zero-predictor ratio."""
    rows = []
    frontier = fits.frontier.arms if fits.frontier else {}
    for arm in t.arms():
        res = frontier.get(arm)
        points = [b for b in res.budgets if b.cells] if isinstance(res, FrontierArm) else []
        if not points:
            continue
        top = points[-1]
        cells = t.rows[t.rows["cell"].isin(top.cells)]
        rows.append([label(arm), fmt(top.budget), top.size, loss_with_se(cells), geo_mean(cells, "energy_mae"),
                     geo_mean(cells, "force_mae"), geo_mean(cells, "force_l2"), geo_mean(cells, "cv_ratio"),
                     geo_mean(cells, "equivariance_error")])
    if not rows:
        return ["No arm has a usable cell on its scaling grid."]
    return ["The best configuration at each arm's largest budget (seed means). The zero-predictor ratio is the test "
            "loss over the loss of the trivial prediction on the same configurations: below 1 the model beats it. "
            "The equivariance error is the relative force error under random rotations.", "",
            *table(["Arm", "Budget [FLOPs]", "Size", "Test loss [eV] +- SE", "Energy MAE [eV/atom]",
                    "Force MAE [eV/A]", "Force L2 [eV/A]", "Zero-predictor ratio", "Equivariance error"], rows)]


def paper_lines(fits: Fits) -> list[str]:
    """Ours vs paper 2: gamma_C per arm (joint law, envelope cross-check) beside the paper's; a and b."""
    joint = fits.joint.arms if fits.joint else {}
    frontier = fits.frontier.arms if fits.frontier else {}
    rows = []
    for arm in ARM_ORDER:
        j, f = joint.get(arm), frontier.get(arm)
        if j is None and f is None:
            continue
        paper = PAPER.get(arm)
        env = _envelope_gamma(f)
        rows.append([label(arm), paper.model if paper else "-",
                     fmt_estimate(j.exponents["gamma"]) if isinstance(j, JointArm) else "-",
                     fmt_estimate(env) if env is not None else "-", fmt(paper.gamma_c) if paper else "-",
                     fmt_estimate(j.exponents["a"]) if isinstance(j, JointArm) else "-",
                     fmt_estimate(j.exponents["b"]) if isinstance(j, JointArm) else "-",
                     f"~{fmt(paper.a)}, ~{fmt(paper.b)}" if paper else "-"])
    if not rows:
        return ["No arm of the force-field study was fitted."]
    return ["gamma_C is the exponent of L*(C) - E, the compute frontier of each family's joint law (the paper fits "
            "L(C) = L_inf + F*C^-gamma); the envelope column fits that law to our measured per-budget best points as "
            "a cross-check. a and b: N* ~ C^a and D* ~ C^b along the family's real IsoFLOP curves. The paper trains "
            "on OMol25 at far larger compute; ours are GFN2-xTB molecules: the comparison is of trends, not values.",
            "", *table(["Arm", "Paper's model", "gamma_C, ours (joint law)", "gamma_C, ours (envelope)",
                        "gamma_C, paper", "a, ours", "b, ours", "a, b, paper"], rows)]


def _envelope_gamma(res: object) -> object:
    if not isinstance(res, FrontierArm):
        return None
    law = next((res.envelope[k] for k in ("saturating", "power_law") if isinstance(res.envelope.get(k), LawResult)),
               None)
    return law.params["gamma"] if law is not None else None


def staircase_lines(findings: Sequence[Finding]) -> list[str]:
    """Each step of the staircase with its difference of gamma_C, the paper's, and its own verdict."""
    tiers = " < ".join(" / ".join(label(a) for a in tier) for tier in STAIRCASE)
    checks = {c.quantity: c for f in findings if f.number == 1 for c in f.checks}
    rows, by_verdict = [], {SUPPORTED: [], NOT_SUPPORTED: [], INCONCLUSIVE: []}
    for lo, hi in STEPS:
        c = checks.get(step_quantity(lo, hi))
        step = f"{label(lo)} -> {label(hi)}"
        paper = f"{PAPER[hi].gamma_c - PAPER[lo].gamma_c:+.2f}"
        if c is None:
            rows.append([step, paper, "-", "not judged (no findings file)"])
            continue
        rows.append([step, paper, fmt_estimate(c.estimate) if c.estimate is not None else "-",
                     f"{c.verdict} ({c.reason})" if c.reason else c.verdict])
        by_verdict.setdefault(c.verdict, []).append(step)
    lines = [f"The claim: gamma_C rises at every step of {tiers} (families of one tier are not ordered). Each step is "
             "judged on its own: the bootstrap interval of the difference of the two families' gamma_C.", ""]
    lines += table(["Step", "Paper: difference of gamma_C", "Ours: difference [interval]", "Verdict"], rows)
    lines.append("")
    lines += [f"- {verdict.capitalize()}: {', '.join(steps) if steps else 'no step'}"
              for verdict, steps in by_verdict.items()]
    return lines


def symmetry_lines(fits: Fits, findings: Sequence[Finding]) -> list[str]:
    """The augmentation and symmetry-loss arms against the plain MPNN at equal compute; the verdict of finding 3."""
    comps = fits.frontier.comparisons if fits.frontier else {}
    arms = [a for a in (AUGMENTED, SYMMETRY_LOSS) if isinstance(comps.get(f"{a}/{PLAIN}"), BudgetComparison)]
    lines = ["Both arms train the MPNN on the same ladders: with O(3) data augmentation, and with the symmetry loss (M "
             "rotated copies per batch, 1 + M passes per step, counted in its compute). At equal compute the symmetry "
             "loss therefore sees fewer configurations; the paper's claim is about equal data, which finding 3 judges "
             "on the joint laws, together with the slope gamma_C.", ""]
    ratios: dict[float, dict[str, str]] = {}
    for arm in arms:
        comp = comps[f"{arm}/{PLAIN}"]
        for c in comp.at_budget:
            ratios.setdefault(c.x, {})[arm] = fmt_estimate(c.ratio)
        for d in comp.diverged:
            ratios.setdefault(d.x, {}).setdefault(arm, f"diverged {d.arm} cell(s)")
    if ratios:
        lines += table(["Budget [FLOPs]", *[f"{label(a)} / {label(PLAIN)}, equal compute" for a in arms]],
                       [[fmt(x), *[ratios[x].get(a, "-") for a in arms]] for x in sorted(ratios)])
        lines.append("")
    else:
        lines += ["No budget has cells of a symmetry arm and of the plain MPNN.", ""]
    f3 = next((f for f in findings if f.number == 3), None)
    if f3 is not None:
        lines.append(f"Finding 3 (equal data, same slope): **{f3.verdict}** -- {f3.reason}.")
    return lines


def compute_lines(fits: Fits) -> list[str]:
    """F(N) per size of each family (and of the symmetry-loss arm, whose steps cost 1 + M passes)."""
    if fits.compute is None:
        return ["No compute file."]
    lines = ["Compute C of a cell is its steps times the FLOPs of one step, F(N) = 3 x forward FLOPs per configuration "
             "x batch size (paper 2's C = 3*kappa*N*D with measured forward FLOPs per parameter). The symmetry-loss "
             "arm runs 1 + M passes per step and has its own F.", ""]
    for family, rec in fits.compute.families.items():
        if not isinstance(rec, FamilyCompute):
            lines += [f"- {family}: {rec.reason}"]
            continue
        lines += [f"**{family}**: F = {fmt(rec.power_k)} * N^{rec.power_p:.2f} fitted over the sizes (used: "
                  f"{rec.method}); source: {rec.source}.", ""]
        lines += table(["Size", "Parameters N", "FLOPs per step F", "F / N", "Cells"],
                       [[s.size, f"{s.params:,}", fmt(s.flops_per_step), fmt(s.flops_per_param_step), s.n_cells]
                        for s in rec.sizes])
        lines.append("")
    return lines


def cell_lines(t: StudyTable, target: float | None) -> list[str]:
    """Every cell's loss with its standard error, energy and force errors, equivariance error and status."""
    rows = []
    for r in t.rows.itertuples(index=False):
        loss, se = float(r.test_mse), float(getattr(r, "test_mse_se", math.nan))
        rel = se / loss if loss > 0 and math.isfinite(se) else math.nan
        flag = "" if target is None or not math.isfinite(rel) else (" (above target)" if rel > target else "")
        status = r.status if r.status == "ok" else f"{r.status}: {r.status_reason}"
        rows.append([r.cell, fmt(loss), fmt(se), f"{rel:.1%}{flag}" if math.isfinite(rel) else "-",
                     *(fmt(float(getattr(r, col, math.nan))) for col in ("cv_ratio", "energy_mae", "force_mae",
                                                                         "equivariance_error")), status])
    return table(["Cell", "Test loss [eV]", "SE", "Relative SE", "Zero-predictor ratio", "Energy MAE [eV/atom]",
                  "Force MAE [eV/A]", "Equivariance error", "Status"], rows)


def render_forcefield_report(summary: pd.DataFrame, fits: Fits, figures_dir: Path, out: Path,
                             lr_rules: Sequence[Path] = ()) -> str:
    """The force-field study's report.md text."""
    doc = fits.findings
    settings = doc.settings if doc is not None else None
    t = read_table(summary, diverged_cv_ratio=settings.diverged_cv_ratio if settings else 1.0)
    findings = doc.findings if doc is not None else []
    lines = ["# eqscale: scaling laws and symmetry in neural force fields", "",
             f"Our measurements against the findings of {doc.study if doc else 'the paper'}.", "",
             "## The study", "", *ff_study_lines(t, fits)]
    lines += ["", "## Headline numbers", "", *headline_lines(t, fits)]
    lines += ["", "## Ours vs paper 2", "", *paper_lines(fits)]
    lines += ["", "## The symmetry staircase", "", *staircase_lines(findings)]
    lines += ["", "## The symmetry arms", "", *symmetry_lines(fits, findings)]
    lines += ["", "## Verdicts", ""]
    lines += table(["Finding", "Verdict", "Why"], [[f"{f.number}. {f.claim}", f.verdict, f.reason] for f in findings]) \
        if findings else ["No findings file: run eqscale fit."]
    lines.append("")
    for f in findings:
        lines += finding_lines(f, figures_dir, out, study=FORCEFIELD)
    lines += ["## Where the compute goes", "", *compute_lines(fits)]
    lines += ["", "## Compute-optimal allocation", "", *allocation_lines(fits)]
    lines += ["", "## The compute frontier", "", *frontier_lines(fits, loss_header="Test loss [eV]")]
    lines += ["", "## Noise and evaluation error", "", *noise_lines(fits, loss_name="test loss")]
    if any(Path(p).is_file() for p in lr_rules):
        lines += ["", "## Learning-rate stage", "", *lr_lines(lr_rules)]
    lines += ["", "## Figures", ""]
    for name in figure_names(FORCEFIELD):
        lines += figure_links(name, figures_dir, out, study=FORCEFIELD)
    skipped = skipped_lines(fits)
    if skipped:
        lines += ["", "## Fits that could not be done", "", *skipped]
    lines += ["", "## Every cell", "", *cell_lines(t, settings.target_rel_se if settings else None)]
    return "\n".join(lines).rstrip() + "\n"
