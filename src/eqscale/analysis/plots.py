"""`eqscale plot`: the study's figures from summary.csv, the fit files and the cells' metrics.csv.

The figures are declared in figures.py (PNG and PDF each): loss_vs_compute (every cell, each arm's
frontier L*(C) from the joint law with its band, the measured per-budget best points and the
envelope fit as a dashed cross-check), isoflop (loss vs model size per budget, with the parabolas;
dotted where the minimum is not bracketed), optimal_allocation (N*(C) and S*(C): joint-law curves
with bands and IsoFLOP minima), data_efficiency (converged loss vs training trajectories, with the
epochs each point reached) and training_curves (smoothed train loss vs step of every cell, the raw
curve kept as a faint band). The force-field study (--study forcefield, or the study findings.json
names) draws its own set: the same plots in eV, no data efficiency, and staircase (gamma_C, a and b
per arm with intervals beside paper 2's). A figure without data says so instead of failing.
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

from eqscale.analysis.figures import FIGURE_NAMES, figure_names  # noqa: E402
from eqscale.analysis.findings_forcefield import ARM_ORDER, PAPER  # noqa: E402
from eqscale.analysis.results import (  # noqa: E402
    BootstrapInfo,
    Curve,
    DataEfficiencyArm,
    DataEfficiencyFile,
    Estimate,
    Fits,
    FrontierArm,
    FrontierFile,
    IsoflopArm,
    IsoflopFile,
    JointArm,
    JointFile,
    LawResult,
)
from eqscale.analysis.store import FitsFileError, read_fits  # noqa: E402
from eqscale.analysis.studies import STUDIES, study_key  # noqa: E402
from eqscale.analysis.table import StudyTable, order_arms, read_table  # noqa: E402
from eqscale.cells import ARMS, FORCEFIELD, RIGID  # noqa: E402
from eqscale.io_utils import atomic_path  # noqa: E402

FIGURES = FIGURE_NAMES
# Okabe-Ito: distinguishable with every common colour-vision deficiency
OKABE_ITO = ("#0072B2", "#D55E00", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#F0E442", "#000000")
LOSS_LABEL = "test MSE [m$^2$]"
TRAIN_LABEL = "train loss (MSE) [m$^2$]"
# the force-field study's loss: per-atom energy error + per-atom force L2 error
FF_LOSS_LABEL, FF_TRAIN_LABEL = "test loss [eV]", "train loss [eV]"
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


def _band(ax: plt.Axes, curve: Curve | None, colour: str, label: str | None, linestyle: str = "-",
          alpha: float = 0.2) -> None:
    if curve is None or curve.x.size == 0:
        return
    ax.plot(curve.x, curve.value, color=colour, lw=1.8, ls=linestyle, label=label)
    if curve.lo.size == curve.x.size and np.isfinite(curve.lo).any():
        ax.fill_between(curve.x, curve.lo, curve.hi, color=colour, alpha=alpha, lw=0)


def _arms(table: StudyTable | None, *docs: Any) -> list[str]:
    present = list(table.rows["arm"].astype(str)) if table is not None else []
    for doc in docs:
        present += list(doc.arms) if doc is not None else []
    return order_arms(present)


def _arm_result(doc: Any, arm: str) -> Any:
    """The arm's result in a fit file (None when the file or the arm is absent)."""
    return doc.arms.get(arm) if doc is not None else None


def _table(summary: pd.DataFrame) -> StudyTable | None:
    """The summary as the fits read it, or None when it lacks the required columns (nothing to draw)."""
    try:
        return read_table(summary)
    except ValueError:
        return None


