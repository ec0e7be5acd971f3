"""The joint law L(N, S) = E + A*N^-alpha + B*S^-beta of one arm and the compute-optimal allocation it implies.

With C = k*N*S (k FLOPs per parameter per step, the median of the arm's cells) the compute-optimal
N*(C) ~ C^a and S*(C) ~ C^b with a = beta/(alpha+beta), b = alpha/(alpha+beta).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from eqscale.analysis.bootstrap import (
    DEFAULT_CONFIDENCE,
    DEFAULT_RESAMPLES,
    Segments,
    bootstrap_law,
    curves_from,
    percentile_interval,
)
from eqscale.analysis.errors import FitError
from eqscale.analysis.powerlaw import JOINT, JointParams, fit_law, log_grid
from eqscale.analysis.results import Estimate, JointArm, LawResult, OptimalPoint
from eqscale.analysis.table import check_not_constant


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


def check_separable(n: np.ndarray, s: np.ndarray, budget: np.ndarray, what: str) -> None:
    """FitError when the cells cannot separate alpha from beta (one IsoFLOP line, or log N and log S collinear)."""
    budgets = np.unique(budget[np.isfinite(budget)])
    if budgets.size == 1 and np.isfinite(budget).all():
        raise FitError(f"{what}: all {n.size} cells lie on one IsoFLOP line (budget {budgets[0]:.3g} FLOPs), where "
                       "N and S are tied (N*S = const): alpha and beta cannot be separated; add budgets")
    logns = np.vstack([np.log(n), np.log(s)])
    centred = logns - logns.mean(axis=1, keepdims=True)
    sv = np.linalg.svd(centred, compute_uv=False) if n.size >= 2 else np.zeros(2)
    if n.size >= 2 and sv[0] > 0 and sv[1] / sv[0] < 1e-6:
        raise FitError(f"{what}: log N and log S are collinear over the {n.size} cells: alpha and beta cannot "
                       "be separated; vary size and steps independently (several budgets)")


def fit_joint(cells: pd.DataFrame, *, n_resamples: int = DEFAULT_RESAMPLES, seed: int = 0,
              confidence: float = DEFAULT_CONFIDENCE, what: str = "joint") -> JointArm:
    """Fit L(N, S) = E + A*N^-alpha + B*S^-beta to one arm's cells; derive N*(C), S*(C) with bootstrap."""
    n = cells["params"].to_numpy(float)
    s = cells["steps"].to_numpy(float)
    loss = cells["test_mse"].to_numpy(float)
    flops = cells["flops"].to_numpy(float)
    budget = cells["budget"].to_numpy(float)
    check_not_constant(loss, what)
    check_separable(n, s, budget, what)
    budgets = np.unique(budget[np.isfinite(budget)])
    k = float(np.median(flops / (n * s)))
    point = fit_law(JOINT, [n, s], loss, what=what)
    cgrid = log_grid(flops.min(), flops.max())
    at = budgets if budgets.size else np.quantile(flops, [0.0, 0.5, 1.0])
    strata = np.where(np.isfinite(budget), budget, -1.0)
    # one bootstrap row: the law's parameters, then the derived blocks (log_* in natural log)
    extra = Segments(a=1, b=1, gamma_implied=1, log_n_grid=cgrid.size, log_s_grid=cgrid.size,
                     log_loss_grid=cgrid.size, log_n_at=at.size, log_s_at=at.size, log_loss_at=at.size)
    row = Segments(params=JOINT.n_params, extra=extra.width)

    def derived(params: JointParams) -> np.ndarray:
        a, b, g = allocation_exponents(params)
        n_g, s_g, l_g = compute_optimal(params, k, cgrid)
        n_b, s_b, l_b = compute_optimal(params, k, at)
        return extra.pack(a=a, b=b, gamma_implied=g, log_n_grid=np.log(n_g), log_s_grid=np.log(s_g),
                          log_loss_grid=np.log(l_g), log_n_at=np.log(n_b), log_s_at=np.log(s_b),
                          log_loss_at=np.log(l_b))

    boot = bootstrap_law(JOINT, point, lambda idx: ([n[idx], s[idx]], loss[idx]), loss.size,
                         n_resamples=n_resamples, seed=seed, strata=strata, stratified_by="budget", derived=derived)
    samples = boot.columns(row.width)
    point_row = row.pack(params=np.asarray(point.params, float), extra=derived(point.params))
    lo, hi = percentile_interval(samples, confidence) if samples.shape[0] else (np.full(row.width, np.nan),) * 2
    x_point, x_lo, x_hi = (v[row["extra"]] for v in (point_row, lo, hi))

    def est(name: str, i: int = 0, log: bool = False) -> Estimate:
        j = extra[name].start + i
        f = np.exp if log else float  # np.exp, not math.exp: the same values as the curves' to the last bit
        return Estimate.of(float(f(x_point[j])), float(f(x_lo[j])), float(f(x_hi[j])))

    params = {name: Estimate.of(point_row[i], lo[i], hi[i]) for i, name in enumerate(JOINT.param_names)}
    notes = [f"exponent {name} is at its bound 0 ({term} shows no effect): the compute-optimal allocation is "
             "undefined" for name, term in (("alpha", "model size"), ("beta", "training steps"))
             if getattr(point.params, name) <= 1e-6]
    result = LawResult(law=JOINT.name, formula=JOINT.formula, params=params, n_points=point.n_points,
                       n_rows=point.n_rows, n_params=JOINT.n_params, rmse_log=point.rmse_log, r2_log=point.r2_log,
                       bootstrap=boot.info(confidence), curve=None, note="; ".join(notes) or None, point=point,
                       samples=samples[:, row["params"]])
    optimal = [OptimalPoint(budget=float(c), N=est("log_n_at", i, log=True), S=est("log_s_at", i, log=True),
                            loss=est("log_loss_at", i, log=True)) for i, c in enumerate(at)]
    return JointArm(fit=result, flops_per_param_step=k,
                    exponents={"a": est("a"), "b": est("b"), "gamma_implied": est("gamma_implied")}, optimal=optimal,
                    curves=curves_from(extra, {"N_opt": "log_n_grid", "S_opt": "log_s_grid",
                                              "loss_opt": "log_loss_grid"}, cgrid, x_point, x_lo, x_hi),
                    n_budgets=int(budgets.size), n_cells=int(loss.size))
