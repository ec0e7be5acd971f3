"""`eqscale report`: results/report.md, one table per finding of the paper with our numbers beside it.

Each row states the paper's claim, our estimate with its bootstrap interval, and a plain verdict:
"supported" when the interval lies wholly on the claimed side, "not supported" when it lies wholly
on the other side, "inconclusive (intervals overlap)" when it straddles the boundary, and
"inconclusive (...)" with the reason when a fit or an interval is missing, or when fewer than half of
the bootstrap resamples could be refitted (such an interval is not trustworthy).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from eqscale.analysis.figures import BY_NAME as FIGURE_SPECS
from eqscale.analysis.figures import FIGURE_NAMES
from eqscale.analysis.results import (
    BootstrapInfo,
    DataEfficiencyFile,
    Estimate,
    Fits,
    FrontierFile,
    IsoflopFile,
    JointFile,
    Skipped,
    ok,
)
from eqscale.analysis.store import FitsFileError, read_fits
from eqscale.io_utils import atomic_write_text

SUPPORTED = "supported"
NOT_SUPPORTED = "not supported"
OVERLAP = "inconclusive (intervals overlap)"
CLAIMS = {
    1: "Equivariance improves data efficiency; a transformer trained with data augmentation can close that gap "
       "given enough epochs.",
    2: "Test loss follows a power law in compute for both models, and the equivariant model (GATr) is better at "
       "every tested compute budget, by a similar factor.",
    3: "The compute-optimal split between model size and training steps differs: the transformer should scale "
       "training steps faster than model size (a < 0.5 in N* ~ C^a), GATr the opposite (a > 0.5).",
}
MIN_OK_FRACTION = 0.5  # below this share of successful resamples an interval is not used for a verdict
POWER_LAW_R2 = 0.9  # frontier fits with R^2 (log space) below this do not count as "follows a power law"


def fmt_number(value: float | None) -> str:
    """Three significant digits, scientific notation for very small or large values."""
    if value is None or not math.isfinite(value):
        return "n/a"
    if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e5):
        return f"{value:.3g}".replace("e+0", "e+").replace("e-0", "e-")
    return f"{value:.3g}"


def fmt_estimate(est: Estimate | None, boot: BootstrapInfo | None = None) -> str:
    """'value [lo, hi]' (or 'value (no interval)'), flagged when few bootstrap resamples could be refitted."""
    if est is None or not math.isfinite(est.value):
        return "n/a"
    if not est.has_interval:
        return f"{fmt_number(est.value)} (no interval)"
    text = f"{fmt_number(est.value)} [{fmt_number(est.lo)}, {fmt_number(est.hi)}]"
    frac = boot.ok_fraction if boot is not None else None
    if frac is not None and frac < MIN_OK_FRACTION:
        text += f" (interval from {frac:.0%} of resamples)"
    return text


def verdict_above(est: Estimate | None, threshold: float, boot: BootstrapInfo | None = None) -> str:
    """Does the estimate exceed `threshold`? Judged on its interval."""
    if est is None or not math.isfinite(est.value):
        return "inconclusive (no estimate)"
    frac = boot.ok_fraction if boot is not None else None
    if frac is not None and frac < MIN_OK_FRACTION:
        return f"inconclusive (only {frac:.0%} of bootstrap resamples could be refitted)"
    if not est.has_interval:
        return "inconclusive (no interval: run the fit with bootstrap resamples)"
    if est.lo > threshold:
        return SUPPORTED
    if est.hi < threshold:
        return NOT_SUPPORTED
    return OVERLAP


def verdict_below(est: Estimate | None, threshold: float, boot: BootstrapInfo | None = None) -> str:
    """Is the estimate below `threshold`? Judged on its interval."""
    v = verdict_above(est, threshold, boot)
    return {SUPPORTED: NOT_SUPPORTED, NOT_SUPPORTED: SUPPORTED}.get(v, v)


def verdict_includes(est: Estimate | None, value: float, boot: BootstrapInfo | None = None) -> str:
    """Is the estimate consistent with `value` (its interval contains it)?"""
    v = verdict_above(est, value, boot)
    if v == OVERLAP:
        return SUPPORTED
    if v in (SUPPORTED, NOT_SUPPORTED):
        return NOT_SUPPORTED
    return v


def combine(verdicts: Sequence[str]) -> str:
    """A finding is supported if every part is, not supported if any part is not, else inconclusive."""
    if not verdicts:
        return "inconclusive (nothing could be measured)"
    if any(v.startswith(NOT_SUPPORTED) for v in verdicts):
        return NOT_SUPPORTED
    if all(v == SUPPORTED for v in verdicts):
        return SUPPORTED
    return "inconclusive"


def _table(rows: Sequence[Sequence[str]]) -> list[str]:
    head = ["Quantity", "Paper", "Ours", "Verdict"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows]
    return lines


def _skip_reason(res: Any, what: str) -> str:
    if res is None:
        return f"no {what}"
    return f"{what} skipped: {getattr(res, 'reason', 'unknown reason')}"


def _comparisons(doc: Any) -> dict[str, Any]:
    """A fit file's comparisons by key ({} when they were skipped as a whole or the file is absent)."""
    if doc is None or isinstance(doc.comparisons, Skipped):
        return {}
    return doc.comparisons