def plot_loss_vs_compute(table: StudyTable | None, frontier: FrontierFile | None, loss_label: str = LOSS_LABEL
                         ) -> Figure:
    """Every cell's loss vs FLOPs, each arm's L*(C) with its band, the per-budget best points, the envelope fit."""
    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    drawn = False
    losses = 0  # points with a loss: without one a log axis has nothing to scale (every cell diverged)
    for arm in _arms(table, frontier):
        colour, marker, label = arm_style(arm)
        rows = table.scaling(arm) if table is not None else pd.DataFrame()
        if not rows.empty:
            ax.scatter(rows["flops"], rows["test_mse"], color=colour, marker=marker, s=16, alpha=0.3, lw=0)
            drawn = True
            losses += len(rows)
        res = _arm_result(frontier, arm)
        if not isinstance(res, FrontierArm):
            continue
        on = [b for b in res.budgets if b.status == "on envelope"]
        off = [b for b in res.budgets if b.status == "dropped"]
        ax.scatter([b.flops for b in on], [b.test_mse for b in on], color=colour, marker=marker, s=46,
                   edgecolor="k", lw=0.6, zorder=3)
        if off:
            ax.scatter([b.flops for b in off], [b.test_mse for b in off], facecolor="none", edgecolor=colour,
                       marker=marker, s=46, lw=1.0, zorder=3)
        gamma = f"$\\gamma$ = {_fmt(res.gamma)}" if res.gamma is not None else "no joint law"
        _band(ax, res.curve, colour, f"{label}: L*(C) of the joint law, {gamma}")
        env = res.envelope.get("saturating")
        if isinstance(env, LawResult) and env.curve is not None:
            ax.plot(env.curve.x, env.curve.value, color=colour, lw=1.0, ls="--", alpha=0.8)
        diverged = [b.budget for b in res.budgets for _ in b.diverged]
        if diverged:  # no loss to plot: a cross on the top edge at the budget, so they are not silently gone
            ax.scatter(diverged, np.ones(len(diverged)), transform=ax.get_xaxis_transform(), marker="x", s=40,
                       color=colour, clip_on=False, zorder=4, label=f"{label}: {len(diverged)} diverged cell(s)")
        drawn = True
    if not drawn or not losses:
        no_data(ax, "no evaluated cells with positive loss and FLOPs" if not drawn
                else "every cell diverged (or lost to the trivial predictor): no loss to draw")
        return fig
    log_axes(ax)
    ax.set_xlabel(COMPUTE_LABEL)
    ax.set_ylabel(loss_label)
    ax.set_title("Test loss vs compute (large markers: best per budget, hollow: off the envelope;\n"
                 "band: bootstrap interval; dashed: envelope fit, a cross-check)", fontsize=9)
    _legend(ax, fontsize=7.5, loc="upper right")
    ax.grid(True, which="major", alpha=0.3)
    fig.tight_layout()
    return fig


def plot_isoflop(table: StudyTable | None, isoflop: IsoflopFile | None, loss_label: str = LOSS_LABEL) -> Figure:
    """Loss vs model size on each budget line, with the fitted parabolas and their minima, one panel per arm."""
    arms = [a for a in _arms(table, isoflop) if table is not None and table.scaling(a)["budget"].nunique() >= 2]
    fig, axes = plt.subplots(1, max(1, len(arms)), figsize=(5.2 * max(1, len(arms)), 4.4), squeeze=False)
    if not arms:
        no_data(axes[0, 0], "no arm has cells on 2 or more budget lines (IsoFLOP lines)")
        return fig
    budgets = np.unique(table.usable["budget"].dropna().astype(float))
    cmap = plt.get_cmap("cividis")  # sequential and colour-blind safe
    colour_of = {b: cmap(i / max(1, budgets.size - 1) * 0.9) for i, b in enumerate(budgets)}
    for ax, arm in zip(axes[0], arms, strict=False):
        rows = table.scaling(arm)
        res = _arm_result(isoflop, arm)
        per_budget = {round(b.budget, 6): b for b in res.budgets} if isinstance(res, IsoflopArm) else {}
        for b, group in rows.groupby("budget"):
            colour = colour_of[float(b)]
            ax.scatter(group["params"], group["test_mse"], color=colour, s=20, label=f"{b:.1e} FLOPs")
            fitted = per_budget.get(round(float(b), 6))
            if fitted is not None and fitted.parabola is not None:
                par = fitted.parabola
                u = np.linspace(np.log(par.n_min), np.log(par.n_max), 60)  # the valley it was fitted to
                bracketed = fitted.bracketing == "bracketed"
                ax.plot(np.exp(u), par.c2 * u ** 2 + par.c1 * u + par.c0, color=colour, lw=1.2,
                        ls="-" if bracketed else ":")
                n_opt = fitted.N_opt
                if bracketed and n_opt is not None:
                    if n_opt.has_interval:  # from lo to hi: the percentile interval need not contain the value
                        ax.hlines([fitted.loss_opt], [n_opt.lo], [n_opt.hi], color=colour, lw=1.0)
                    ax.errorbar([n_opt.value], [fitted.loss_opt], color=colour, marker="*", ms=11, mec="k", mew=0.5)
        colour, _, label = arm_style(arm)
        note = (f"a = {_fmt(res.exponents['a'], res.bootstrap)}, b = {_fmt(res.exponents['b'])}"
                if isinstance(res, IsoflopArm) else getattr(res, "reason", ""))
        ax.set_title(textwrap.shorten(f"{label}: IsoFLOP curves", 60) + "\n" + textwrap.fill(note, 60),
                     fontsize=9, color=colour)
        log_axes(ax)
        ax.set_xlabel("parameters N")
        ax.set_ylabel(loss_label)
        _legend(ax, fontsize=7, title="budget (stars: minima; dotted: not bracketed)", title_fontsize=7)
        ax.grid(True, which="major", alpha=0.3)
    fig.tight_layout()
    return fig


