"""`eqscale plot`: the study's figures from summary.csv, the fit JSON files and the cells' metrics.csv.

Figures (PNG and PDF each): loss_vs_compute (the paper's Figure 1: every cell, each arm's frontier
fit and bootstrap band), isoflop (loss vs model size per budget, with the parabolas), optimal_allocation
(N*(C) and S*(C): joint-law curves with bands and IsoFLOP minima), data_efficiency (loss vs training
trajectories at fixed compute) and training_curves (train loss vs step of every cell). A figure
without data says so instead of failing.
"""

from __future__ import annotations

import argparse
import math
import sys
import textwrap
import zlib
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, never a display

import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker as ticker  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from eqscale.analysis.figures import FIGURE_NAMES  # noqa: E402
from eqscale.analysis.results import (  # noqa: E402
    BootstrapInfo,
    Curve,
    DataEfficiencyFile,
    Estimate,
    Fits,
    FrontierFile,
    IsoflopFile,
    JointFile,
    LawResult,
    ok,
)
from eqscale.analysis.store import FitsFileError, read_fits  # noqa: E402
from eqscale.analysis.table import order_arms  # noqa: E402
from eqscale.cells import ARMS  # noqa: E402
from eqscale.io_utils import atomic_path  # noqa: E402

FIGURES = FIGURE_NAMES
# Okabe-Ito: distinguishable with every common colour-vision deficiency
OKABE_ITO = ("#0072B2", "#D55E00", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#F0E442", "#000000")
LOSS_LABEL = "test MSE [m$^2$]"
COMPUTE_LABEL = "training compute C [FLOPs]"


def arm_style(arm: str) -> tuple[str, str, str]:
    """(colour, marker, label) of an arm; unknown arms take the remaining Okabe-Ito colours."""
    if arm in ARMS:
        return ARMS[arm].colour, ARMS[arm].marker, ARMS[arm].label
    extra = [c for c in OKABE_ITO if c not in {a.colour for a in ARMS.values()}]
    return extra[zlib.crc32(arm.encode()) % len(extra)], "v", arm


def _fmt(est: Estimate | None, boot: BootstrapInfo | None = None, digits: int = 2) -> str:
    """'value [lo, hi]', flagged when fewer than half of the bootstrap resamples could be refitted."""
    if est is None or not math.isfinite(est.value):
        return "n/a"
    text = f"{est.value:.{digits}f}"
    if est.has_interval:
        text += f" [{est.lo:.{digits}f}, {est.hi:.{digits}f}]"
    if boot is not None and boot.resamples and boot.ok < 0.5 * boot.resamples:
        text += f" (from {boot.ok / boot.resamples:.0%} of resamples)"
    return text


def no_data(ax: plt.Axes, reason: str) -> None:
    """Mark an axes as empty, with the reason."""
    ax.text(0.5, 0.5, f"no data: {reason}", ha="center", va="center", wrap=True, transform=ax.transAxes,
            fontsize=9, color="0.3")
    ax.set_xticks([])
    ax.set_yticks([])


def log_axes(ax: plt.Axes) -> None:
    """Log-scale both axes with readable ticks: 1-2-5 marks when an axis spans few decades, minor labels off."""
    ax.set_xscale("log")
    ax.set_yscale("log")
    for axis, (lo, hi) in ((ax.xaxis, ax.get_xlim()), (ax.yaxis, ax.get_ylim())):
        decades = math.log10(hi / lo) if lo > 0 and hi > lo else 0.0
        subs = (1.0,) if decades > 3 else (1.0, 2.0, 5.0) if decades > 1 else (1.0, 2.0, 3.0, 5.0)
        axis.set_major_locator(ticker.LogLocator(base=10, subs=subs))
        plain = 1e-3 <= lo and hi <= 1e5  # losses, sizes of a few thousand: plain numbers read better
        axis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}") if plain
                                 else ticker.LogFormatterSciNotation(labelOnlyBase=False))
        axis.set_minor_formatter(ticker.NullFormatter())


def _legend(ax: plt.Axes, **kwargs: Any) -> None:
    if ax.get_legend_handles_labels()[0]:
        ax.legend(**kwargs)


def _band(ax: plt.Axes, curve: Curve | None, colour: str, label: str | None, linestyle: str = "-") -> None:
    if curve is None or curve.x.size == 0:
        return
    ax.plot(curve.x, curve.value, color=colour, lw=1.8, ls=linestyle, label=label)
    if curve.lo.size == curve.x.size and np.isfinite(curve.lo).any():
        ax.fill_between(curve.x, curve.lo, curve.hi, color=colour, alpha=0.2, lw=0)