def _comparison_reason(doc: Any, key: str) -> str:
    comp = _comparisons(doc).get(key)
    if isinstance(comp, Skipped):
        return comp.reason
    if doc is not None and isinstance(doc.comparisons, Skipped):
        return doc.comparisons.reason
    return "no comparison"


def _worst(*boots: BootstrapInfo | None) -> BootstrapInfo | None:
    """The bootstrap with the smallest share of refitted resamples."""
    return min((b for b in boots if b is not None), key=lambda b: b.ok / max(1, b.resamples), default=None)


# ---------------------------------------------------------------- findings


def finding_1(data: DataEfficiencyFile | None) -> tuple[list[list[str]], str]:
    """Data efficiency: rows and the overall verdict."""
    rows: list[list[str]] = []
    comps = _comparisons(data)
    arms = data.arms if data is not None else {}
    for arm, res in arms.items():
        if ok(res):
            fit = res.fit
            note = f"; {fit.note}" if fit.note else ""
            rows.append([f"{arm}: data exponent delta ({fit.formula}, size {res.size}, {res.steps} steps)",
                         "-", fmt_estimate(fit.params["delta"], fit.bootstrap) + note, "(context)"])
        else:
            rows.append([f"{arm}: data-efficiency fit", "-", _skip_reason(res, "fit"), "inconclusive (no fit)"])
    parts: list[str] = []
    boot_of = {arm: res.fit.bootstrap for arm, res in arms.items() if ok(res)}

    def worst_boot(*names: str) -> BootstrapInfo | None:
        return _worst(*(boot_of.get(n) for n in names))

    def comparison(key: str) -> Any:
        comp = comps.get(key)
        return comp if ok(comp) else None

    def missing(key: str) -> str:
        return f"inconclusive ({_comparison_reason(data, key)})"

    # 1a: GATr's loss grows less than the transformer's when the training set shrinks
    base = comparison("transformer/gatr")
    if base:
        ds, dl = fmt_number(base.D_small), fmt_number(base.D_large)
        v1a = verdict_above(base.degradation_ratio, 1.0, worst_boot("transformer", "gatr"))
        rows.append([f"data-efficiency gap: [L(D={ds}) / L(D={dl})] of the transformer over that of GATr",
                     "> 1 (GATr suffers less from less data)", fmt_estimate(base.degradation_ratio), v1a])
        rows.append([f"loss ratio transformer / GATr at D = {ds} (most epochs)", "> 1",
                     fmt_estimate(base.ratio_at_small), "(context)"])
        rows.append([f"loss ratio transformer / GATr at D = {dl}", "-", fmt_estimate(base.ratio_at_large),
                     "(context)"])
    else:
        v1a = missing("transformer/gatr")
        rows.append(["data-efficiency gap transformer vs GATr", "> 1", "n/a", v1a])
    parts.append(v1a)
    # 1b: with augmentation the transformer's gap to GATr closes (at the smallest set, i.e. most epochs)
    aug = comparison("transformer+aug/gatr")
    if aug:
        ds, dl = fmt_number(aug.D_small), fmt_number(aug.D_large)
        above = verdict_above(aug.degradation_ratio, 1.0, worst_boot("transformer+aug", "gatr"))
        if above == SUPPORTED:
            v1b = f"{NOT_SUPPORTED} (a gap remains with augmentation)"
        elif above in (NOT_SUPPORTED, OVERLAP):
            v1b = SUPPORTED if v1a == SUPPORTED else "inconclusive (no significant gap to close without augmentation)"
        else:
            v1b = above
        rows.append([f"data-efficiency gap: transformer+aug over GATr (D = {ds} vs {dl})",
                     "about 1 or below (augmentation closes the gap)", fmt_estimate(aug.degradation_ratio), v1b])
        rows.append([f"loss ratio transformer+aug / GATr at D = {ds}", "-", fmt_estimate(aug.ratio_at_small),
                     "(context)"])
        gain = comparison("transformer/transformer+aug")
        if gain:
            rows.append([f"loss ratio transformer / transformer+aug at D = {fmt_number(gain.D_small)}",
                         "> 1 (augmentation helps)", fmt_estimate(gain.ratio_at_small),
                         verdict_above(gain.ratio_at_small, 1.0, worst_boot("transformer", "transformer+aug"))])
    else:
        v1b = missing("transformer+aug/gatr")
        rows.append(["data-efficiency gap transformer+aug vs GATr", "about 1", "n/a", v1b])
    parts.append(v1b)
    return rows, combine(parts)


