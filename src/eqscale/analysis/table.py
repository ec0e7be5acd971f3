"""The summary table as the fits see it: required columns, usable rows, arms, and each arm's scaling cells."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from eqscale.analysis.errors import FitError
from eqscale.cells import ARMS

SUMMARY_COLUMNS = ("arm", "size", "params", "steps", "flops", "budget", "data_fraction",
                   "num_train_trajectories", "test_mse")
NUMERIC_COLUMNS = ("params", "steps", "flops", "budget", "data_fraction", "num_train_trajectories", "test_mse")


def prepare_summary(summary: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Rows usable for fitting and how many were dropped (missing or non-positive loss, FLOPs, size, steps)."""
    missing = [c for c in SUMMARY_COLUMNS if c not in summary.columns]
    if missing:
        raise FitError(f"the summary lacks column(s) {', '.join(missing)} (expected the output of eqscale collect)")
    df = summary.copy()
    for col in NUMERIC_COLUMNS:
        df[col] = pd.to_numeric(df[col], errors="coerce")
    needed = df[["params", "steps", "flops", "test_mse"]].to_numpy(dtype=float)
    ok = np.all(np.isfinite(needed) & (needed > 0), axis=1)
    n_dropped = int((~ok).sum())
    if n_dropped:
        warnings.warn(f"summary: dropped {n_dropped} of {len(df)} rows with missing or non-positive "
                      "params/steps/flops/test_mse", stacklevel=2)
    return df[ok].reset_index(drop=True), n_dropped


def order_arms(names: list[str]) -> list[str]:
    """Arms in the declared order of eqscale.cells.ARMS, unknown ones after them, sorted."""
    present = list(dict.fromkeys(names))
    return [a for a in ARMS if a in present] + sorted(a for a in present if a not in ARMS)


def arms_of(df: pd.DataFrame) -> list[str]:
    """Arms in the table, known ones first in a fixed order."""
    return order_arms(list(df["arm"].astype(str))) if "arm" in df else []


def scaling_cells(df: pd.DataFrame, arm: str) -> pd.DataFrame:
    """An arm's cells trained on its full training set (the scaling grid's cells)."""
    cells = df[df["arm"] == arm]
    if cells.empty:
        return cells
    full = np.isclose(cells["data_fraction"].to_numpy(float), np.nanmax(cells["data_fraction"].to_numpy(float)))
    return cells[full].reset_index(drop=True)


def check_not_constant(loss: np.ndarray, what: str) -> None:
    """FitError when every loss is the same (no law can be fitted to a constant)."""
    loss = np.asarray(loss, float)
    if loss.size >= 2 and np.ptp(np.log(loss)) < 1e-12:
        raise FitError(f"{what}: all {loss.size} test losses are equal ({loss[0]:.4g} m^2): a power law cannot "
                       "be fitted to a constant")
