"""The compute frontier of one arm: the lower envelope of loss vs training FLOPs and power laws fitted to it.

L(C) = E + A*C^-gamma (saturating) and L(C) = A*C^-gamma (pure power law), each with a bootstrap in
which the envelope is rebuilt from the resampled cells.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from eqscale.analysis.bootstrap import DEFAULT_CONFIDENCE, DEFAULT_RESAMPLES, fit_with_bootstrap
from eqscale.analysis.errors import FitError
from eqscale.analysis.powerlaw import FRONTIER, FRONTIER_POWER, log_grid
from eqscale.analysis.results import FrontierArm, FrontierPoints, LawResult, Skipped
from eqscale.analysis.table import check_not_constant


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


def fit_frontier(cells: pd.DataFrame, *, n_resamples: int = DEFAULT_RESAMPLES, seed: int = 0,
                 confidence: float = DEFAULT_CONFIDENCE, what: str = "frontier") -> FrontierArm:
    """Fit L(C) = E + A*C^-gamma and L(C) = A*C^-gamma to one arm's lower envelope, with bootstrap."""
    flops = cells["flops"].to_numpy(float)
    loss = cells["test_mse"].to_numpy(float)
    budget = cells["budget"].to_numpy(float)
    config = config_codes(cells)
    check_not_constant(loss, what)
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
    points = FrontierPoints(flops=env[0].tolist(), test_mse=env[1].tolist(),
                            budget=[b if math.isfinite(b) else None for b in env[2]])
    return FrontierArm(points=points, primary=ok[0], variants=variants, n_cells=int(flops.size))
