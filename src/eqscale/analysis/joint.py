"""The joint law L(N, S) = E + A*N^-alpha + B*S^-beta of one arm and its compute-optimal allocation.

The allocation is found along the family's real IsoFLOP curves S = C / F(N) (allocation.py), not
on C = k*N*S: N*(C), S*(C), the frontier L*(C) = min over N of L(N, C / F(N)) and the exponents a, b,
gamma over the studied range of budgets. Intervals: a bootstrap over the arm's cells (within budget
lines) in which every cell's loss is also its resampled evaluation (evaluation.py); every refitted
resample's allocation is computed at once.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from eqscale.analysis.allocation import Allocation, exponents, optimal_allocation
from eqscale.analysis.bootstrap import (
    DEFAULT_CONFIDENCE,
    DEFAULT_RESAMPLES,
    bootstrap_law,
    curve,
    estimate,
    estimates,
)
from eqscale.analysis.compute import ComputeModel
from eqscale.analysis.errors import FitError
from eqscale.analysis.powerlaw import JOINT, fit_law, log_grid
from eqscale.analysis.results import BootstrapInfo, Estimate, JointArm, LawResult, OptimalPoint
from eqscale.analysis.table import check_not_constant

COMPUTE = "C = S*F(N): F the family's FLOPs per optimizer step (compute.json), N* minimises L(N, C/F(N))"


def check_separable(n: np.ndarray, s: np.ndarray, budget: np.ndarray, what: str) -> None:
    """FitError when the cells cannot separate alpha from beta (one IsoFLOP line, or log N and log S collinear)."""
    budgets = np.unique(budget[np.isfinite(budget)])
    if budgets.size == 1 and np.isfinite(budget).all():
        raise FitError(f"{what}: all {n.size} cells lie on one IsoFLOP line (budget {budgets[0]:.3g} FLOPs), where "
                       "N and S are tied (S = C/F(N)): alpha and beta cannot be separated; add budgets")
    logns = np.vstack([np.log(n), np.log(s)])
    centred = logns - logns.mean(axis=1, keepdims=True)
    sv = np.linalg.svd(centred, compute_uv=False) if n.size >= 2 else np.zeros(2)
    if n.size >= 2 and sv[0] > 0 and sv[1] / sv[0] < 1e-6:
        raise FitError(f"{what}: log N and log S are collinear over the {n.size} cells: alpha and beta cannot "
                       "be separated; vary size and steps independently (several budgets)")


def _allocation_estimates(point: Allocation, samples: Allocation, i: int | slice, confidence: float
                          ) -> tuple[Estimate, Estimate, Estimate]:
    def est(name: str) -> Estimate:
        return estimate(float(getattr(point, name)[0, i]), getattr(samples, name)[:, i], confidence).map(np.exp)
    return est("log_n"), est("log_s"), est("log_loss")


def fit_joint(cells: pd.DataFrame, model: ComputeModel, *, eval_loss: np.ndarray | None = None,
              n_resamples: int = DEFAULT_RESAMPLES, seed: int = 0, confidence: float = DEFAULT_CONFIDENCE,
              what: str = "joint") -> JointArm:
    """Fit the joint law to one arm's cells and derive its compute-optimal allocation, with bootstrap.

    `eval_loss` (n_resamples, len(cells)): the cells' test MSE in each evaluation resample.
    """
    n = cells["params"].to_numpy(float)
    s = cells["steps"].to_numpy(float)
    loss = cells["test_mse"].to_numpy(float)
    budget = cells["budget"].to_numpy(float)
    check_not_constant(loss, what)
    check_separable(n, s, budget, what)
    point = fit_law(JOINT, [n, s], loss, what=what)
    budgets = np.unique(budget[np.isfinite(budget)])
    flops = cells["flops"].to_numpy(float)
    lo, hi = (budgets.min(), budgets.max()) if budgets.size >= 2 else (flops.min(), flops.max())
    cgrid = log_grid(lo, hi)
    at = budgets if budgets.size else np.quantile(flops, [0.0, 0.5, 1.0])
    strata = np.where(np.isfinite(budget), budget, -1.0)

    def make_data(r: int, idx: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
        values = loss if eval_loss is None else eval_loss[r]
        return [n[idx], s[idx]], values[idx]

    boot = bootstrap_law(JOINT, point, make_data, loss.size, n_resamples=n_resamples, seed=seed, strata=strata,
                         stratified_by="budget")
    param_samples = boot.columns(JOINT.n_params)
    point_params = np.asarray(point.params, float)[None, :]
    size_range = (float(n.min()), float(n.max()))
    grid_point = optimal_allocation(point_params, model, cgrid, size_range)
    grid_samples = optimal_allocation(param_samples, model, cgrid, size_range)
    at_point = optimal_allocation(point_params, model, at, size_range)
    at_samples = optimal_allocation(param_samples, model, at, size_range)
    # the exponents are least-squares slopes over the study's budgets (the IsoFLOP cross-check's are over
    # its bracketed budgets): where F(N) is irregular, N*(C) is not a straight line and the range matters
    slope_at, slope_point, slope_samples = ((at, at_point, at_samples) if at.size >= 2
                                            else (cgrid, grid_point, grid_samples))
    ex_point = exponents(slope_point, slope_at, point_params[:, 0])
    ex_samples = exponents(slope_samples, slope_at, param_samples[:, 0])
    ex_point["a_minus_b"] = ex_point["a"] - ex_point["b"]
    ex_samples["a_minus_b"] = ex_samples["a"] - ex_samples["b"]
    # a resample refitted but with no defined allocation (an exponent at 0) counts as failed
    defined = np.isfinite(ex_samples["a"]) & np.isfinite(ex_samples["gamma"])
    info = BootstrapInfo(resamples=n_resamples, ok=int(defined.sum()), failed=n_resamples - int(defined.sum()),
                         seed=seed, confidence=confidence, stratified_by="budget")
    kept = {k: v[defined] for k, v in ex_samples.items()}
    notes = [f"exponent {name} is at its bound 0 ({term} shows no effect): the compute-optimal allocation is "
             "undefined" for name, term in (("alpha", "model size"), ("beta", "training steps"))
             if getattr(point.params, name) <= 1e-6]
    result = LawResult(law=JOINT.name, formula=JOINT.formula,
                       params=estimates(JOINT.param_names, point_params[0], param_samples, confidence),
                       n_points=point.n_points, n_rows=point.n_rows, n_params=JOINT.n_params, rmse_log=point.rmse_log,
                       r2_log=point.r2_log, bootstrap=info, curve=None, note="; ".join(notes) or None, point=point,
                       samples=param_samples[defined])
    optimal = []
    for i, c in enumerate(at):
        n_est, s_est, l_est = _allocation_estimates(at_point, _rows(at_samples, defined), i, confidence)
        optimal.append(OptimalPoint(budget=float(c), N=n_est, S=s_est, loss=l_est,
                                    within_sizes=bool(size_range[0] <= n_est.value <= size_range[1])))
    grid_kept = _rows(grid_samples, defined)
    curves = {name: curve(cgrid, np.exp(getattr(grid_point, key)[0]), np.exp(getattr(grid_kept, key)), confidence)
              for name, key in (("N_opt", "log_n"), ("S_opt", "log_s"), ("loss_opt", "log_loss"))}
    return JointArm(fit=result, family=model.family, compute=COMPUTE,
                    exponents={k: estimate(float(ex_point[k][0]), kept[k], confidence) for k in ex_point},
                    optimal=optimal, curves=curves, compute_range=[float(lo), float(hi)],
                    sizes_range=[size_range[0], size_range[1]],
                    edge_fraction=float(grid_samples.at_edge[defined].mean()) if defined.any() else 1.0,
                    n_budgets=int(budgets.size), n_cells=int(loss.size), samples=kept)


def _rows(alloc: Allocation, keep: np.ndarray) -> Allocation:
    return Allocation(alloc.log_n[keep], alloc.log_s[keep], alloc.log_loss[keep], alloc.at_edge[keep])


def allocation_samples(arm: JointArm, model: ComputeModel, compute: np.ndarray) -> tuple[Allocation, Allocation]:
    """The point and bootstrap allocations of a fitted arm at other budgets (for comparisons between arms)."""
    size_range = (arm.sizes_range[0], arm.sizes_range[1])
    point = np.asarray(arm.fit.point.params, float)[None, :]
    return (optimal_allocation(point, model, compute, size_range),
            optimal_allocation(arm.fit.samples, model, compute, size_range))


def residuals(arm: JointArm, cells: pd.DataFrame) -> np.ndarray:
    """ln(measured / fitted) of the cells the arm was fitted to."""
    fitted = JOINT(arm.fit.point.params, cells["params"].to_numpy(float), cells["steps"].to_numpy(float))
    return np.log(cells["test_mse"].to_numpy(float)) - np.log(fitted)