def _scaling_rows(summary: pd.DataFrame, arm: str) -> pd.DataFrame:
    rows = summary[summary["arm"] == arm]
    if rows.empty:
        return rows
    frac = rows["data_fraction"].astype(float)
    return rows[np.isclose(frac, frac.max())]


def _arms(summary: pd.DataFrame, *docs: Any) -> list[str]:
    present = list(summary["arm"].astype(str)) if "arm" in summary else []
    for doc in docs:
        present += list(doc.arms) if doc is not None else []
    return order_arms(present)


def _usable(summary: pd.DataFrame) -> pd.DataFrame:
    cols = ["flops", "test_mse", "params", "steps"]
    if summary.empty or any(c not in summary for c in cols):
        return summary.iloc[0:0]
    ok = np.all(np.isfinite(summary[cols].to_numpy(float)) & (summary[cols].to_numpy(float) > 0), axis=1)
    return summary[ok]


def _arm_result(doc: Any, arm: str) -> Any:
    """The arm's result in a fit file (None when the file or the arm is absent)."""
    return doc.arms.get(arm) if doc is not None else None


def plot_loss_vs_compute(summary: pd.DataFrame, frontier: FrontierFile | None) -> Figure:
    """Every cell's test loss vs training FLOPs, each arm's frontier fit with its bootstrap band."""
    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    summary = _usable(summary)
    drawn = False
    for arm in _arms(summary, frontier):
        colour, marker, label = arm_style(arm)
        rows = _scaling_rows(summary, arm)
        if not rows.empty:
            ax.scatter(rows["flops"], rows["test_mse"], color=colour, marker=marker, s=18, alpha=0.35, lw=0)
            drawn = True
        res = _arm_result(frontier, arm)
        if not ok(res):
            continue
        ax.scatter(res.points.flops, res.points.test_mse, color=colour, marker=marker, s=46, edgecolor="k",
                   lw=0.6, zorder=3)
        variant: LawResult = res.variants[res.primary]
        gamma_text = _fmt(variant.params["gamma"], variant.bootstrap)
        _band(ax, variant.curve, colour, f"{label}: $\\gamma$ = {gamma_text} ({variant.formula})")
        drawn = True
    if not drawn:
        no_data(ax, "no evaluated cells with positive loss and FLOPs")
        return fig
    log_axes(ax)
    ax.set_xlabel(COMPUTE_LABEL)
    ax.set_ylabel(LOSS_LABEL)
    ax.set_title("Test loss vs compute (large markers: frontier; band: bootstrap interval)", fontsize=10)
    _legend(ax, fontsize=7.5, loc="upper right")
    ax.grid(True, which="major", alpha=0.3)
    fig.tight_layout()
    return fig


def plot_isoflop(summary: pd.DataFrame, isoflop: IsoflopFile | None) -> Figure:
    """Loss vs model size on each budget line, with the fitted parabolas and their minima, one panel per arm."""
    summary = _usable(summary)
    # an arm with a single budget line has no IsoFLOP analysis to show (its reason is in isoflop.json)
    arms = [a for a in _arms(summary, isoflop)
            if _scaling_rows(summary, a)["budget"].dropna().nunique() >= 2] if not summary.empty else []
    fig, axes = plt.subplots(1, max(1, len(arms)), figsize=(5.2 * max(1, len(arms)), 4.4), squeeze=False)
    if not arms:
        no_data(axes[0, 0], "no arm has cells on 2 or more budget lines (IsoFLOP lines)")
        return fig
    budgets = np.unique(summary["budget"].dropna().astype(float))
    cmap = plt.get_cmap("cividis")  # sequential and colour-blind safe
    colour_of = {b: cmap(i / max(1, budgets.size - 1) * 0.9) for i, b in enumerate(budgets)}
    for ax, arm in zip(axes[0], arms, strict=False):
        rows = _scaling_rows(summary, arm).dropna(subset=["budget"])
        res = _arm_result(isoflop, arm)
        per_budget = {round(b.budget, 6): b for b in res.budgets} if ok(res) else {}
        for b, group in rows.groupby("budget"):
            colour = colour_of[float(b)]
            ax.scatter(group["params"], group["test_mse"], color=colour, s=20, label=f"{b:.1e} FLOPs")
            fitted = per_budget.get(round(float(b), 6))
            if fitted is not None and fitted.parabola is not None:
                par = fitted.parabola
                u = np.linspace(np.log(group["params"].min()), np.log(group["params"].max()), 60)
                ax.plot(np.exp(u), par.c2 * u ** 2 + par.c1 * u + par.c0, color=colour, lw=1.2,
                        ls="-" if fitted.bracketed else ":")
                n_opt = fitted.N_opt
                if fitted.bracketed:
                    err = [[n_opt.value - n_opt.lo], [n_opt.hi - n_opt.value]] if n_opt.has_interval else None
                    ax.errorbar([n_opt.value], [fitted.loss_opt], xerr=err, color=colour, marker="*",
                                ms=11, mec="k", mew=0.5, capsize=2)
        colour, _, label = arm_style(arm)
        note = f"a = {_fmt(res.exponents['a'], res.bootstrap)}" if ok(res) else getattr(res, "reason", "")
        ax.set_title(textwrap.shorten(f"{label}: IsoFLOP curves", 60) + "\n" + textwrap.fill(note, 60),
                     fontsize=9, color=colour)
        log_axes(ax)
        ax.set_xlabel("parameters N")
        ax.set_ylabel(LOSS_LABEL)
        _legend(ax, fontsize=7, title="budget (stars: minima)", title_fontsize=7)
        ax.grid(True, which="major", alpha=0.3)
    fig.tight_layout()
    return fig


