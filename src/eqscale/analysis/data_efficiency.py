"""Data efficiency of one arm: test loss vs training-set size D at fixed model and steps, L(D) = E + A*D^-delta."""

from __future__ import annotations

import numpy as np
import pandas as pd

from eqscale.analysis.bootstrap import DEFAULT_CONFIDENCE, DEFAULT_RESAMPLES, fit_with_bootstrap
from eqscale.analysis.errors import FitError
from eqscale.analysis.powerlaw import DATA, DATA_POWER, log_grid
from eqscale.analysis.results import DataEfficiencyArm, DataPoints
from eqscale.analysis.table import check_not_constant


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
    check_not_constant(loss, what)
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
                             points=DataPoints(D=d.tolist(), test_mse=loss.tolist()), n_cells=int(loss.size))
