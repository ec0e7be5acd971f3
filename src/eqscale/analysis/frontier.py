"""The compute frontier of one arm: loss against training compute at the best allocation.

Primary curve: L*(C) of the joint law (joint.py), the minimum over sizes along the family's real
IsoFLOP curves, with the joint bootstrap's band. Measured frontier: per budget the best config (seed
mean of the loss); the lower envelope keeps a budget only if it beats every cheaper one, and a
budget left out says why. Cross-check: L(C) = E + A*C^-gamma and A*C^-gamma fitted to the envelope,
bootstrapped by rebuilding the envelope from resampled cells (a minimum: biased, so not primary).

Is the measured frontier a power law? `power_law_check` fits ln L = c0 + c1*x + c2*x^2 (x = ln C,
centred) to the per-budget best points, weighted by their measurement error (evaluation and
training noise), the covariance scaled up by the reduced chi^2 when the points scatter more than
their errors. Its *bend* c2*W^2/4 (W = span of x) is how far the middle of the frontier lies below
(+) or above (-) the straight line through its ends, in ln L: 0 for a power law, > 0 for a power law
with a floor, < 0 for a frontier that is straight in ln C or steepens.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from eqscale.analysis.bootstrap import DEFAULT_CONFIDENCE, DEFAULT_RESAMPLES, fit_with_bootstrap
from eqscale.analysis.errors import FitError
from eqscale.analysis.powerlaw import FRONTIER, FRONTIER_POWER, log_grid
from eqscale.analysis.results import (
    Estimate,
    FrontierArm,
    FrontierBudget,
    JointArm,
    LawResult,
    PowerLawCheck,
    Skipped,
)
from eqscale.analysis.table import check_not_constant, seed_means

ON, DROPPED, EMPTY = "on envelope", "dropped", "no usable cells"
PRIMARY = "joint law: L*(C) = min over N of L(N, C/F(N))"
POWER_LAW_METHOD = ("weighted quadratic of ln L in ln C over the per-budget best points (weights: evaluation and "
                    "training noise; covariance scaled by the reduced chi^2 when above 1); bend = c2*W^2/4")


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


def config_codes(cells: pd.DataFrame) -> np.ndarray:
    """One integer per (size, steps) config: seeds of a config share it."""
    key = cells["size"].astype(str) + "|" + cells["steps"].astype(str)
    return pd.factorize(key)[0]


def budget_points(cells: pd.DataFrame) -> list[FrontierBudget]:
    """Per budget of an arm's scaling cells (any status): the best config and whether it is on the envelope."""
    out = []
    best_so_far: tuple[float, float] | None = None  # (loss, budget) of the best cheaper budget on the envelope
    for budget, group in cells.groupby("budget", sort=True):
        diverged = list(group.loc[group["status"] == "diverged", "cell"])
        usable = group[group["status"] == "ok"]
        if usable.empty:
            reasons = sorted(set(r for r in group["status_reason"] if r))
            out.append(FrontierBudget(budget=float(budget), status=EMPTY, reason="; ".join(reasons) or None, size=None,
                                      flops=None, test_mse=None, n_seeds=0, cells=[], diverged=diverged))
            continue
        configs = seed_means(usable, ["size"])
        best = configs.loc[configs["test_mse"].idxmin()]
        loss = float(best["test_mse"])
        if best_so_far is None or loss < best_so_far[0]:
            status, reason = ON, None
            best_so_far = (loss, float(budget))
        else:
            status = DROPPED
            reason = (f"test MSE {loss:.4g} is not below {best_so_far[0]:.4g} at the cheaper budget "
                      f"{best_so_far[1]:.3g} FLOPs")
        out.append(FrontierBudget(budget=float(budget), status=status, reason=reason, size=str(best["size"]),
                                  flops=float(best["flops"]), test_mse=loss, n_seeds=int(best["n_seeds"]),
                                  cells=list(best["cells"]), diverged=diverged))
    return out


