"""IsoFLOP analysis of one arm (approach 2): per budget a parabola of loss vs ln N and its vertex N*(C).

Each budget line is an IsoFLOP curve S = C / F(N), so the vertex is the compute-optimal size under
the study's own FLOP counting; N*(C) = G*C^a by least squares over the budgets whose vertex the
sampled sizes bracket, and S*(C) = C / F(N*(C)) with b its slope. This is the cross-check of the
joint law's allocation. Each budget says whether its minimum is bracketed, and if not, on which side.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import pandas as pd

from eqscale.analysis.allocation import slopes
from eqscale.analysis.bootstrap import DEFAULT_CONFIDENCE, DEFAULT_RESAMPLES, Segments, bootstrap, curve, estimate
from eqscale.analysis.compute import ComputeModel
from eqscale.analysis.errors import FitError
from eqscale.analysis.powerlaw import log_grid
from eqscale.analysis.results import IsoflopArm, IsoflopBudget, ParabolaFit
from eqscale.analysis.table import check_not_constant

BRACKETED, BELOW, ABOVE, NO_MINIMUM = ("bracketed", "below the smallest size", "above the largest size",
                                       "no minimum")


class Parabola(NamedTuple):
    """loss = c2*u^2 + c1*u + c0 with u = ln N, and its vertex."""

    c2: float
    c1: float
    c0: float
    n_opt: float
    loss_opt: float
    bracketing: str  # BRACKETED, BELOW or ABOVE the sampled sizes
    n_min: float  # the sizes the parabola was fitted to
    n_max: float

    @property
    def bracketed(self) -> bool:
        """Whether the vertex lies within the sampled sizes."""
        return self.bracketing == BRACKETED


WINDOW = 1  # sizes on each side of the best one that the parabola sees


def isoflop_parabola(n: np.ndarray, loss: np.ndarray, what: str = "IsoFLOP") -> Parabola:
    """Quadratic fit of loss vs ln N around the best size of one budget line, and its minimum.

    Only the best size (lowest seed-mean loss) and its neighbours on the ladder enter the fit: a
    parabola describes the valley near its bottom only; sizes decades away (and an uneven ladder whose
    F(N) bends) pull the vertex off -- on the paper preset's GATr ladder by about 0.1 in the exponent
    with all sizes, 0.02 with the neighbours. With the best size at an end of the ladder the minimum
    is not bracketed.
    """
    u = np.log(np.asarray(n, float))
    loss = np.asarray(loss, float)
    sizes, which = np.unique(u, return_inverse=True)
    if sizes.size < 3:
        raise FitError(f"{what}: a parabola needs at least 3 distinct model sizes, got {sizes.size}")
    mean_log = np.bincount(which, np.log(loss)) / np.bincount(which)
    best = int(np.argmin(mean_log))
    if best == 0 or best == sizes.size - 1:
        # the valley's bottom is not inside the ladder: fit the three end sizes, but it is not bracketed
        lo, hi = (0, 3) if best == 0 else (sizes.size - 3, sizes.size)
        end = BELOW if best == 0 else ABOVE
    else:
        lo, hi, end = max(0, best - WINDOW), min(sizes.size, best + WINDOW + 1), None
    near = (u >= sizes[lo]) & (u <= sizes[hi - 1])
    u, loss = u[near], loss[near]
    c2, c1, c0 = _quadratic(u, loss)
    if not c2 > 0:
        raise FitError(f"{what}: the parabola opens downward (curvature {c2:.3g}): no minimum on this budget")
    u_opt = -c1 / (2 * c2)
    side = end or (BELOW if u_opt < u.min() else ABOVE if u_opt > u.max() else BRACKETED)
    # a nearly flat parabola can put its vertex absurdly far away: clip before exponentiating (still unbracketed)
    n_opt = math.exp(min(max(u_opt, u.min() - 50.0), u.max() + 50.0))
    return Parabola(float(c2), float(c1), float(c0), n_opt, float(c0 - c1 * c1 / (4 * c2)), side,
                    float(math.exp(u.min())), float(math.exp(u.max())))


def _quadratic(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Least-squares c2, c1, c0 of y = c2*x^2 + c1*x + c0 (np.polyfit without its overhead; x centred)."""
    m = x.mean()
    xc = x - m
    design = np.stack([xc * xc, xc, np.ones_like(xc)], axis=1)
    a2, a1, a0 = np.linalg.lstsq(design, y, rcond=None)[0]
    return np.array([a2, a1 - 2 * a2 * m, a0 - a1 * m + a2 * m * m])


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


