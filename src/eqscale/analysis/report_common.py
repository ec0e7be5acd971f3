"""The parts of report.md every study shares: markdown tables, estimates, a finding's section, figure links,
the allocation and frontier tables, noise, the learning-rate stage and the fits that could not be done.

report.py (the rigid study) and report_forcefield.py build their documents from these. Reads the fit
records only; never fits.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from eqscale.analysis.figures import figure_spec
from eqscale.analysis.results import (
    Check,
    Estimate,
    Finding,
    Fits,
    FrontierArm,
    IsoflopArm,
    JointArm,
    Skipped,
)
from eqscale.analysis.table import StudyTable
from eqscale.analysis.verdicts import fmt
from eqscale.cells import ARMS, RIGID


def fmt_number(value: float | None) -> str:
    """Three significant digits, scientific notation for very small or large values."""
    return fmt(value)


def fmt_estimate(est: Estimate | None) -> str:
    """'value [lo, hi]', or 'value (no interval)'."""
    if est is None or not math.isfinite(est.value):
        return "n/a"
    if not est.has_interval:
        return f"{fmt(est.value)} (no interval)"
    return f"{fmt(est.value)} [{fmt(est.lo)}, {fmt(est.hi)}]"


def fmt_share(value: float | None) -> str:
    """A share as a percentage, or '-'."""
    return "-" if value is None or not math.isfinite(value) else f"{value:.0%}"


def fmt_share_precise(value: float | None) -> str:
    """A share with one decimal, or 'n/a'."""
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.1%}"


def table(head: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    """A markdown table (cells with '|' escaped)."""
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|").replace("\n", " ") for c in row) + " |" for row in rows]
    return lines


def label(arm: str) -> str:
    """An arm's label for prose and tables."""
    return ARMS[arm].label if arm in ARMS else arm


def study_lines(t: StudyTable) -> list[str]:
    """Cells, compute, wall time, budgets, devices, seeds and missing columns."""
    rows = t.rows
    counts = rows["arm"].value_counts()
    lines = [f"- Cells: {len(rows)} (" + ", ".join(f"{a}: {counts[a]}" for a in t.arms()) + "); usable "
             f"{int((rows['status'] == 'ok').sum())}, diverged {int((rows['status'] == 'diverged').sum())}, unusable "
             f"{int((rows['status'] == 'unusable').sum())}",
             f"- Total training compute: {fmt(float(np.nansum(rows['flops'])))} FLOPs"]
    if t.has("wall_time_s"):
        lines.append(f"- Total training wall time: {float(np.nansum(rows['wall_time_s'])) / 3600:.3g} h")
    budgets = sorted(rows["budget"].dropna().unique())
    lines.append("- Budgets: " + (", ".join(fmt(b) for b in budgets) + " FLOPs" if budgets else "none recorded"))
    seeds = sorted(rows["seed"].dropna().unique())
    lines.append(f"- Seeds: {', '.join(str(int(s)) for s in seeds)}")
    if t.has("device"):
        lines.append("- Devices: " + ", ".join(sorted(rows["device"].astype(str).unique())))
    if t.missing:
        lines.append(f"- The summary lacks {len(t.missing)} column(s) of format 2 ({', '.join(t.missing)}); the parts "
                     "that need them are approximated or left out")
    return lines


def geo_mean(cells: pd.DataFrame, col: str) -> str:
    if col not in cells or not cells[col].notna().any():
        return "-"
    return fmt(float(np.exp(np.log(cells[col].astype(float)).mean())))


def loss_with_se(cells: pd.DataFrame) -> str:
    mse = float(np.exp(np.log(cells["test_mse"].astype(float)).mean()))
    if "test_mse_se" in cells and cells["test_mse_se"].notna().all():
        se = float(np.sqrt(np.mean(cells["test_mse_se"].astype(float) ** 2)))
        return f"{fmt(mse)} +- {fmt(se)}"
    return fmt(mse)


def check_row(c: Check) -> list[str]:
    """One row of a finding's table."""
    verdict = "(context)" if c.verdict is None else c.verdict
    if c.reason:
        verdict += f" ({c.reason})"
    return [c.quantity, c.claim, fmt_estimate(c.estimate) if c.estimate is not None else "-",
            "-" if c.margin is None else fmt(c.margin), fmt_share(c.refit_share),
            "-" if c.seed_spread is None else f"+-{c.seed_spread:.1%}", verdict]