def fit_envelope(cells: pd.DataFrame, *, eval_loss: np.ndarray | None = None, n_resamples: int = DEFAULT_RESAMPLES,
                 seed: int = 0, confidence: float = DEFAULT_CONFIDENCE,
                 what: str = "frontier") -> dict[str, LawResult | Skipped]:
    """Cross-check: L(C) = E + A*C^-gamma fitted to the lower envelope, with bootstrap (the pure power law
    A*C^-gamma when the floor cannot be fitted)."""
    flops = cells["flops"].to_numpy(float)
    loss = cells["test_mse"].to_numpy(float)
    budget = cells["budget"].to_numpy(float)
    config = config_codes(cells)
    check_not_constant(loss, what)
    env = lower_envelope(flops, loss, budget, config)
    has_budget = np.isfinite(budget)
    strata = np.where(has_budget, budget, -1.0) if has_budget.any() else None
    grid = log_grid(env[0].min(), env[0].max()) if env.shape[1] >= 2 else log_grid(flops.min(), flops.max())

    def resample(r: int, idx: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
        values = loss if eval_loss is None else eval_loss[r]
        e = lower_envelope(flops[idx], values[idx], budget[idx], config[idx])
        return [e[0]], e[1]

    variants: dict[str, LawResult | Skipped] = {}
    for law in (FRONTIER, FRONTIER_POWER):
        try:
            variants[law.name] = fit_with_bootstrap(
                law, [env[0]], env[1], grid=grid, n_resamples=n_resamples, seed=seed, confidence=confidence,
                resample=resample, n_rows=flops.size, strata=strata,
                stratified_by="budget" if strata is not None else None,
                what=f"{what} ({law.formula}, {env.shape[1]} envelope points of {flops.size} cells)")
            break  # the floor's law fitted: the pure power law is not needed
        except FitError as err:
            variants[law.name] = Skipped(str(err))
    return variants


def power_law_check(flops: np.ndarray, loss: np.ndarray, sigma: np.ndarray | None,
                    confidence: float) -> PowerLawCheck | Skipped:
    """The bend of ln L vs ln C over the points (see the module docstring), with its interval."""
    x = np.log(np.asarray(flops, float))
    y = np.log(np.asarray(loss, float))
    n = x.size
    if n < 3 or np.ptp(x) == 0:
        return Skipped(f"a quadratic in ln C needs at least 3 budgets with a usable best cell, got {n}")
    xc = x - x.mean()
    design = np.vstack([np.ones(n), xc, xc ** 2]).T
    known = sigma is not None and np.all(np.isfinite(sigma)) and np.all(np.asarray(sigma) > 0)
    w = 1.0 / np.asarray(sigma, float) ** 2 if known else np.ones(n)
    precision = design.T @ (design * w[:, None])
    coef = np.linalg.solve(precision, design.T @ (w * y))
    resid = y - design @ coef
    dof = n - 3
    chi2 = float((w * resid ** 2).sum())
    cov = np.linalg.inv(precision)
    if known:
        scale = max(1.0, chi2 / dof) if dof > 0 else 1.0
        q = stats.t.ppf((1 + confidence) / 2, dof) if dof > 0 and scale > 1.0 else stats.norm.ppf((1 + confidence) / 2)
        method = POWER_LAW_METHOD
    else:
        if dof <= 0:
            return Skipped(f"{n} points and no measurement error: no interval for the curvature")
        scale = chi2 / dof
        q = stats.t.ppf((1 + confidence) / 2, dof)
        method = "unweighted quadratic of ln L in ln C (no measurement error known); t interval; bend = c2*W^2/4"
    width = float(np.ptp(x))
    bend = coef[2] * width ** 2 / 4
    se = math.sqrt(cov[2, 2] * scale) * width ** 2 / 4
    return PowerLawCheck(n_points=n, decades=width / math.log(10), bend=Estimate.of(bend, bend - q * se, bend + q * se),
                         quadratic=[float(c) for c in coef], method=method)


def frontier_arm(all_cells: pd.DataFrame, joint: JointArm | Skipped | None,
                 envelope: dict[str, LawResult | Skipped] | Skipped, sigma_train: float | None,
                 log_eval: np.ndarray | None, confidence: float) -> FrontierArm:
    """Assemble an arm's frontier: the joint law's L*(C), the measured budgets, the envelope fits, the check.

    `log_eval`: ln test MSE of every cell of the table in each evaluation resample (R, table rows);
    `all_cells` keeps the table's index.
    """
    budgets = budget_points(all_cells)
    with_point = [b for b in budgets if b.test_mse is not None]
    flops = np.array([b.flops for b in with_point])
    loss = np.array([b.test_mse for b in with_point])
    sigma = _point_sigma(all_cells, with_point, sigma_train, log_eval)
    check = power_law_check(flops, loss, sigma, confidence)
    has_joint = isinstance(joint, JointArm)
    return FrontierArm(primary=PRIMARY if has_joint else "none (no joint-law fit)",
                       curve=joint.curves["loss_opt"] if has_joint else None,
                       gamma=joint.exponents["gamma"] if has_joint else None, budgets=budgets,
                       envelope=envelope if isinstance(envelope, dict) else {"saturating": envelope},
                       power_law=check, n_cells=int(len(all_cells)))


def _point_sigma(cells: pd.DataFrame, points: list[FrontierBudget], sigma_train: float | None,
                 log_eval: np.ndarray | None) -> np.ndarray | None:
    """Standard error of ln L of each frontier point about the others: evaluation error not shared by the
    points (they are evaluated on the same samples) and the training noise over its seeds."""
    if sigma_train is None or not points:
        return None
    eval_var = np.zeros(len(points))
    if log_eval is not None and log_eval.shape[0] >= 2:
        row_of = {c: i for c, i in zip(cells["cell"], cells.index, strict=True)}
        means = np.column_stack([log_eval[:, [row_of[c] for c in p.cells]].mean(axis=1) for p in points])
        eval_var = np.var(means - means.mean(axis=1, keepdims=True), axis=0, ddof=1)
    sigma = np.sqrt(eval_var + np.array([sigma_train ** 2 / max(1, p.n_seeds) for p in points]))
    return sigma if np.all(sigma > 0) else None