def plot_optimal_allocation(joint: JointFile | None, isoflop: IsoflopFile | None) -> Figure:
    """N*(C) and S*(C): joint-law curves with bootstrap bands, IsoFLOP minima with intervals and their fit."""
    fig, (ax_n, ax_s) = plt.subplots(1, 2, figsize=(10.5, 4.4))
    drawn = False
    for arm in _arms(None, joint, isoflop):
        colour, marker, label = arm_style(arm)
        jres = _arm_result(joint, arm)
        if isinstance(jres, JointArm):
            ex, boot = jres.exponents, jres.fit.bootstrap
            _band(ax_n, jres.curves["N_opt"], colour, f"{label} joint law: a = {_fmt(ex['a'], boot)}")
            _band(ax_s, jres.curves["S_opt"], colour, f"{label} joint law: b = {_fmt(ex['b'], boot)}")
            drawn = True
        ires = _arm_result(isoflop, arm)
        if isinstance(ires, IsoflopArm):
            rows = [b for b in ires.budgets if b.bracketing == "bracketed"]
            for ax, key in ((ax_n, "N_opt"), (ax_s, "S_opt")):
                c = [b.budget for b in rows]
                ests = [getattr(b, key) for b in rows]
                v = np.array([e.value for e in ests])
                lo = np.array([e.lo if e.lo is not None else np.nan for e in ests])
                hi = np.array([e.hi if e.hi is not None else np.nan for e in ests])
                # bars from lo to hi: a percentile interval of a minimum need not contain the point value
                finite = np.isfinite(lo) & np.isfinite(hi)
                if finite.any():
                    ax.vlines(np.array(c)[finite], lo[finite], hi[finite], color=colour, lw=1.0)
                ax.errorbar(c, v, color=colour, marker=marker, ls="none", mec="k", mew=0.5,
                            label=f"{label} IsoFLOP minima")
            ex, boot = ires.exponents, ires.bootstrap
            _band(ax_n, ires.curves["N_opt"], colour, f"{label} IsoFLOP fit: a = {_fmt(ex['a'], boot)}", "--", 0.1)
            _band(ax_s, ires.curves["S_opt"], colour, f"{label} IsoFLOP fit: b = {_fmt(ex['b'], boot)}", "--", 0.1)
            drawn = True
    if not drawn:
        for ax in (ax_n, ax_s):
            no_data(ax, "no joint or IsoFLOP fit succeeded")
        return fig
    for ax, ylabel, title in ((ax_n, "compute-optimal parameters N*", "N*(C) ~ C^a"),
                              (ax_s, "compute-optimal training steps S*", "S*(C) = C / F(N*) ~ C^b")):
        log_axes(ax)
        ax.set_xlabel(COMPUTE_LABEL)
        ax.set_ylabel(ylabel)
        ax.set_title(title, fontsize=10)
        _legend(ax, fontsize=7)
        ax.grid(True, which="major", alpha=0.3)
    fig.tight_layout()
    return fig


def _interval_point(ax: plt.Axes, x: float, est: Estimate | None, **style: Any) -> bool:
    """One estimate as a point with its interval (none drawn without one); False when there is no estimate.

    The interval is drawn as a bar from lo to hi, not as errors about the value: a percentile
    interval of a biased estimate need not contain the point value.
    """
    if est is None or not math.isfinite(est.value):
        return False
    if est.has_interval:
        colour = style.get("color")
        ax.vlines([x], [est.lo], [est.hi], color=colour, lw=1.2, alpha=style.get("alpha", 1.0))
        ax.plot([x, x], [est.lo, est.hi], ls="none", marker="_", ms=6, color=colour, alpha=style.get("alpha", 1.0))
    ax.plot([x], [est.value], ls="none", **style)
    return True