def finding_lines(f: Finding, figures_dir: Path, out: Path, study: str = RIGID) -> list[str]:
    """A finding's section: claim, rules, the table of checks, the verdict and its figures."""
    rules = list(dict.fromkeys(c.rule for c in f.checks if c.verdict is not None))
    lines = [f"## Finding {f.number}: {f.title}", "", f"Paper: {f.claim}", "", "Rules applied:", ""]
    lines += [f"- {r}" for r in rules] + [f"- the finding: {f.rule}", ""]
    lines += table(["Quantity", "Claim", "Ours [interval]", "Margin", "Refitted", "Seed spread", "Verdict"],
                   [check_row(c) for c in f.checks])
    lines += ["", f"**Finding {f.number}: {f.verdict}** -- {f.reason}.", ""]
    for name in f.figures:
        lines += figure_links(name, figures_dir, out, study=study)
    return lines + [""]


def figure_links(name: str, figures_dir: Path, out: Path, image: bool = True, study: str = RIGID) -> list[str]:
    """Links to a figure's PNG and PDF (relative to the report), and the image inline.

    The same text whether or not the figure exists yet: the report may be written before the plot
    stage, and a note such as "not drawn yet" would stay in a finished run's report.
    """
    rel = Path(os.path.relpath(Path(figures_dir) / name, Path(out).parent)).as_posix()
    spec = figure_spec(name, study)
    lines = [f"- {spec.title}: [PNG]({rel}.png), [PDF]({rel}.pdf). {spec.caption}"]
    if image:
        lines += ["", f"  ![{spec.title}]({rel}.png)", ""]
    return lines


def allocation_lines(fits: Fits) -> list[str]:
    """Exponents of the joint law and the IsoFLOP minima, and the bracketing of every budget's minimum."""
    lines = []
    joint = fits.joint.arms if fits.joint else {}
    iso = fits.isoflop.arms if fits.isoflop else {}
    rows = []
    for arm in dict.fromkeys([*joint, *iso]):
        j, i = joint.get(arm), iso.get(arm)
        rows.append([label(arm),
                     *(fmt_estimate(j.exponents[k]) if isinstance(j, JointArm) else "-" for k in ("a", "b", "gamma")),
                     *(fmt_estimate(i.exponents[k]) if isinstance(i, IsoflopArm) else "-" for k in ("a", "b")),
                     f"{j.edge_fraction:.0%}" if isinstance(j, JointArm) else "-"])
    if rows:
        lines += ["N* ~ C^a and S* ~ C^b along each family's real IsoFLOP curves S = C/F(N): from the joint law "
                  "(minimum of L(N, C/F(N)) over a continuous N; slopes over the studied budgets) and from the IsoFLOP "
                  "minima (cross-check). a + b = 1 only when F is proportional to N.", ""]
        lines += table(["Arm", "a (joint)", "b (joint)", "gamma of L* - E (joint)", "a (IsoFLOP)", "b (IsoFLOP)",
                        "optimum at the edge of the size range"], rows)
        lines.append("")
    brackets: dict[float, dict[str, str]] = {}
    for arm, res in iso.items():
        if isinstance(res, IsoflopArm):
            for b in res.budgets:
                brackets.setdefault(b.budget, {})[arm] = b.bracketing
    for arm, res in joint.items():
        if isinstance(res, JointArm):
            for p in res.optimal:
                entry = brackets.setdefault(p.budget, {})
                note = "joint N* within sizes" if p.within_sizes else "joint N* outside the sizes"
                entry[arm] = f"{entry[arm]}; {note}" if arm in entry else note
    if brackets:
        arms = list(dict.fromkeys(a for v in brackets.values() for a in v))
        lines += ["Is each budget's IsoFLOP minimum bracketed by the sampled sizes?", ""]
        lines += table(["Budget [FLOPs]", *[label(a) for a in arms]],
                       [[fmt(b), *[brackets[b].get(a, "no cells") for a in arms]] for b in sorted(brackets)])
        lines.append("")
    return lines or ["No allocation fits."]


