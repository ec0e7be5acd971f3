"""Scaling-law fits with bootstrap intervals: pure functions over the summary table.

Laws (test loss L is vertex MSE in m^2, fitted per arm):

* frontier  L(C) = E + A*C^-gamma over the lower envelope of loss vs training FLOPs C, and the pure
            power law L(C) = A*C^-gamma (E = 0);
* joint     L(N, S) = E + A*N^-alpha + B*S^-beta (N parameters, S optimizer steps). With
            C = k*N*S (k FLOPs per parameter per step, the median of the arm's cells) the compute-optimal
            N*(C) ~ C^a and S*(C) ~ C^b with a = beta/(alpha+beta), b = alpha/(alpha+beta);
* IsoFLOP   per budget a parabola of loss vs ln N; its vertex is N*(C); then N*(C) = G*C^a;
* data      L(D) = E + A*D^-delta over training-set size D (trajectories) at fixed compute.

The laws are fitted by powerlaw.py (Huber loss on log residuals, L-BFGS-B from a grid of starts).
Intervals come from a bootstrap over cells: cells resampled with replacement (within each budget line
where the fit needs every line), the fit redone on each resample, percentile intervals. Every fit
function returns a dataclass; `fit_all` runs them all per arm and returns plain JSON, recording a fit
that cannot be done with its reason.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from eqscale.analysis.powerlaw import (
    DATA,
    DATA_POWER,
    DEFAULT_CONFIDENCE,
    DEFAULT_RESAMPLES,
    FRONTIER,
    FRONTIER_POWER,
    JOINT,
    arm_seed,
    bootstrap,
    bootstrap_law,
    Curve,
    Estimate,
    fit_law,
    fit_with_bootstrap,
    FitError,
    JointParams,
    Law,
    LawResult,
    log_grid,
    params_from_vector,
    percentile_interval,
    Skipped,
    to_jsonable,
)

ARM_ORDER = ("gatr", "transformer", "transformer+aug", "gatr+aug")
SUMMARY_COLUMNS = ("arm", "size", "params", "steps", "flops", "budget", "data_fraction",
                   "num_train_trajectories", "test_mse")


# ---------------------------------------------------------------- the summary table


def prepare_summary(summary: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Rows usable for fitting and how many were dropped (missing or non-positive loss, FLOPs, size, steps)."""
    missing = [c for c in SUMMARY_COLUMNS if c not in summary.columns]
    if missing:
        raise FitError(f"the summary lacks column(s) {', '.join(missing)} (expected the output of eqscale collect)")
    df = summary.copy()
    for col in ("params", "steps", "flops", "budget", "data_fraction", "num_train_trajectories", "test_mse"):
        df[col] = pd.to_numeric(df[col], errors="coerce")
    needed = df[["params", "steps", "flops", "test_mse"]].to_numpy(dtype=float)
    ok = np.all(np.isfinite(needed) & (needed > 0), axis=1)
    n_dropped = int((~ok).sum())
    if n_dropped:
        warnings.warn(f"summary: dropped {n_dropped} of {len(df)} rows with missing or non-positive "
                      "params/steps/flops/test_mse", stacklevel=2)
    return df[ok].reset_index(drop=True), n_dropped


def arms_of(df: pd.DataFrame) -> list[str]:
    """Arms in the table, known ones first in a fixed order."""
    present = list(dict.fromkeys(df["arm"].astype(str)))
    return [a for a in ARM_ORDER if a in present] + sorted(a for a in present if a not in ARM_ORDER)


def scaling_cells(df: pd.DataFrame, arm: str) -> pd.DataFrame:
    """An arm's cells trained on its full training set (the scaling grid's cells)."""
    cells = df[df["arm"] == arm]
    if cells.empty:
        return cells
    full = np.isclose(cells["data_fraction"].to_numpy(float), np.nanmax(cells["data_fraction"].to_numpy(float)))
    return cells[full].reset_index(drop=True)


def _check_not_constant(loss: np.ndarray, what: str) -> None:
    loss = np.asarray(loss, float)
    if loss.size >= 2 and np.ptp(np.log(loss)) < 1e-12:
        raise FitError(f"{what}: all {loss.size} test losses are equal ({loss[0]:.4g} m^2): a power law cannot "
                       "be fitted to a constant")


# ---------------------------------------------------------------- compute frontier