def plot_staircase(joint: JointFile | None, frontier: FrontierFile | None, margin: float | None) -> Figure:
    """gamma_C per arm (joint law; envelope cross-check) beside paper 2's, and a, b per arm beside its 0.5."""
    fig, (ax_g, ax_ab) = plt.subplots(1, 2, figsize=(11.0, 4.6))
    present = _arms(None, joint, frontier)
    arms = [a for a in ARM_ORDER if a in present] + [a for a in present if a not in ARM_ORDER]
    x_of = {arm: float(i) for i, arm in enumerate(arms)}
    drawn = False
    legend = set()  # one legend entry per kind of marker

    def once(text: str) -> str | None:
        if text in legend:
            return None
        legend.add(text)
        return text

    for arm in arms:
        colour, marker, _ = arm_style(arm)
        x = x_of[arm]
        jres, fres = _arm_result(joint, arm), _arm_result(frontier, arm)
        if isinstance(jres, JointArm):
            drawn |= _interval_point(ax_g, x - 0.12, jres.exponents["gamma"], color=colour, marker=marker, ms=7,
                                     mec="k", mew=0.5, label=once("ours: joint law, L*(C) - E"))
            drawn |= _interval_point(ax_ab, x - 0.12, jres.exponents["a"], color=OKABE_ITO[0], marker="o", ms=6,
                                     label=once("a (N* ~ C^a)"))
            drawn |= _interval_point(ax_ab, x + 0.12, jres.exponents["b"], color=OKABE_ITO[1], marker="s", ms=6,
                                     label=once("b (D* ~ C^b)"))
        if isinstance(fres, FrontierArm):
            env = next((fres.envelope[k] for k in ("saturating", "power_law")
                        if isinstance(fres.envelope.get(k), LawResult)), None)
            if env is not None:
                drawn |= _interval_point(ax_g, x + 0.12, env.params["gamma"], color=colour, marker=marker, ms=7,
                                         mfc="none", alpha=0.8, label=once("ours: envelope fit (cross-check)"))
        paper = PAPER.get(arm)
        if paper is not None:
            ax_g.plot([x], [paper.gamma_c], marker="_", ms=22, mew=2.5, color="k", ls="none",
                      label=once("paper 2 (Ngo & Ravanbakhsh 2025)"))
    if not drawn:
        for ax in (ax_g, ax_ab):
            no_data(ax, "no joint-law or envelope fit of any arm")
        return fig
    ax_ab.axhline(0.5, color="k", ls="--", lw=1.0, label="paper 2: a ~ b ~ 0.5")
    if margin is not None:
        ax_ab.axhspan(0.5 * (1 - margin), 0.5 * (1 + margin), color="0.85", zorder=0,
                      label=f"verdict's margin: 0.5 x (1 +- {margin:g})")
    for ax, ylabel, title in ((ax_g, "compute exponent $\\gamma_C$", "$\\gamma_C$ along the symmetry staircase"),
                              (ax_ab, "compute-optimal exponent", "allocation: N* ~ C^a, D* ~ C^b")):
        ax.set_xticks([x_of[a] for a in arms], [arm_style(a)[2] for a in arms], rotation=30, ha="right",
                      fontsize=8)
        ax.set_xlim(-0.6, len(arms) - 0.4)
        ax.set_ylabel(ylabel)
        ax.set_title(title + " (bars: bootstrap intervals)", fontsize=10)
        _legend(ax, fontsize=7)
        ax.grid(True, axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


def plot_data_efficiency(data: DataEfficiencyFile | None) -> Figure:
    """Converged test loss vs training-set size per arm, the epochs each point reached, and the law L(D)."""
    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    drawn = False
    x_name = "training trajectories D"
    reasons = []
    for i, arm in enumerate(_arms(None, data)):
        res = _arm_result(data, arm)
        if not isinstance(res, DataEfficiencyArm):
            reasons.append(f"{arm}: {getattr(res, 'reason', 'no fit')}")
            continue
        colour, marker, label = arm_style(arm)
        if res.x == "data_fraction":
            x_name = "fraction of the training set"
        d = [p.D for p in res.points]
        loss = [p.test_mse for p in res.points]
        ax.plot(d, loss, color=colour, marker=marker, ms=6, mec="k", mew=0.5, lw=1.2, zorder=3,
                label=f"{label} (size {res.size})")
        for p in res.points:
            if p.epochs is not None:
                ax.annotate(f"{p.epochs:.3g} ep", (p.D, p.test_mse), textcoords="offset points",
                            xytext=(4, 4 - 9 * (i % 3)), fontsize=6.5, color=colour)  # arms' labels apart
        if isinstance(res.fit, LawResult):
            delta = _fmt(res.fit.params.get("delta"), res.fit.bootstrap)
            _band(ax, res.fit.curve, colour, f"{label}: {res.fit.formula}, $\\delta$ = {delta}", ":", 0.1)
        drawn = True
    if not drawn:
        no_data(ax, "; ".join(reasons) or "no data-efficiency cells")
        return fig
    log_axes(ax)
    ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))  # trajectories: plain counts
    ax.set_xlabel(x_name)
    ax.set_ylabel(LOSS_LABEL)
    ax.set_title("Data efficiency: converged test loss (early stopping); labels: epochs reached", fontsize=10)
    _legend(ax, fontsize=7)
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