def fit_isoflop(cells: pd.DataFrame, model: ComputeModel, *, eval_loss: np.ndarray | None = None,
                n_resamples: int = DEFAULT_RESAMPLES, seed: int = 0, confidence: float = DEFAULT_CONFIDENCE,
                what: str = "IsoFLOP") -> IsoflopArm:
    """Per budget the vertex of a parabola of loss vs ln N; then N*(C) = G*C^a and S*(C) = C/F(N*(C))."""
    budget = cells["budget"].to_numpy(float)
    keep = np.isfinite(budget)
    n = cells["params"].to_numpy(float)[keep]
    loss = cells["test_mse"].to_numpy(float)[keep]
    evals = eval_loss[:, keep] if eval_loss is not None else None
    budget = budget[keep]
    budgets = np.unique(budget)
    if budgets.size < 2:
        raise FitError(f"{what}: needs at least 2 budgets (IsoFLOP lines) to fit N*(C), got {budgets.size}"
                       + (f" ({budgets[0]:.3g} FLOPs)" if budgets.size else "")
                       + (f"; {int((~keep).sum())} cells have no budget" if (~keep).any() else ""))
    check_not_constant(loss, what)
    parabolas, cs, ns = isoflop_minima(n, loss, budget, budgets)
    if cs.size < 2:
        reasons = [f"{c:.3g}: {p if isinstance(p, str) else 'minimum ' + p.bracketing}"
                   for c, p in zip(budgets, parabolas, strict=True) if isinstance(p, str) or not p.bracketed]
        raise FitError(f"{what}: needs the minimum bracketed on at least 2 budgets, got {cs.size} of "
                       f"{budgets.size} ({'; '.join(reasons)})")
    a, log_g = np.polyfit(np.log(cs), np.log(ns), 1)
    b = float(slopes(np.log(cs), (np.log(cs) - model.log_F(np.log(ns)))[None, :])[0])
    resid = log_g + a * np.log(cs) - np.log(ns)
    ss_tot = float(((np.log(ns) - np.log(ns).mean()) ** 2).sum())
    r2 = 1.0 - float((resid ** 2).sum()) / ss_tot if cs.size > 2 and ss_tot > 0 else None
    cgrid = log_grid(budgets.min(), budgets.max())
    seg = Segments(a=1, b=1, log_g=1, log_n_grid=cgrid.size, log_n_at=budgets.size)

    def statistic(r: int, idx: np.ndarray) -> np.ndarray:
        values = loss if evals is None else evals[r]
        pars, c_ok, n_ok = isoflop_minima(n[idx], values[idx], budget[idx], budgets)
        if c_ok.size < 2:
            raise FitError("resample: fewer than 2 bracketed minima")
        a_r, lg_r = np.polyfit(np.log(c_ok), np.log(n_ok), 1)
        b_r = slopes(np.log(c_ok), (np.log(c_ok) - model.log_F(np.log(n_ok)))[None, :])[0]
        per_budget = [math.log(p.n_opt) if isinstance(p, Parabola) and p.bracketed else math.nan for p in pars]
        return seg.pack(a=a_r, b=b_r, log_g=lg_r, log_n_grid=lg_r + a_r * np.log(cgrid), log_n_at=per_budget)

    boot = bootstrap(statistic, loss.size, n_resamples=n_resamples, seed=seed, strata=budget,
                     stratified_by="budget")
    cols = seg.unpack(boot.columns(seg.width))
    log_n_curve = log_g + a * np.log(cgrid)
    n_curve = curve(cgrid, np.exp(log_n_curve), np.exp(cols["log_n_grid"]), confidence)
    s_curve = curve(cgrid, cgrid / model.F(np.exp(log_n_curve)), cgrid[None, :] / model.F(np.exp(cols["log_n_grid"])),
                    confidence)
    rows = []
    for i, (c, p) in enumerate(zip(budgets, parabolas, strict=True)):
        sel = budget == c
        common = {"budget": float(c), "n_cells": int(sel.sum()), "sizes": sorted(set(n[sel].astype(int).tolist()))}
        if isinstance(p, str):
            rows.append(IsoflopBudget(**common, status="skipped", reason=p, bracketing=NO_MINIMUM))
            continue
        n_est = estimate(p.n_opt, np.exp(cols["log_n_at"][:, i]), confidence)
        s_est = n_est.map(lambda v: float(c / model.F(v)), decreasing=True)
        rows.append(IsoflopBudget(
            **common, status="ok" if p.bracketed else "skipped",
            reason=None if p.bracketed else f"minimum {p.bracketing} (not used in the fit)", bracketing=p.bracketing,
            parabola=ParabolaFit(p.c2, p.c1, p.c0, p.n_min, p.n_max), N_opt=n_est, S_opt=s_est, loss_opt=p.loss_opt))
    samples = {"a": cols["a"][:, 0], "b": cols["b"][:, 0], "a_minus_b": cols["a"][:, 0] - cols["b"][:, 0]}
    return IsoflopArm(budgets=rows,
                      exponents={"a": estimate(float(a), samples["a"], confidence),
                                 "b": estimate(b, samples["b"], confidence),
                                 "a_minus_b": estimate(float(a) - b, samples["a_minus_b"], confidence)},
                      compute_range=[float(cs.min()), float(cs.max())],
                      G=estimate(math.exp(log_g), np.exp(cols["log_g"][:, 0]), confidence), n_points=int(cs.size),
                      r2_log=r2, bootstrap=boot.info(confidence), curves={"N_opt": n_curve, "S_opt": s_curve},
                      n_cells=int(loss.size), samples=samples)