def lower_envelope(flops: np.ndarray, loss: np.ndarray, budget: np.ndarray,
                   config: np.ndarray) -> np.ndarray:
    """The lower envelope of loss vs FLOPs: a (3, k) array of rows C, L, budget, one column per config on it.

    Seeds of one config (same size and steps) are averaged first (geometric mean of the loss). On a
    budget line the configs differ in FLOPs only by rounding, so each budget contributes its best
    config; configs without a budget compete on their own. Then a point stays only if no cheaper
    point has a lower loss.
    """
    _, inv = np.unique(config, return_inverse=True)
    counts = np.bincount(inv)
    c = np.bincount(inv, flops) / counts
    log_l = np.bincount(inv, np.log(loss)) / counts
    b = np.bincount(inv, budget) / counts  # NaN budget stays NaN
    has_budget = np.isfinite(b)
    order = np.lexsort((log_l, b))
    sorted_b = b[order]
    first = np.ones(order.size, dtype=bool)
    first[1:] = sorted_b[1:] != sorted_b[:-1]
    candidates = np.concatenate([order[first & np.isfinite(sorted_b)], np.flatnonzero(~has_budget)])
    candidates = candidates[np.argsort(c[candidates], kind="stable")]
    keep, best = [], math.inf
    for i in candidates:
        if log_l[i] < best:
            keep.append(i)
            best = log_l[i]
    keep = np.array(keep, dtype=int)
    return np.vstack([c[keep], np.exp(log_l[keep]), b[keep]])


@dataclass(frozen=True)
class FrontierArm:
    """Frontier fits of one arm: the envelope points and each law variant (or why it was skipped)."""

    points: dict[str, list[float | None]]
    primary: str
    variants: dict[str, LawResult | Skipped]
    n_cells: int
    status: str = "ok"


def _config_codes(cells: pd.DataFrame) -> np.ndarray:
    key = cells["size"].astype(str) + "|" + cells["steps"].astype(str)
    return pd.factorize(key)[0]


