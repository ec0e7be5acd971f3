"""Data efficiency of one arm: converged test loss against training-set size D.

The data-efficiency cells (`in_data_efficiency`) train each data fraction until the validation loss
stops improving (early stopping), so each point is the loss the arm converges to on that much data,
with the epochs it took. The points (seed means) are what the comparisons between arms use; the law
L(D) = E + A*D^-delta (the pure power law with fewer than 4 sizes) is fitted to them as context.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from eqscale.analysis.bootstrap import DEFAULT_CONFIDENCE, DEFAULT_RESAMPLES, fit_with_bootstrap
from eqscale.analysis.errors import FitError
from eqscale.analysis.powerlaw import DATA, DATA_POWER, log_grid
from eqscale.analysis.results import DataEfficiencyArm, DataPoint, LawResult, Skipped
from eqscale.analysis.table import check_not_constant


def data_efficiency_cells(cells: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """The arm's (size, budget) group with the most distinct training-set sizes, and the column used as D."""
    x_col = "num_train_trajectories"
    if x_col not in cells or cells[x_col].isna().all():
        x_col = "data_fraction"  # older run records without trajectory counts: fractions of one training set
    best, best_count = None, 0
    for _, group in cells.groupby(["size", "budget"], sort=True, dropna=False):
        count = group[x_col].dropna().nunique()
        if count > best_count:
            best, best_count = group, count
    if best is None or best_count < 2:
        raise FitError(f"data efficiency: no (size, budget) group of this arm has 2 or more training-set sizes "
                       f"(most: {best_count})")
    return best, x_col


def _mean(group: pd.DataFrame, col: str) -> float | None:
    if col not in group or not group[col].notna().any():
        return None
    return float(group[col].astype(float).mean())


def data_points(group: pd.DataFrame, x_col: str) -> list[DataPoint]:
    """One point per training-set size: geometric-mean loss over seeds, epochs and early stopping."""
    points = []
    for d, rows in group.groupby(x_col, sort=True):
        cv = rows["cv_ratio"].to_numpy(float) if "cv_ratio" in rows else np.full(len(rows), np.nan)
        points.append(DataPoint(D=float(d), data_fraction=float(rows["data_fraction"].iloc[0]),
                                test_mse=float(np.exp(np.log(rows["test_mse"].to_numpy(float)).mean())),
                                cv_ratio=float(np.exp(np.log(cv).mean())) if np.all(np.isfinite(cv) & (cv > 0))
                                else None,
                                n_seeds=int(len(rows)), epochs=_mean(rows, "epochs"),
                                best_step=_mean(rows, "best_step"),
                                stopped_early=_mean(rows, "stopped_early"), cells=list(rows["cell"])))
    return points


def fit_data_efficiency(cells: pd.DataFrame, *, eval_loss: np.ndarray | None = None,
                        n_resamples: int = DEFAULT_RESAMPLES, seed: int = 0, confidence: float = DEFAULT_CONFIDENCE,
                        what: str = "data efficiency", law: bool = True) -> DataEfficiencyArm:
    """An arm's data-efficiency points and the law L(D) fitted to them (context; `law=False` skips it)."""
    group, x_col = data_efficiency_cells(cells)
    positions = cells.index.get_indexer(group.index)
    evals = eval_loss[:, positions] if eval_loss is not None else None
    d = group[x_col].to_numpy(float)
    loss = group["test_mse"].to_numpy(float)
    points = data_points(group, x_col)
    distinct = np.unique(d[np.isfinite(d)]).size
    data_law, note = DATA, None
    if distinct < DATA.n_params + 1:
        data_law = DATA_POWER
        note = (f"{distinct} distinct training-set sizes are too few for {DATA.formula} (needs "
                f"{DATA.n_params + 1}); fitted {DATA_POWER.formula} instead")
    # with replicates (seeds) at every size, resample within each size so every resample keeps the
    # design; with one run per size that would return the same data every time, so resample freely
    _, counts = np.unique(d, return_counts=True)
    replicated = bool(counts.min() >= 2)
    fit: LawResult | Skipped
    try:
        if not law:
            raise FitError(f"{what}: the law L(D) was not fitted (left out of this run)")
        check_not_constant(loss, what)
        fit = fit_with_bootstrap(data_law, [d], loss, grid=log_grid(np.nanmin(d), np.nanmax(d)),
                                 n_resamples=n_resamples, seed=seed, confidence=confidence,
                                 what=f"{what} ({distinct} training-set sizes)", note=note,
                                 strata=d if replicated else None, n_rows=d.size,
                                 stratified_by=x_col if replicated else None, eval_loss=evals)
    except FitError as err:
        fit = Skipped(str(err))
    budgets = group["budget"].dropna().unique()
    return DataEfficiencyArm(points=points, size=str(group["size"].iloc[0]),
                             budget=float(budgets[0]) if budgets.size and math.isfinite(budgets[0]) else None,
                             x=x_col, fit=fit, n_cells=int(len(group)))