def finding_2(frontier: FrontierFile | None) -> tuple[list[list[str]], str]:
    """Power law in compute, GATr better at every budget by a similar factor."""
    rows: list[list[str]] = []
    parts: list[str] = []
    arms = frontier.arms if frontier is not None else {}
    for arm in ("gatr", "transformer"):
        res = arms.get(arm)
        if not ok(res):
            rows.append([f"{arm}: power law in compute", "power law", _skip_reason(res, "frontier fit"),
                         "inconclusive (no fit)"])
            parts.append("inconclusive")
            continue
        for name, variant in res.variants.items():
            if not ok(variant):
                rows.append([f"{arm}: frontier {name}", "-", f"skipped: {variant.reason}", "(context)"])
                continue
            primary = name == res.primary
            r2 = variant.r2_log
            quantity = (f"{arm}: gamma of {variant.formula} ({variant.n_points} frontier points; "
                        f"R^2 (log) = {fmt_number(r2)}, RMSE (log) = {fmt_number(variant.rmse_log)})")
            if primary:
                v = SUPPORTED if math.isfinite(r2) and r2 >= POWER_LAW_R2 else (
                    f"{NOT_SUPPORTED} (R^2 below {POWER_LAW_R2})")
                parts.append(v)
            else:
                v = "(context)"
            gamma = fmt_estimate(variant.params["gamma"], variant.bootstrap)
            rows.append([quantity, "power law" if primary else "-", gamma, v])
    comp = _comparisons(frontier).get("transformer/gatr")
    if ok(comp) and comp.at_budget:
        worst = _worst(*(arms[a].variants[arms[a].primary].bootstrap for a in ("gatr", "transformer")))
        verdicts = []
        for point in comp.at_budget:
            v = verdict_above(point.ratio, 1.0, worst)
            verdicts.append(v)
            rows.append([f"loss ratio transformer / GATr at {fmt_number(point.budget)} FLOPs", "> 1",
                         fmt_estimate(point.ratio), v])
        every = combine(verdicts)
        parts.append(every)
        gd = comp.gamma_difference
        if gd:
            v = verdict_includes(gd, 0.0)
            if v == NOT_SUPPORTED:
                v = f"{NOT_SUPPORTED} (the exponents differ: the gap changes with compute)"
            rows.append(["gamma(transformer) - gamma(GATr), pure power laws", "about 0 (a similar factor everywhere)",
                         fmt_estimate(gd), v])
            parts.append(v)
    else:
        reason = _comparison_reason(frontier, "transformer/gatr")
        rows.append(["loss ratio transformer / GATr per budget", "> 1 at every budget", "n/a",
                     f"inconclusive ({reason})"])
        parts.append("inconclusive")
    return rows, combine(parts)


