"""The summary table as the analysis sees it: checked columns, diverged and unusable cells, designs and arms.

`read_table` takes what `eqscale collect` writes (summary format 2, the columns of the data contract)
and says what is missing: the columns every fit needs (`REQUIRED_COLUMNS`) raise FitError; the
others (`CONTRACT_COLUMNS`) have fallbacks, and the table records which were absent so the fit
files and the report can say what was approximated.

A cell is *diverged* when its run says so, when its test MSE is NaN or infinite, or when it is
worse than the constant-velocity baseline by more than `diverged_cv_ratio` (the trivial prediction
every model starts from); a diverged cell is kept in the table, reported, and counted against its
family at its budget -- never silently dropped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from eqscale.analysis.errors import FitError
from eqscale.cells import ARMS

REQUIRED_COLUMNS = ("arm", "size", "params", "steps", "flops", "budget", "data_fraction", "test_mse")
CONTRACT_COLUMNS = (
    "cell", "run_dir", "model", "arm", "size", "params", "seed", "augment", "in_scaling", "in_data_efficiency",
    "budget", "steps", "flops", "flops_attention", "flops_per_step_nominal", "tokens", "data_fraction",
    "num_train_trajectories", "epochs", "best_step", "stopped_early", "lr", "batch_size", "diverged", "test_mse",
    "test_mse_se", "test_mse_lo", "test_mse_hi", "n_test_samples", "const_velocity_mse", "cv_ratio",
    "test_mse_contact", "test_mse_free", "cv_ratio_contact", "cv_ratio_free", "equivariance_error", "wall_time_s",
    "eval_wall_time_s", "device", "symmetry_loss", "energy_mae", "force_mae", "force_l2")
NUMERIC_COLUMNS = ("params", "steps", "flops", "flops_attention", "flops_per_step_nominal", "budget", "data_fraction",
                   "num_train_trajectories", "epochs", "best_step", "test_mse", "test_mse_se", "test_mse_lo",
                   "test_mse_hi", "n_test_samples", "const_velocity_mse", "cv_ratio", "test_mse_contact",
                   "test_mse_free", "cv_ratio_contact", "cv_ratio_free", "wall_time_s", "eval_wall_time_s", "seed",
                   "lr", "batch_size", "tokens", "equivariance_error", "energy_mae", "force_mae", "force_l2")
BOOL_COLUMNS = ("in_scaling", "in_data_efficiency", "diverged", "stopped_early", "augment", "symmetry_loss")
DIVERGED_CV_RATIO = 1.0


@dataclass(frozen=True)
class StudyTable:
    """The summary with derived columns, and what it lacked.

    Derived columns: model, seed (0 when absent), in_scaling, in_data_efficiency, diverged (bool),
    status ("ok", "diverged" or "unusable") and status_reason.
    """

    rows: pd.DataFrame
    missing: tuple[str, ...]  # contract columns the summary does not have

    @property
    def usable(self) -> pd.DataFrame:
        """Rows with a usable test loss (not diverged, positive finite loss, FLOPs, size and steps)."""
        return self.rows[self.rows["status"] == "ok"]

    def has(self, column: str) -> bool:
        """Whether the summary recorded this column."""
        return column not in self.missing

    def arms(self) -> list[str]:
        """Arms present, in the declared order."""
        return order_arms(list(self.rows["arm"].astype(str)))

    def scaling(self, arm: str, *, usable: bool = True) -> pd.DataFrame:
        """An arm's scaling-grid cells (usable only, by default)."""
        rows = self.usable if usable else self.rows
        return rows[(rows["arm"] == arm) & rows["in_scaling"]]

    def data_efficiency(self, arm: str, *, usable: bool = True) -> pd.DataFrame:
        """An arm's data-efficiency cells (usable only, by default)."""
        rows = self.usable if usable else self.rows
        return rows[(rows["arm"] == arm) & rows["in_data_efficiency"]]


def read_table(summary: pd.DataFrame, *, diverged_cv_ratio: float = DIVERGED_CV_RATIO) -> StudyTable:
    """Check and prepare a summary table; FitError names the required columns it lacks."""
    missing_required = [c for c in REQUIRED_COLUMNS if c not in summary.columns]
    if missing_required:
        raise FitError(f"the summary lacks column(s) {', '.join(missing_required)} (expected the output of "
                       "eqscale collect, summary format 2)")
    missing = tuple(c for c in CONTRACT_COLUMNS if c not in summary.columns)
    df = summary.copy().reset_index(drop=True)
    for col in NUMERIC_COLUMNS:
        if col in df:
            df[col] = pd.to_numeric(df[col], errors="coerce")
    for col in BOOL_COLUMNS:
        if col in df:
            df[col] = df[col].map(_as_bool)
    df["arm"] = df["arm"].astype(str)
    if "model" not in df:
        df["model"] = df["arm"].str.split("+").str[0]
    if "seed" not in df:
        df["seed"] = 0
    df["size"] = df["size"].astype(str)
    if "cell" not in df:
        df["cell"] = [f"{r.arm}/size~{r.size}/budget~{r.budget:g}/data~{r.data_fraction:g}/row~{i}"
                      for i, r in enumerate(df.itertuples(index=False))]
    if "in_scaling" not in df:
        df["in_scaling"] = _full_data(df)
    if "in_data_efficiency" not in df:
        df["in_data_efficiency"] = _data_efficiency_group(df)
    status, reason = _status(df, diverged_cv_ratio)
    df["status"], df["status_reason"] = status, reason
    df["diverged"] = np.array([s == "diverged" for s in status])
    return StudyTable(rows=df, missing=missing)