def frontier_lines(fits: Fits, loss_header: str = "Test MSE") -> list[str]:
    """How the frontier is built, budgets left off the envelope, diverged cells."""
    if fits.frontier is None:
        return ["No frontier file."]
    lines = ["Primary frontier: L*(C) of the joint law, the minimum over a continuous model size along the family's "
             "IsoFLOP curve, with the joint bootstrap's band. Measured frontier: per budget the best configuration "
             "(seed mean); a budget stays on the envelope only if it beats every cheaper budget. Cross-check: "
             "L(C) = E + A*C^-gamma fitted to the envelope (a bootstrap of a minimum is biased, so it is not primary). "
             "Power-law check: a weighted quadratic of ln L in ln C over the per-budget best points.", ""]
    rows = []
    for arm, res in fits.frontier.arms.items():
        if not isinstance(res, FrontierArm):
            continue
        for b in res.budgets:
            rows.append([label(arm), fmt(b.budget), b.status, b.size or "-", fmt(b.test_mse), b.n_seeds,
                         ", ".join(b.diverged) or "-", b.reason or "-"])
    if rows:
        lines += table(["Arm", "Budget [FLOPs]", "Envelope", "Best size", loss_header, "Seeds", "Diverged cells",
                        "Reason"], rows)
    return lines


def noise_lines(fits: Fits, loss_name: str = "test MSE") -> list[str]:
    """Training noise used by the comparisons, seed spread per arm, evaluation error and its cost."""
    doc = fits.findings
    if doc is None:
        return ["No findings file."]
    lines = []
    n = doc.noise
    if n is not None:
        lines.append(f"- Training (seed-to-seed) noise used for single-cell comparisons: "
                     f"{'unknown' if n.sigma is None else f'{n.sigma:.1%} of the loss'} ({n.source})")
        spread = [f"{arm}: {s.sigma:.1%} ({s.dof} dof)" for arm, s in n.seeds.items()
                  if s.sigma is not None and arm != "all"]
        lines.append(f"- Seed-to-seed spread of ln({loss_name}): " + ("; ".join(spread) if spread else
                                                                   "no config was trained with two or more seeds"))
    e = doc.evaluation
    if e is not None:
        lines.append(f"- Evaluation error in the fits: {e.method}")
        lines.append(f"- Relative standard error of the {loss_name}: median {fmt_share_precise(e.median_rel_se)}, "
                     f"largest {fmt_share_precise(e.max_rel_se)}; target "
                     f"{fmt_share_precise(e.target_rel_se) if e.target_rel_se is not None else 'not set'}"
                     + (f", {e.n_above_target} cell(s) above it" if e.n_above_target is not None else ""))
        lines.append(f"- Evaluation's share of the study's wall time (sum of eval_wall_time_s / sum of wall_time_s): "
                     f"{fmt_share_precise(e.eval_share_of_wall_time)}")
    return lines


def lr_lines(paths: Sequence[Path]) -> list[str]:
    """Each family's learning-rate sweep (rate -> validation loss per size), best rates and fitted rule."""
    existing = [Path(p) for p in paths if Path(p).is_file()]
    if not existing:
        return ["Not run (lr_sweep.enabled is false): every cell used the configured learning rate of its family."]
    lines: list[str] = []
    for path in existing:
        try:
            doc = json.loads(path.read_text())
            families = doc["families"]
            if not isinstance(families, dict):
                raise TypeError("'families' is not an object")
        except (OSError, json.JSONDecodeError, KeyError, TypeError) as err:
            lines += [f"{path} could not be read ({type(err).__name__}: {err}).", ""]
            continue
        for model, fam in sorted(families.items()):
            try:
                lines += [f"**{label(model)}** (from {path.as_posix()}): lr(N) = {fmt(fam['lr_ref'])} x "
                          f"(N / {fmt(fam['params_ref'])})^-{fam['exponent']:.3f}"
                          + ("" if fam.get("all_bracketed") else
                             " -- a best rate sits at the edge of the sweep (widen lr_sweep.factors)"), ""]
                rows = []
                for size in fam["sizes"]:
                    swept = ", ".join(f"{fmt(r['lr'])}: " + ("diverged" if r.get("diverged") or r["val_loss"] is None
                                                             else fmt(r["val_loss"])) for r in size["runs"])
                    rows.append([size["size"], f"{size['params']:,}", swept, fmt(size["best_lr"]),
                                 "yes" if size["bracketed"] else "no (edge)"])
                lines += table(["Size", "Parameters", "Rate: validation loss", "Best rate", "Bracketed"], rows) + [""]
            except (KeyError, TypeError, ValueError) as err:
                lines += [f"{path}: the {model} rule is malformed ({type(err).__name__}: {err}).", ""]
    return lines


def skipped_lines(fits: Fits) -> list[str]:
    """Every per-arm fit that could not be done, with its reason."""
    lines = []
    for kind in ("joint", "isoflop", "frontier", "data_efficiency"):
        doc = getattr(fits, kind)
        for arm, res in (doc.arms.items() if doc is not None else ()):
            if isinstance(res, Skipped):
                lines.append(f"- {kind} / {arm}: {res.reason}")
    return lines