def plot_optimal_allocation(joint: JointFile | None, isoflop: IsoflopFile | None) -> Figure:
    """N*(C) and S*(C): joint-law curves with bootstrap bands, IsoFLOP minima with intervals and their fit."""
    fig, (ax_n, ax_s) = plt.subplots(1, 2, figsize=(10.5, 4.4))
    drawn = False
    for arm in _arms(pd.DataFrame(), joint, isoflop):
        colour, marker, label = arm_style(arm)
        jres = _arm_result(joint, arm)
        if ok(jres):
            ex, boot = jres.exponents, jres.fit.bootstrap
            _band(ax_n, jres.curves["N_opt"], colour, f"{label} joint law: a = {_fmt(ex['a'], boot)}")
            _band(ax_s, jres.curves["S_opt"], colour, f"{label} joint law: b = {_fmt(ex['b'], boot)}")
            drawn = True
        ires = _arm_result(isoflop, arm)
        if ok(ires):
            rows = [b for b in ires.budgets if b.bracketed]
            for ax, key in ((ax_n, "N_opt"), (ax_s, "S_opt")):
                c = [b.budget for b in rows]
                ests = [getattr(b, key) for b in rows]
                v = np.array([e.value for e in ests])
                lo = np.array([e.lo if e.lo is not None else np.nan for e in ests])
                hi = np.array([e.hi if e.hi is not None else np.nan for e in ests])
                err = np.vstack([np.nan_to_num(v - lo), np.nan_to_num(hi - v)]) if rows else None
                ax.errorbar(c, v, yerr=err, color=colour, marker=marker, ls="none", mec="k", mew=0.5, capsize=2,
                            label=f"{label} IsoFLOP minima")
            ex, boot = ires.exponents, ires.bootstrap
            _band(ax_n, ires.curves["N_opt"], colour, f"{label} IsoFLOP fit: a = {_fmt(ex['a'], boot)}", "--")
            _band(ax_s, ires.curves["S_opt"], colour,
                  f"{label} IsoFLOP: b = 1 - a = {_fmt(ex['b_implied'], boot)}", "--")
            drawn = True
    if not drawn:
        for ax in (ax_n, ax_s):
            no_data(ax, "no joint or IsoFLOP fit succeeded")
        return fig
    for ax, ylabel, title in ((ax_n, "compute-optimal parameters N*", "N*(C) ~ C^a"),
                              (ax_s, "compute-optimal training steps S*", "S*(C) ~ C^b")):
        log_axes(ax)
        ax.set_xlabel(COMPUTE_LABEL)
        ax.set_ylabel(ylabel)
        ax.set_title(title, fontsize=10)
        _legend(ax, fontsize=7)
        ax.grid(True, which="major", alpha=0.3)
    fig.tight_layout()
    return fig


def plot_data_efficiency(data: DataEfficiencyFile | None) -> Figure:
    """Test loss vs training-set size at fixed compute per arm, with the fitted law and its band."""
    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    drawn = False
    x_name = "training trajectories D"
    reasons = []
    for arm in _arms(pd.DataFrame(), data):
        res = _arm_result(data, arm)
        if not ok(res):
            reasons.append(f"{arm}: {getattr(res, 'reason', 'no fit')}")
            continue
        colour, marker, label = arm_style(arm)
        if res.x == "data_fraction":
            x_name = "fraction of the training set"
        ax.scatter(res.points.D, res.points.test_mse, color=colour, marker=marker, s=30, edgecolor="k",
                   lw=0.5, zorder=3)
        fit = res.fit
        _band(ax, fit.curve, colour, f"{label} (size {res.size}, {res.steps} steps): "
                                     f"$\\delta$ = {_fmt(fit.params['delta'], fit.bootstrap)}")
        drawn = True
    if not drawn:
        no_data(ax, "; ".join(reasons) or "no data-efficiency cells")
        return fig
    log_axes(ax)
    ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))  # trajectories: plain counts
    ax.set_xlabel(x_name)
    ax.set_ylabel(LOSS_LABEL)
    ax.set_title("Data efficiency at fixed compute", fontsize=10)
    _legend(ax, fontsize=7.5)
    ax.grid(True, which="major", alpha=0.3)
    fig.tight_layout()
    return fig