def finding_3(joint: JointFile | None, isoflop: IsoflopFile | None) -> tuple[list[list[str]], str]:
    """Compute-optimal allocation: a < 0.5 for the transformer, a > 0.5 for GATr."""
    rows: list[list[str]] = []
    parts: list[str] = []
    expect = {"transformer": ("< 0.5 (steps grow faster)", verdict_below),
              "gatr": ("> 0.5 (size grows faster)", verdict_above)}
    for arm, (paper, judge) in expect.items():
        jres = joint.arms.get(arm) if joint is not None else None
        if ok(jres):
            fit = jres.fit
            v = judge(jres.exponents["a"], 0.5, fit.bootstrap)
            p = fit.params
            rows.append([f"{arm}: a in N* ~ C^a, joint law (alpha = {fmt_estimate(p['alpha'])}, "
                         f"beta = {fmt_estimate(p['beta'])}; {fit.n_points} cells, R^2 (log) = "
                         f"{fmt_number(fit.r2_log)})", paper, fmt_estimate(jres.exponents["a"], fit.bootstrap), v])
            parts.append(v)
        else:
            rows.append([f"{arm}: a, joint law", paper, _skip_reason(jres, "joint fit"), "inconclusive (no fit)"])
        ires = isoflop.arms.get(arm) if isoflop is not None else None
        if ok(ires):
            v = judge(ires.exponents["a"], 0.5, ires.bootstrap)
            rows.append([f"{arm}: a, IsoFLOP minima ({ires.n_points} budgets; cross-check)", paper,
                         fmt_estimate(ires.exponents["a"], ires.bootstrap), v])
            if not ok(jres):
                parts.append(v)
        else:
            rows.append([f"{arm}: a, IsoFLOP minima (cross-check)", paper, _skip_reason(ires, "IsoFLOP fit"),
                         "inconclusive (no fit)"])
    comp = _comparisons(joint).get("transformer-gatr")
    if ok(comp):
        flipped = comp.a_difference.map(lambda x: -x, decreasing=True)
        v = verdict_above(flipped, 0.0)
        rows.append(["a(GATr) - a(transformer), joint law", "> 0 (the allocations differ)", fmt_estimate(flipped), v])
        parts.append(v)
    if not parts:
        parts.append("inconclusive")
    return rows, combine(parts)


# ---------------------------------------------------------------- the document


def _study_lines(summary: pd.DataFrame) -> list[str]:
    n = len(summary)
    lines = [f"- Cells: {n}"]
    if n and "arm" in summary:
        counts = summary["arm"].value_counts()
        lines[0] += " (" + ", ".join(f"{arm}: {c}" for arm, c in counts.sort_index().items()) + ")"
    if "flops" in summary:
        total = pd.to_numeric(summary["flops"], errors="coerce").sum()
        lines.append(f"- Total training compute: {fmt_number(float(total))} FLOPs")
    if "wall_time_s" in summary:
        hours = pd.to_numeric(summary["wall_time_s"], errors="coerce").sum() / 3600
        lines.append(f"- Total training wall time: {hours:.3g} h")
    if "budget" in summary:
        budgets = sorted(pd.to_numeric(summary["budget"], errors="coerce").dropna().unique())
        lines.append("- Budgets: " + (", ".join(fmt_number(b) for b in budgets) + " FLOPs" if budgets
                                      else "none recorded"))
    if "device" in summary and n:
        lines.append("- Devices: " + ", ".join(sorted(summary["device"].astype(str).unique())))
    if "test_mse" in summary:
        failed = int(pd.to_numeric(summary["test_mse"], errors="coerce").isna().sum())
        if failed:
            lines.append(f"- Cells without a usable test loss (left out of every fit): {failed}")
    return lines


def _docs(fits: Fits) -> dict[str, Any]:
    return {f.name: getattr(fits, f.name) for f in dataclasses.fields(fits) if getattr(fits, f.name) is not None}