def fit_frontier(cells: pd.DataFrame, *, n_resamples: int = DEFAULT_RESAMPLES, seed: int = 0,
                 confidence: float = DEFAULT_CONFIDENCE, what: str = "frontier") -> FrontierArm:
    """Fit L(C) = E + A*C^-gamma and L(C) = A*C^-gamma to one arm's lower envelope, with bootstrap."""
    flops = cells["flops"].to_numpy(float)
    loss = cells["test_mse"].to_numpy(float)
    budget = cells["budget"].to_numpy(float)
    config = _config_codes(cells)
    _check_not_constant(loss, what)
    env = lower_envelope(flops, loss, budget, config)
    has_budget = np.isfinite(budget)
    strata = np.where(has_budget, budget, -1.0) if has_budget.any() else None
    grid = log_grid(env[0].min(), env[0].max()) if env.shape[1] >= 2 else log_grid(flops.min(), flops.max())

    def resample(idx: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
        e = lower_envelope(flops[idx], loss[idx], budget[idx], config[idx])
        return [e[0]], e[1]

    variants: dict[str, LawResult | Skipped] = {}
    for law in (FRONTIER, FRONTIER_POWER):
        try:
            variants[law.name] = fit_with_bootstrap(
                law, [env[0]], env[1], grid=grid, n_resamples=n_resamples, seed=seed, confidence=confidence,
                resample=resample, n_rows=flops.size, strata=strata,
                stratified_by="budget" if strata is not None else None,
                what=f"{what} ({law.formula}, {env.shape[1]} envelope points of {flops.size} cells)")
        except FitError as err:
            variants[law.name] = Skipped(str(err))
    ok = [name for name, v in variants.items() if isinstance(v, LawResult)]
    if not ok:
        raise FitError("; ".join(v.reason for v in variants.values() if isinstance(v, Skipped)))
    points = {"flops": env[0].tolist(), "test_mse": env[1].tolist(),
              "budget": [b if math.isfinite(b) else None for b in env[2]]}
    return FrontierArm(points=points, primary=ok[0], variants=variants, n_cells=int(flops.size))


# ---------------------------------------------------------------- joint law and compute-optimal allocation


def compute_optimal(params: JointParams, flops_per_param_step: float,
                    compute: np.ndarray | float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """N*(C), S*(C) and L(N*, S*) minimising L(N, S) subject to k*N*S = C."""
    e, a_, alpha, b_, beta = params
    c = np.asarray(compute, dtype=float) / flops_per_param_step
    if alpha <= 0 or beta <= 0:
        nan = np.full(np.shape(c), np.nan)
        return nan, nan, nan
    # setting dL/dN = 0 on N*S = c: alpha*A*N^-alpha = beta*B*S^-beta
    g = (alpha * a_ / (beta * b_)) ** (1.0 / (alpha + beta))
    n_opt = g * c ** (beta / (alpha + beta))
    s_opt = c / n_opt
    return n_opt, s_opt, JOINT(params, n_opt, s_opt)


def allocation_exponents(params: JointParams) -> tuple[float, float, float]:
    """(a, b, gamma): N* ~ C^a, S* ~ C^b and the implied frontier L* - E ~ C^-gamma."""
    alpha, beta = params.alpha, params.beta
    if alpha + beta <= 0:
        return math.nan, math.nan, math.nan
    return beta / (alpha + beta), alpha / (alpha + beta), alpha * beta / (alpha + beta)


@dataclass(frozen=True)
class JointArm:
    """Joint-law fit of one arm with its compute-optimal allocation."""

    fit: LawResult
    flops_per_param_step: float
    exponents: dict[str, Estimate]  # a, b, gamma_implied
    optimal: list[dict[str, Any]]  # per budget: budget, N, S, loss
    curves: dict[str, Curve]  # N_opt, S_opt, loss_opt vs C
    n_budgets: int
    n_cells: int
    status: str = "ok"


def fit_joint(cells: pd.DataFrame, *, n_resamples: int = DEFAULT_RESAMPLES, seed: int = 0,
              confidence: float = DEFAULT_CONFIDENCE, what: str = "joint") -> JointArm:
    """Fit L(N, S) = E + A*N^-alpha + B*S^-beta to one arm's cells; derive N*(C), S*(C) with bootstrap."""
    n = cells["params"].to_numpy(float)
    s = cells["steps"].to_numpy(float)
    loss = cells["test_mse"].to_numpy(float)
    flops = cells["flops"].to_numpy(float)
    budget = cells["budget"].to_numpy(float)
    _check_not_constant(loss, what)
    budgets = np.unique(budget[np.isfinite(budget)])
    if budgets.size == 1 and np.isfinite(budget).all():
        raise FitError(f"{what}: all {loss.size} cells lie on one IsoFLOP line (budget {budgets[0]:.3g} FLOPs), where "
                       "N and S are tied (N*S = const): alpha and beta cannot be separated; add budgets")
    logns = np.vstack([np.log(n), np.log(s)])
    centred = logns - logns.mean(axis=1, keepdims=True)
    sv = np.linalg.svd(centred, compute_uv=False) if loss.size >= 2 else np.zeros(2)
    if loss.size >= 2 and sv[0] > 0 and sv[1] / sv[0] < 1e-6:
        raise FitError(f"{what}: log N and log S are collinear over the {loss.size} cells: alpha and beta cannot "
                       "be separated; vary size and steps independently (several budgets)")
    k = float(np.median(flops / (n * s)))
    point = fit_law(JOINT, [n, s], loss, what=what)
    cgrid = log_grid(flops.min(), flops.max())
    at = budgets if budgets.size else np.quantile(flops, [0.0, 0.5, 1.0])
    strata = np.where(np.isfinite(budget), budget, -1.0)

    def derived(params: JointParams) -> np.ndarray:
        a, b, g = allocation_exponents(params)
        n_g, s_g, l_g = compute_optimal(params, k, cgrid)
        n_b, s_b, l_b = compute_optimal(params, k, at)
        return np.concatenate([[a, b, g], np.log(n_g), np.log(s_g), np.log(l_g), np.log(n_b), np.log(s_b),
                               np.log(l_b)])

    boot = bootstrap_law(JOINT, point, lambda idx: ([n[idx], s[idx]], loss[idx]), loss.size,
                         n_resamples=n_resamples, seed=seed, strata=strata, stratified_by="budget", derived=derived)
    width = 5 + 3 + 3 * cgrid.size + 3 * at.size
    samples = boot.samples if boot.samples.size else np.empty((0, width))
    point_vec = np.concatenate([np.asarray(point.params, float), derived(point.params)])
    lo, hi = percentile_interval(samples, confidence) if samples.shape[0] else (np.full(width, np.nan),) * 2
    # log-space columns come back as natural values
    log_cols = slice(8, width)
    point_nat = point_vec.copy()
    point_nat[log_cols] = np.exp(point_vec[log_cols])
    lo_nat, hi_nat = lo.copy(), hi.copy()
    lo_nat[log_cols], hi_nat[log_cols] = np.exp(lo[log_cols]), np.exp(hi[log_cols])

    def est(i: int) -> Estimate:
        return Estimate.of(point_nat[i], lo_nat[i], hi_nat[i])

    params = {name: est(i) for i, name in enumerate(JOINT.param_names)}
    notes = [f"exponent {name} is at its bound 0 ({term} shows no effect): the compute-optimal allocation is "
             "undefined" for name, term in (("alpha", "model size"), ("beta", "training steps"))
             if getattr(point.params, name) <= 1e-6]
    result = LawResult(law=JOINT.name, formula=JOINT.formula, params=params, n_points=point.n_points,
                       n_rows=point.n_rows, n_params=JOINT.n_params, rmse_log=point.rmse_log, r2_log=point.r2_log,
                       bootstrap=boot.info(confidence), curve=None, note="; ".join(notes) or None, point=point,
                       samples=samples[:, :5])
    g0 = 8
    m = cgrid.size

    def curve(j: int) -> Curve:
        sl = slice(g0 + j * m, g0 + (j + 1) * m)
        return Curve(cgrid, point_nat[sl], lo_nat[sl], hi_nat[sl])

    b0 = g0 + 3 * m
    optimal = [{"budget": float(c), "N": est(b0 + i), "S": est(b0 + at.size + i), "loss": est(b0 + 2 * at.size + i)}
               for i, c in enumerate(at)]
    return JointArm(fit=result, flops_per_param_step=k,
                    exponents={"a": est(5), "b": est(6), "gamma_implied": est(7)}, optimal=optimal,
                    curves={"N_opt": curve(0), "S_opt": curve(1), "loss_opt": curve(2)},
                    n_budgets=int(budgets.size), n_cells=int(loss.size))


# ---------------------------------------------------------------- IsoFLOP parabolas


class Parabola(NamedTuple):
    """loss = c2*u^2 + c1*u + c0 with u = ln N, and its vertex."""

    c2: float
    c1: float
    c0: float
    n_opt: float
    loss_opt: float
    bracketed: bool  # vertex inside the sampled range of N


def isoflop_parabola(n: np.ndarray, loss: np.ndarray, what: str = "IsoFLOP") -> Parabola:
    """Quadratic fit of loss vs ln N on one budget line and its minimum."""
    u = np.log(np.asarray(n, float))
    loss = np.asarray(loss, float)
    distinct = np.unique(u).size
    if distinct < 3:
        raise FitError(f"{what}: a parabola needs at least 3 distinct model sizes, got {distinct}")
    c2, c1, c0 = np.polyfit(u, loss, 2)
    if not c2 > 0:
        raise FitError(f"{what}: the parabola opens downward (curvature {c2:.3g}): no minimum on this budget")
    u_opt = -c1 / (2 * c2)
    return Parabola(float(c2), float(c1), float(c0), float(math.exp(u_opt)), float(c0 - c1 * c1 / (4 * c2)),
                    bool(u.min() <= u_opt <= u.max()))


@dataclass(frozen=True)
class IsoflopArm:
    """IsoFLOP analysis of one arm: per-budget parabolas and the power law N*(C) = G*C^a."""

    budgets: list[dict[str, Any]]
    exponents: dict[str, Estimate]  # a, b_implied (= 1 - a, since S* = C/(k*N*))
    G: Estimate
    n_points: int
    r2_log: float | None
    bootstrap: dict[str, Any]
    curves: dict[str, Curve]  # N_opt and S_opt vs C
    flops_per_param_step: float
    n_cells: int
    status: str = "ok"
    samples_a: np.ndarray | None = field(default=None, metadata={"json": False})  # bootstrap samples of a


def _isoflop_minima(n: np.ndarray, loss: np.ndarray, budget: np.ndarray,
                    budgets: np.ndarray) -> tuple[list[Parabola | str], np.ndarray, np.ndarray]:
    """Per budget a Parabola or the reason it failed; then (C, N*) of the bracketed minima."""
    out: list[Parabola | str] = []
    cs, ns = [], []
    for c in budgets:
        sel = budget == c
        try:
            p = isoflop_parabola(n[sel], loss[sel], what=f"budget {c:.3g}")
        except FitError as err:
            out.append(str(err))
            continue
        out.append(p)
        if p.bracketed:
            cs.append(c)
            ns.append(p.n_opt)
    return out, np.array(cs), np.array(ns)


def fit_isoflop(cells: pd.DataFrame, *, n_resamples: int = DEFAULT_RESAMPLES, seed: int = 0,
                confidence: float = DEFAULT_CONFIDENCE, what: str = "IsoFLOP") -> IsoflopArm:
    """Per budget the vertex of a parabola of loss vs ln N; then N*(C) = G*C^a by least squares in log space."""
    budget = cells["budget"].to_numpy(float)
    keep = np.isfinite(budget)
    n = cells["params"].to_numpy(float)[keep]
    loss = cells["test_mse"].to_numpy(float)[keep]
    flops = cells["flops"].to_numpy(float)[keep]
    steps = cells["steps"].to_numpy(float)[keep]
    budget = budget[keep]
    budgets = np.unique(budget)
    if budgets.size < 2:
        raise FitError(f"{what}: needs at least 2 budgets (IsoFLOP lines) to fit N*(C), got {budgets.size}"
                       + (f" ({budgets[0]:.3g} FLOPs)" if budgets.size else "")
                       + (f"; {int((~keep).sum())} cells have no budget" if (~keep).any() else ""))
    _check_not_constant(loss, what)
    k = float(np.median(flops / (n * steps)))
    parabolas, cs, ns = _isoflop_minima(n, loss, budget, budgets)
    if cs.size < 2:
        reasons = [f"{c:.3g}: {p if isinstance(p, str) else 'minimum outside the sampled sizes'}"
                   for c, p in zip(budgets, parabolas, strict=True) if isinstance(p, str) or not p.bracketed]
        raise FitError(f"{what}: needs the minimum bracketed on at least 2 budgets, got {cs.size} of "
                       f"{budgets.size} ({'; '.join(reasons)})")
    a, log_g = np.polyfit(np.log(cs), np.log(ns), 1)
    resid = log_g + a * np.log(cs) - np.log(ns)
    ss_tot = float(((np.log(ns) - np.log(ns).mean()) ** 2).sum())
    r2 = 1.0 - float((resid ** 2).sum()) / ss_tot if cs.size > 2 and ss_tot > 0 else None
    cgrid = log_grid(budgets.min(), budgets.max())

    def statistic(idx: np.ndarray) -> np.ndarray:
        pars, c_ok, n_ok = _isoflop_minima(n[idx], loss[idx], budget[idx], budgets)
        if c_ok.size < 2:
            raise FitError("resample: fewer than 2 bracketed minima")
        a_r, lg_r = np.polyfit(np.log(c_ok), np.log(n_ok), 1)
        per_budget = [math.log(p.n_opt) if isinstance(p, Parabola) and p.bracketed else math.nan for p in pars]
        return np.concatenate([[a_r, lg_r], lg_r + a_r * np.log(cgrid), per_budget])

    boot = bootstrap(statistic, loss.size, n_resamples=n_resamples, seed=seed, strata=budget,
                     stratified_by="budget")
    width = 2 + cgrid.size + budgets.size
    samples = boot.samples if boot.samples.size else np.empty((0, width))
    lo, hi = percentile_interval(samples, confidence) if samples.shape[0] else (np.full(width, np.nan),) * 2
    n_curve = Curve(cgrid, np.exp(log_g + a * np.log(cgrid)), np.exp(lo[2:2 + cgrid.size]),
                    np.exp(hi[2:2 + cgrid.size]))
    s_curve = Curve(cgrid, cgrid / (k * n_curve.value), cgrid / (k * n_curve.hi), cgrid / (k * n_curve.lo))
    rows = []
    for i, (c, p) in enumerate(zip(budgets, parabolas, strict=True)):
        sel = budget == c
        row: dict[str, Any] = {"budget": float(c), "n_cells": int(sel.sum()),
                               "sizes": sorted(set(n[sel].astype(int).tolist()))}
        if isinstance(p, str):
            row.update(status="skipped", reason=p)
        else:
            j = 2 + cgrid.size + i
            n_est = Estimate.of(p.n_opt, math.exp(lo[j]), math.exp(hi[j]))
            row.update(status="ok" if p.bracketed else "skipped",
                       reason=None if p.bracketed else "minimum outside the sampled sizes (not used in the fit)",
                       parabola={"c2": p.c2, "c1": p.c1, "c0": p.c0, "x": "ln N"}, N_opt=n_est,
                       S_opt=Estimate.of(c / (k * p.n_opt), c / (k * n_est.hi) if n_est.hi else math.nan,
                                         c / (k * n_est.lo) if n_est.lo else math.nan),
                       loss_opt=p.loss_opt, bracketed=p.bracketed)
        rows.append(row)
    a_est = Estimate.of(a, lo[0], hi[0])
    return IsoflopArm(budgets=rows,
                      exponents={"a": a_est, "b_implied": Estimate.of(1 - a, 1 - hi[0], 1 - lo[0])},
                      G=Estimate.of(math.exp(log_g), math.exp(lo[1]), math.exp(hi[1])), n_points=int(cs.size),
                      r2_log=r2, bootstrap=boot.info(confidence), curves={"N_opt": n_curve, "S_opt": s_curve},
                      flops_per_param_step=k, n_cells=int(loss.size), samples_a=samples[:, 0])


# ---------------------------------------------------------------- data efficiency


@dataclass(frozen=True)
class DataEfficiencyArm:
    """Test loss vs training-set size at fixed model and steps (fixed compute) for one arm."""

    fit: LawResult
    size: str
    steps: int
    budget: float | None
    x: str  # the column used as D
    points: dict[str, list[float]]
    n_cells: int
    status: str = "ok"


def data_efficiency_cells(cells: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """The arm's (size, steps) group with the most distinct training-set sizes, and the column used as D."""
    x_col = "num_train_trajectories"
    if cells[x_col].isna().all():
        x_col = "data_fraction"  # older run records without trajectory counts: fractions of one training set
    best, best_count = None, 0
    for _, group in cells.groupby(["size", "steps"], sort=True):
        count = group[x_col].dropna().nunique()
        if count > best_count:
            best, best_count = group, count
    if best is None or best_count < 2:
        raise FitError(f"data efficiency: no (size, steps) group of this arm has 2 or more training-set sizes "
                       f"(most: {best_count})")
    return best.reset_index(drop=True), x_col


def fit_data_efficiency(cells: pd.DataFrame, *, n_resamples: int = DEFAULT_RESAMPLES, seed: int = 0,
                        confidence: float = DEFAULT_CONFIDENCE, what: str = "data efficiency",
                        grid: np.ndarray | None = None) -> DataEfficiencyArm:
    """Fit L(D) = E + A*D^-delta; with fewer than 4 distinct D, the pure power law L = A*D^-delta (noted)."""
    group, x_col = data_efficiency_cells(cells)
    d = group[x_col].to_numpy(float)
    loss = group["test_mse"].to_numpy(float)
    _check_not_constant(loss, what)
    distinct = np.unique(d[np.isfinite(d)]).size
    law, note = DATA, None
    if distinct < DATA.n_params + 1:
        law = DATA_POWER
        note = (f"{distinct} distinct training-set sizes are too few for {DATA.formula} (needs "
                f"{DATA.n_params + 1}); fitted {DATA_POWER.formula} instead")
    grid = log_grid(np.nanmin(d), np.nanmax(d)) if grid is None else grid
    # with replicates (seeds) at every size, resample within each size so every resample keeps the
    # design; with one run per size that would return the same data every time, so resample freely
    _, counts = np.unique(d, return_counts=True)
    replicated = bool(counts.min() >= 2)
    result = fit_with_bootstrap(law, [d], loss, grid=grid, n_resamples=n_resamples, seed=seed,
                                confidence=confidence, what=f"{what} ({distinct} training-set sizes)", note=note,
                                strata=d if replicated else None, n_rows=d.size,
                                stratified_by=x_col if replicated else None)
    budgets = group["budget"].dropna().unique()
    return DataEfficiencyArm(fit=result, size=str(group["size"].iloc[0]), steps=int(group["steps"].iloc[0]),
                             budget=float(budgets[0]) if budgets.size else None, x=x_col,
                             points={"D": d.tolist(), "test_mse": loss.tolist()}, n_cells=int(loss.size))


# ---------------------------------------------------------------- comparisons between arms


def _curve_samples(law: Law, result: LawResult, x: np.ndarray, m: int) -> np.ndarray:
    """The law of each of the first m bootstrap parameter samples, evaluated at x: shape (m, len(x))."""
    return np.array([law(params_from_vector(law, v), x) for v in result.samples[:m]])


def paired_ratio(law_a: Law, result_a: LawResult, law_b: Law, result_b: LawResult, x: float,
                 confidence: float) -> Estimate:
    """L_a(x) / L_b(x) with an interval from pairing the arms' (independent) bootstrap resamples."""
    value = float(law_a(result_a.point.params, x) / law_b(result_b.point.params, x))
    m = min(result_a.samples.shape[0], result_b.samples.shape[0])
    if m < 2:
        return Estimate.of(value)
    xs = np.array([x], dtype=float)
    ratio = _curve_samples(law_a, result_a, xs, m) / _curve_samples(law_b, result_b, xs, m)
    lo, hi = percentile_interval(ratio, confidence)
    return Estimate.of(value, lo[0], hi[0])


def paired_degradation_ratio(law_a: Law, result_a: LawResult, law_b: Law, result_b: LawResult, small: float,
                             large: float, confidence: float) -> Estimate:
    """[L_a(small)/L_a(large)] / [L_b(small)/L_b(large)]: how much more arm a suffers from less data than b."""
    xs = np.array([small, large], dtype=float)

    def degradation(law: Law, params: Any) -> float:
        lo_d, hi_d = law(params, xs)
        return float(lo_d / hi_d)

    value = degradation(law_a, result_a.point.params) / degradation(law_b, result_b.point.params)
    m = min(result_a.samples.shape[0], result_b.samples.shape[0])
    if m < 2:
        return Estimate.of(value)
    ca, cb = _curve_samples(law_a, result_a, xs, m), _curve_samples(law_b, result_b, xs, m)
    lo, hi = percentile_interval(((ca[:, 0] / ca[:, 1]) / (cb[:, 0] / cb[:, 1]))[:, None], confidence)
    return Estimate.of(value, lo[0], hi[0])


def paired_difference(value_a: float, samples_a: np.ndarray, value_b: float, samples_b: np.ndarray,
                      confidence: float) -> Estimate:
    """a - b with an interval from pairing independent bootstrap samples."""
    m = min(samples_a.size, samples_b.size)
    if m < 2:
        return Estimate.of(value_a - value_b)
    lo, hi = percentile_interval((samples_a[:m] - samples_b[:m])[:, None], confidence)
    return Estimate.of(value_a - value_b, lo[0], hi[0])


LAWS_BY_NAME = {("frontier", FRONTIER.name): FRONTIER, ("frontier", FRONTIER_POWER.name): FRONTIER_POWER,
                ("data", DATA.name): DATA, ("data", DATA_POWER.name): DATA_POWER}


def compare_frontiers(arms: dict[str, FrontierArm | Skipped], budgets: np.ndarray,
                      confidence: float) -> dict[str, Any]:
    """Per other arm vs GATr: loss ratio at each shared budget (primary laws) and gamma difference (power laws)."""
    out: dict[str, Any] = {}
    ref = arms.get("gatr")
    for arm, res in arms.items():
        if arm == "gatr":
            continue
        key = f"{arm}/gatr"
        if not isinstance(ref, FrontierArm) or not isinstance(res, FrontierArm):
            missing = [a for a, r in (("gatr", ref), (arm, res)) if not isinstance(r, FrontierArm)]
            out[key] = Skipped(f"no frontier fit for {', '.join(missing)}")
            continue
        lo = max(min(ref.points["flops"]), min(res.points["flops"]))
        hi = min(max(ref.points["flops"]), max(res.points["flops"]))
        shared = [float(b) for b in budgets if lo * 0.9 <= b <= hi * 1.1]  # budget lines sit a step below budget
        ra, rb = res.variants[res.primary], ref.variants[ref.primary]
        ratios = [{"budget": b, "ratio": paired_ratio(LAWS_BY_NAME["frontier", res.primary], ra,
                                                      LAWS_BY_NAME["frontier", ref.primary], rb, b, confidence)}
                  for b in shared]
        entry: dict[str, Any] = {"status": "ok", "ratio_law": f"{res.primary}/{ref.primary}", "at_budget": ratios}
        pa, pb = res.variants.get("power_law"), ref.variants.get("power_law")
        if isinstance(pa, LawResult) and isinstance(pb, LawResult):
            entry["gamma_difference"] = paired_difference(pa.point.params.gamma, pa.samples[:, -1],
                                                          pb.point.params.gamma, pb.samples[:, -1], confidence)
        else:
            entry["gamma_difference"] = None
        if not shared:
            entry["note"] = "the arms' frontiers share no budget"
        out[key] = entry
    return out


def compare_exponent(arms: dict[str, Any], get: Callable[[Any], tuple[float, np.ndarray]],
                     confidence: float, name: str) -> dict[str, Any]:
    """Per other arm: (its exponent) - (GATr's), paired bootstrap interval."""
    out: dict[str, Any] = {}
    ref = arms.get("gatr")
    for arm, res in arms.items():
        if arm == "gatr":
            continue
        key = f"{arm}-gatr"
        if isinstance(ref, Skipped) or ref is None or isinstance(res, Skipped):
            out[key] = Skipped(f"needs {name} fits for both gatr and {arm}")
            continue
        va, sa = get(res)
        vb, sb = get(ref)
        out[key] = {"status": "ok", f"{name}_difference": paired_difference(va, sa, vb, sb, confidence)}
    return out


DATA_PAIRS = (("transformer", "gatr"), ("transformer+aug", "gatr"), ("transformer", "transformer+aug"))


def compare_data_efficiency(arms: dict[str, DataEfficiencyArm | Skipped], confidence: float) -> dict[str, Any]:
    """Per pair of arms: loss ratios at the smallest and largest shared training-set size, and the
    degradation ratio (how much more the first arm's loss grows from the largest to the smallest size).

    The degradation ratio separates data efficiency from an overall offset: an arm that is worse by
    the same factor at every size is not less data-efficient.
    """
    out: dict[str, Any] = {}
    for a, b in DATA_PAIRS:
        key = f"{a}/{b}"
        ra, rb = arms.get(a), arms.get(b)
        if not isinstance(ra, DataEfficiencyArm) or not isinstance(rb, DataEfficiencyArm):
            missing = [x for x, r in ((a, ra), (b, rb)) if not isinstance(r, DataEfficiencyArm)]
            out[key] = Skipped(f"no data-efficiency fit for {', '.join(missing)}")
            continue
        if ra.x != rb.x:
            out[key] = Skipped(f"{a} is measured in {ra.x} but {b} in {rb.x}")
            continue
        small = max(min(ra.points["D"]), min(rb.points["D"]))
        large = min(max(ra.points["D"]), max(rb.points["D"]))
        if not small < large:
            out[key] = Skipped("the arms share no range of training-set sizes")
            continue
        la, lb = LAWS_BY_NAME["data", ra.fit.law], LAWS_BY_NAME["data", rb.fit.law]
        out[key] = {"status": "ok", "D_small": float(small), "D_large": float(large),
                    "ratio_at_small": paired_ratio(la, ra.fit, lb, rb.fit, small, confidence),
                    "ratio_at_large": paired_ratio(la, ra.fit, lb, rb.fit, large, confidence),
                    "degradation_ratio": paired_degradation_ratio(la, ra.fit, lb, rb.fit, small, large, confidence)}
    return out


# ---------------------------------------------------------------- everything, per arm


FITTERS: dict[str, Callable[..., Any]] = {"frontier": fit_frontier, "joint": fit_joint, "isoflop": fit_isoflop,
                                          "data_efficiency": fit_data_efficiency}
WHAT = {"frontier": "frontier", "joint": "joint fit", "isoflop": "IsoFLOP", "data_efficiency": "data efficiency"}


def _run(task: tuple[str, str, pd.DataFrame, dict[str, Any]]) -> Any:
    """One (fit, arm): its result, or Skipped with the FitError's message."""
    kind, arm, cells, opts = task
    try:
        return FITTERS[kind](cells, what=f"{WHAT[kind]} of {arm}", **opts)
    except FitError as err:
        return Skipped(str(err))


def fit_all(summary: pd.DataFrame, *, n_resamples: int = DEFAULT_RESAMPLES, seed: int = 0,
            confidence: float = DEFAULT_CONFIDENCE, jobs: int = 1) -> dict[str, dict[str, Any]]:
    """Every fit of every arm, JSON-ready: {"frontier": ..., "joint": ..., "isoflop": ..., "data_efficiency": ...}.

    A fit that cannot be done is recorded as {"status": "skipped", "reason": ...}; only a summary
    without the needed columns raises FitError. `jobs` > 1 runs the (fit, arm) pairs in that many
    processes; every pair has its own seed, so the numbers do not depend on `jobs`.
    """
    if not 0 < confidence < 1:
        raise FitError(f"confidence must be in (0, 1), got {confidence}")
    if n_resamples < 0:
        raise FitError(f"the number of bootstrap resamples must be >= 0, got {n_resamples}")
    df, n_dropped = prepare_summary(summary)
    arms = arms_of(df)
    header = {"n_cells": int(len(df)), "n_dropped": n_dropped, "arms_present": arms,
              "bootstrap": {"resamples": n_resamples, "seed": seed, "confidence": confidence,
                            "method": "cells resampled with replacement (within budget lines where noted); "
                                      "refits warm-started from the point fit; percentile intervals"}}
    if n_dropped:
        header["dropped_reason"] = "missing or non-positive params/steps/flops/test_mse (e.g. a failed run)"
    tasks = []
    for kind in FITTERS:
        for arm in arms:
            cells = df[df["arm"] == arm].reset_index(drop=True) if kind == "data_efficiency" else scaling_cells(df, arm)
            opts = {"n_resamples": n_resamples, "confidence": confidence, "seed": arm_seed(seed, kind, arm)}
            tasks.append((kind, arm, cells, opts))
    if jobs > 1 and len(tasks) > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=min(jobs, len(tasks))) as pool:
            results = list(pool.map(_run, tasks))
    else:
        results = [_run(t) for t in tasks]
    by_kind: dict[str, dict[str, Any]] = {kind: {} for kind in FITTERS}
    for (kind, arm, _, _), res in zip(tasks, results, strict=True):
        by_kind[kind][arm] = res
    frontier, joint, isoflop, data = (by_kind[k] for k in FITTERS)

    budgets = np.unique(df["budget"].to_numpy(float)[np.isfinite(df["budget"].to_numpy(float))])
    single = None if "gatr" in arms and len(arms) > 1 else (
        f"comparisons need gatr and another arm; the summary has only: {', '.join(arms) or 'nothing'}")

    def compared(make: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        return {"status": "skipped", "reason": single} if single else make()

    out = {
        "frontier": {"kind": "frontier", "laws": [FRONTIER.formula, FRONTIER_POWER.formula], **header,
                     "arms": frontier, "comparisons": compared(lambda: compare_frontiers(frontier, budgets,
                                                                                         confidence))},
        "joint": {"kind": "joint", "law": JOINT.formula,
                  "compute": "C = k*N*S, k = median FLOPs/(params*steps) of the arm", **header, "arms": joint,
                  "comparisons": compared(lambda: compare_exponent(
                      joint, lambda r: (r.exponents["a"].value, _joint_a(r)), confidence, "a"))},
        "isoflop": {"kind": "isoflop", "law": "per budget loss = c2*(ln N)^2 + c1*ln N + c0; N*(C) = G*C^a",
                    **header, "arms": isoflop,
                    "comparisons": compared(lambda: compare_exponent(
                        isoflop, lambda r: (r.exponents["a"].value, r.samples_a), confidence, "a"))},
        "data_efficiency": {"kind": "data_efficiency", "laws": [DATA.formula, DATA_POWER.formula],
                            "fallback": "the pure power law when an arm has fewer than 4 distinct training-set sizes",
                            **header, "arms": data,
                            "comparisons": compared(lambda: compare_data_efficiency(data, confidence))},
    }
    return {k: to_jsonable(v) for k, v in out.items()}


def _joint_a(res: JointArm) -> np.ndarray:
    s = res.fit.samples
    return s[:, 4] / (s[:, 2] + s[:, 4]) if s is not None and s.size else np.empty(0)