def metrics_path(run_dir: str, runs_dir: Path | None) -> Path | None:
    """metrics.csv of a cell: in its recorded run_dir, else the same cell path under runs_dir."""
    direct = Path(run_dir) / "metrics.csv"
    if direct.is_file():
        return direct
    if runs_dir is not None and "runs/" in run_dir.replace("\\", "/") + "/":
        tail = run_dir.replace("\\", "/").split("runs/", 1)[1]
        candidate = Path(runs_dir) / tail / "metrics.csv"
        if candidate.is_file():
            return candidate
    return None


def plot_training_curves(summary: pd.DataFrame, runs_dir: Path | None) -> Figure:
    """Train loss vs optimizer step of every cell (from metrics.csv), coloured by arm."""
    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    seen: set[str] = set()
    missing = 0
    for row in summary.itertuples(index=False):
        path = metrics_path(str(getattr(row, "run_dir", "")), runs_dir)
        if path is None:
            missing += 1
            continue
        try:
            metrics = pd.read_csv(path, usecols=["step", "train_loss"])
        except (ValueError, pd.errors.ParserError, pd.errors.EmptyDataError):
            missing += 1
            continue
        metrics = metrics[(metrics["step"] > 0) & (metrics["train_loss"] > 0)]
        if metrics.empty:
            continue
        colour, _, label = arm_style(str(row.arm))
        ax.plot(metrics["step"], metrics["train_loss"], color=colour, lw=0.8, alpha=0.6,
                label=None if row.arm in seen else label)
        seen.add(str(row.arm))
    if not seen:
        no_data(ax, f"no metrics.csv found for the {len(summary)} cells of the summary")
        return fig
    log_axes(ax)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("train loss (MSE) [m$^2$]")
    title = "Training curves of every cell"
    if missing:
        title += f" ({missing} without metrics.csv)"
    ax.set_title(title, fontsize=10)
    _legend(ax, fontsize=8)
    ax.grid(True, which="major", alpha=0.3)
    fig.tight_layout()
    return fig


def make_figures(summary: pd.DataFrame, fits: Fits, runs_dir: Path | None = None) -> dict[str, Figure]:
    """Every figure of the study, by name (the names of eqscale.analysis.figures)."""
    return {
        "loss_vs_compute": plot_loss_vs_compute(summary, fits.frontier),
        "isoflop": plot_isoflop(summary, fits.isoflop),
        "optimal_allocation": plot_optimal_allocation(fits.joint, fits.isoflop),
        "data_efficiency": plot_data_efficiency(fits.data_efficiency),
        "training_curves": plot_training_curves(summary, runs_dir),
    }


def save_figure(fig: Figure, out_dir: str | Path, name: str) -> list[Path]:
    """Write name.png and name.pdf atomically."""
    paths = []
    for fmt in ("png", "pdf"):
        path = Path(out_dir) / f"{name}.{fmt}"
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=fmt, dpi=150)
        paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, draw and write every figure."""
    parser = argparse.ArgumentParser(prog="eqscale plot", description=__doc__.splitlines()[0])
    parser.add_argument("--summary", type=Path, default=Path("results/summary.csv"))
    parser.add_argument("--fits-dir", type=Path, default=Path("results/fits"))
    parser.add_argument("--runs", type=Path, default=Path("results/runs"),
                        help="cell directories, for metrics.csv (training curves)")
    parser.add_argument("--out-dir", type=Path, default=Path("results/figures"))
    args = parser.parse_args(argv)
    try:
        summary = pd.read_csv(args.summary)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        print(f"eqscale plot: error: cannot read {args.summary}: {err}", file=sys.stderr)
        return 1
    try:
        fits = read_fits(args.fits_dir)
    except FitsFileError as err:
        print(f"eqscale plot: error: {err}", file=sys.stderr)
        return 1
    for name, fig in make_figures(summary, fits, args.runs).items():
        for path in save_figure(fig, args.out_dir, name):
            print(f"wrote {path}")
        plt.close(fig)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