def _as_bool(v: object) -> bool:
    if isinstance(v, str):
        return v.strip().lower() in ("true", "1", "yes")
    try:
        return bool(v) and not (isinstance(v, float) and math.isnan(v))
    except (TypeError, ValueError):
        return False


def _full_data(df: pd.DataFrame) -> np.ndarray:
    """Fallback for in_scaling: the arm's cells on its largest data fraction."""
    frac = df["data_fraction"].to_numpy(float)
    top = df.groupby("arm")["data_fraction"].transform("max").to_numpy(float)
    return np.isclose(frac, top)


def _data_efficiency_group(df: pd.DataFrame) -> np.ndarray:
    """Fallback for in_data_efficiency: per arm the (size, budget) group with the most data fractions (>= 2)."""
    out = np.zeros(len(df), bool)
    for _, arm_rows in df.groupby("arm"):
        best, count = None, 1
        for _, group in arm_rows.groupby(["size", "budget"], sort=True, dropna=False):
            n = group["data_fraction"].nunique()
            if n > count:
                best, count = group.index, n
        if best is not None:
            out[best] = True
    return out


def _status(df: pd.DataFrame, diverged_cv_ratio: float) -> tuple[list[str], list[str | None]]:
    loss = df["test_mse"].to_numpy(float)
    cv = df["const_velocity_mse"].to_numpy(float) if "const_velocity_mse" in df else np.full(len(df), np.nan)
    flagged = df["diverged"].to_numpy(bool) if "diverged" in df else np.zeros(len(df), bool)
    status, reason = [], []
    for i, row in enumerate(df[["params", "steps", "flops"]].to_numpy(float)):
        bad_design = [name for name, v in zip(("params", "steps", "flops"), row, strict=True)
                      if not (math.isfinite(v) and v > 0)]
        if flagged[i]:
            status.append("diverged")
            reason.append("the run diverged (recorded by training)")
        elif not math.isfinite(loss[i]):
            status.append("diverged")
            reason.append(f"test MSE is {loss[i]}")
        elif math.isfinite(cv[i]) and loss[i] > diverged_cv_ratio * cv[i]:
            status.append("diverged")
            reason.append(f"test MSE {loss[i]:.3g} is above {diverged_cv_ratio:g} x the constant-velocity MSE "
                          f"{cv[i]:.3g}")
        elif bad_design or not loss[i] > 0:
            status.append("unusable")
            reason.append("missing or non-positive " + ", ".join(bad_design or ["test_mse"]))
        else:
            status.append("ok")
            reason.append(None)
    return status, reason


def order_arms(names: list[str]) -> list[str]:
    """Arms in the declared order of eqscale.cells.ARMS, unknown ones after them, sorted."""
    present = list(dict.fromkeys(names))
    return [a for a in ARMS if a in present] + sorted(a for a in present if a not in ARMS)


def check_not_constant(loss: np.ndarray, what: str) -> None:
    """FitError when every loss is the same (no law can be fitted to a constant)."""
    loss = np.asarray(loss, float)
    if loss.size >= 2 and np.ptp(np.log(loss)) < 1e-12:
        raise FitError(f"{what}: all {loss.size} test losses are equal ({loss[0]:.4g} m^2): a power law cannot "
                       "be fitted to a constant")


def seed_means(rows: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """One row per config: geometric-mean test MSE over its seeds, the seeds, their cells and the mean epochs."""
    grouped = rows.assign(log_mse=np.log(rows["test_mse"].to_numpy(float))).groupby(by, sort=True, dropna=False)
    out = grouped.agg(log_mse=("log_mse", "mean"), n_seeds=("log_mse", "size"), flops=("flops", "mean"),
                      params=("params", "first")).reset_index()
    out["test_mse"] = np.exp(out.pop("log_mse"))
    out["cells"] = [list(g["cell"]) for _, g in grouped]
    out["rows"] = [list(g.index) for _, g in grouped]
    return out