def smooth(values: np.ndarray, window: int) -> np.ndarray:
    """Centred running median over `window` points (shrinking at the ends): robust to loss spikes."""
    return pd.Series(values).rolling(window, center=True, min_periods=1).median().to_numpy()


def plot_training_curves(summary: pd.DataFrame, runs_dir: Path | None, loss_label: str = TRAIN_LABEL) -> Figure:
    """Train loss vs optimizer step of every cell (from metrics.csv): smoothed, the raw curve as a faint band."""
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
        step, loss = metrics["step"].to_numpy(float), metrics["train_loss"].to_numpy(float)
        ax.plot(step, loss, color=colour, lw=0.5, alpha=0.15)
        ax.plot(step, smooth(loss, max(1, loss.size // 20)), color=colour, lw=1.0, alpha=0.8,
                label=None if row.arm in seen else label)
        seen.add(str(row.arm))
    if not seen:
        no_data(ax, f"no metrics.csv found for the {len(summary)} cells of the summary")
        return fig
    log_axes(ax)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel(loss_label)
    title = "Training curves of every cell (running median; faint: raw)"
    if missing:
        title += f" ({missing} without metrics.csv)"
    ax.set_title(title, fontsize=10)
    _legend(ax, fontsize=8)
    ax.grid(True, which="major", alpha=0.3)
    fig.tight_layout()
    return fig


def make_figures(summary: pd.DataFrame, fits: Fits, runs_dir: Path | None = None, study: str = RIGID
                 ) -> dict[str, Figure]:
    """Every figure of the study, by name (the names of eqscale.analysis.figures.figure_names(study))."""
    table = _table(summary)
    if study == FORCEFIELD:
        margin = fits.findings.settings.equivalence_margin if fits.findings is not None else None
        drawn = {
            "loss_vs_compute": lambda: plot_loss_vs_compute(table, fits.frontier, FF_LOSS_LABEL),
            "staircase": lambda: plot_staircase(fits.joint, fits.frontier, margin),
            "optimal_allocation": lambda: plot_optimal_allocation(fits.joint, fits.isoflop),
            "isoflop": lambda: plot_isoflop(table, fits.isoflop, FF_LOSS_LABEL),
            "training_curves": lambda: plot_training_curves(summary, runs_dir, FF_TRAIN_LABEL),
        }
        return {name: drawn[name]() for name in figure_names(FORCEFIELD)}
    return {
        "loss_vs_compute": plot_loss_vs_compute(table, fits.frontier),
        "isoflop": plot_isoflop(table, fits.isoflop),
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
    parser.add_argument("--study", choices=sorted(STUDIES), default=None,
                        help="whose figures to draw (default: the study findings.json names; rigid without it)")
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
    study = args.study or (study_key(fits.findings.study) if fits.findings is not None else RIGID)
    for name, fig in make_figures(summary, fits, args.runs, study).items():
        for path in save_figure(fig, args.out_dir, name):
            print(f"wrote {path}")
        plt.close(fig)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