def _skipped_lines(fits: Fits) -> list[str]:
    lines = []
    for kind, doc in _docs(fits).items():
        for arm, res in doc.arms.items():
            if isinstance(res, Skipped):
                lines.append(f"- {kind} / {arm}: {res.reason}")
    return lines


def render_report(summary: pd.DataFrame, fits: Fits, figures_dir: Path, out: Path) -> str:
    """The report's markdown text."""
    settings = next((doc.bootstrap for doc in _docs(fits).values()), None)
    conf = settings.confidence if settings is not None else 0.95
    resamples, seed = (settings.resamples, settings.seed) if settings is not None else (0, 0)
    lines = ["# eqscale: does equivariance matter at scale?", "",
             "Our measurements against the findings of Brehmer et al. 2024 (arXiv 2410.23179).", "",
             "## The study", ""]
    lines += _study_lines(summary)
    lines += [f"- Intervals: {conf:.0%} percentile bootstrap over cells, {resamples} resamples "
              f"(seed {seed}); a verdict needs the interval wholly on one side of the paper's "
              f"claim, and at least {MIN_OK_FRACTION:.0%} of resamples refitted.", ""]
    verdicts = {}
    sections = [(1, "Data efficiency", finding_1(fits.data_efficiency), ["data_efficiency"]),
                (2, "Scaling with compute", finding_2(fits.frontier), ["loss_vs_compute"]),
                (3, "Compute-optimal allocation", finding_3(fits.joint, fits.isoflop),
                 ["optimal_allocation", "isoflop"])]
    for number, title, (rows, verdict), figs in sections:
        verdicts[number] = verdict
        lines += [f"## Finding {number}: {title}", "", f"Paper: {CLAIMS[number]}", ""]
        lines += _table(rows)
        lines += ["", f"**Finding {number}: {verdict}.**", ""]
        for name in figs:
            lines += _figure_links(name, figures_dir, out)
        lines.append("")
    lines += ["## Summary", "", "| Finding | Verdict |", "|---|---|"]
    lines += [f"| {n}. {CLAIMS[n]} | {verdicts[n]} |" for n in sorted(verdicts)]
    lines += ["", "## Figures", ""]
    for name in FIGURE_NAMES:
        lines += _figure_links(name, figures_dir, out, image=name == "training_curves")
    skipped = _skipped_lines(fits)
    if skipped:
        lines += ["", "## Fits that could not be done", ""] + skipped
    return "\n".join(lines).rstrip() + "\n"


def _figure_links(name: str, figures_dir: Path, out: Path, image: bool = True) -> list[str]:
    """Links to a figure's PNG and PDF (relative to the report), and the image inline.

    The same text whether or not the figure exists yet: the report may be written before the plot
    stage, and a note such as "not drawn yet" would stay in a finished run's report.
    """
    rel = Path(os.path.relpath(Path(figures_dir) / name, Path(out).parent)).as_posix()
    title = FIGURE_SPECS[name].title
    lines = [f"- {title}: [PNG]({rel}.png), [PDF]({rel}.pdf)"]
    if image:
        lines += ["", f"  ![{title}]({rel}.png)", ""]
    return lines


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and write the report."""
    parser = argparse.ArgumentParser(prog="eqscale report", description=__doc__.splitlines()[0])
    parser.add_argument("--summary", type=Path, default=Path("results/summary.csv"))
    parser.add_argument("--fits-dir", type=Path, default=Path("results/fits"))
    parser.add_argument("--figures-dir", type=Path, default=Path("results/figures"))
    parser.add_argument("--out", type=Path, default=Path("results/report.md"))
    args = parser.parse_args(argv)
    try:
        summary = pd.read_csv(args.summary)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        print(f"eqscale report: error: cannot read {args.summary}: {err}", file=sys.stderr)
        return 1
    try:
        fits = read_fits(args.fits_dir)
    except FitsFileError as err:
        print(f"eqscale report: error: {err}", file=sys.stderr)
        return 1
    text = render_report(summary, fits, args.figures_dir, args.out)
    atomic_write_text(args.out, text)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
