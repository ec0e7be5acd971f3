"""IsoFLOP analysis of one arm: per budget a parabola of loss vs ln N and its vertex N*(C); then N*(C) = G*C^a."""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import pandas as pd

from eqscale.analysis.bootstrap import DEFAULT_CONFIDENCE, DEFAULT_RESAMPLES, Segments, bootstrap, percentile_interval
from eqscale.analysis.errors import FitError
from eqscale.analysis.powerlaw import log_grid
from eqscale.analysis.results import Curve, Estimate, IsoflopArm, IsoflopBudget, ParabolaFit
from eqscale.analysis.table import check_not_constant


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


def isoflop_minima(n: np.ndarray, loss: np.ndarray, budget: np.ndarray,
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
    check_not_constant(loss, what)
    k = float(np.median(flops / (n * steps)))
    parabolas, cs, ns = isoflop_minima(n, loss, budget, budgets)
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
    seg = Segments(a=1, log_g=1, log_n_grid=cgrid.size, log_n_at=budgets.size)

    def statistic(idx: np.ndarray) -> np.ndarray:
        pars, c_ok, n_ok = isoflop_minima(n[idx], loss[idx], budget[idx], budgets)
        if c_ok.size < 2:
            raise FitError("resample: fewer than 2 bracketed minima")
        a_r, lg_r = np.polyfit(np.log(c_ok), np.log(n_ok), 1)
        per_budget = [math.log(p.n_opt) if isinstance(p, Parabola) and p.bracketed else math.nan for p in pars]
        return seg.pack(a=a_r, log_g=lg_r, log_n_grid=lg_r + a_r * np.log(cgrid), log_n_at=per_budget)

    boot = bootstrap(statistic, loss.size, n_resamples=n_resamples, seed=seed, strata=budget,
                     stratified_by="budget")
    samples = boot.columns(seg.width)
    lo, hi = percentile_interval(samples, confidence) if samples.shape[0] else (np.full(seg.width, np.nan),) * 2
    n_curve = Curve(cgrid, np.exp(log_g + a * np.log(cgrid)), np.exp(lo[seg["log_n_grid"]]),
                    np.exp(hi[seg["log_n_grid"]]))
    s_curve = Curve(cgrid, cgrid / (k * n_curve.value), cgrid / (k * n_curve.hi), cgrid / (k * n_curve.lo))
    rows = []
    for i, (c, p) in enumerate(zip(budgets, parabolas, strict=True)):
        sel = budget == c
        common = {"budget": float(c), "n_cells": int(sel.sum()), "sizes": sorted(set(n[sel].astype(int).tolist()))}
        if isinstance(p, str):
            rows.append(IsoflopBudget(**common, status="skipped", reason=p))
            continue
        j = seg["log_n_at"].start + i
        n_est = Estimate.of(p.n_opt, math.exp(lo[j]), math.exp(hi[j]))
        rows.append(IsoflopBudget(
            **common, status="ok" if p.bracketed else "skipped",
            reason=None if p.bracketed else "minimum outside the sampled sizes (not used in the fit)",
            parabola=ParabolaFit(p.c2, p.c1, p.c0), N_opt=n_est,
            S_opt=Estimate.of(c / (k * p.n_opt), c / (k * n_est.hi) if n_est.hi else math.nan,
                              c / (k * n_est.lo) if n_est.lo else math.nan),
            loss_opt=p.loss_opt, bracketed=p.bracketed))
    a_i, g_i = seg["a"].start, seg["log_g"].start
    return IsoflopArm(budgets=rows,
                      exponents={"a": Estimate.of(a, lo[a_i], hi[a_i]),
                                 "b_implied": Estimate.of(1 - a, 1 - hi[a_i], 1 - lo[a_i])},
                      G=Estimate.of(math.exp(log_g), math.exp(lo[g_i]), math.exp(hi[g_i])), n_points=int(cs.size),
                      r2_log=r2, bootstrap=boot.info(confidence), curves={"N_opt": n_curve, "S_opt": s_curve},
                      flops_per_param_step=k, n_cells=int(loss.size), samples_a=samples[:, a_i])
