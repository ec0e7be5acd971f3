"""Evaluation error: per-sample test losses (results/sample_losses.npz) and each cell's test MSE under resampling.

Every cell is evaluated on a common prefix of one fixed order of test samples, so cells share
samples: resampling the test samples jointly for all cells (the same multiset of samples for every
cell in a resample) keeps differences between cells paired, and a conclusion built on two cells
sees only the part of their evaluation error that does not cancel. A cell's test MSE is
sum(sq_error[c, ok]) / sum(n_values[ok]) over the samples it was evaluated on (ok = finite).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

SAMPLE_KEYS = ("cells", "sample", "sq_error", "n_values", "cv_sq_error", "in_contact")
RESAMPLE_CHUNK = 64  # resamples per matrix product (bounds memory at paper scale: 20,000 samples)
Z_95 = 1.959963984540054


class SampleLossError(ValueError):
    """A sample-loss file that cannot be used; the message names the file and the key."""


@dataclass(frozen=True)
class SampleLosses:
    """Per-sample squared errors of every cell on the shared test samples (the contract of sample_losses.npz)."""

    cells: np.ndarray  # (C,) cell ids, the summary's `cell` column
    sample: np.ndarray  # (S,) test sample ids
    sq_error: np.ndarray  # (C, S) sum of squared errors over a sample's values; NaN where not evaluated
    n_values: np.ndarray  # (S,) vertices x 3 of each sample
    cv_sq_error: np.ndarray  # (S,) the same for constant-velocity extrapolation
    in_contact: np.ndarray  # (S,) whether objects touch in the sample's frames

    def __post_init__(self) -> None:
        c, s = len(self.cells), len(self.sample)
        shapes = {"sq_error": (c, s), "n_values": (s,), "cv_sq_error": (s,), "in_contact": (s,)}
        for key, shape in shapes.items():
            if np.shape(getattr(self, key)) != shape:
                raise SampleLossError(f"{key} has shape {np.shape(getattr(self, key))}, expected {shape} "
                                      f"({c} cells x {s} samples)")
        if np.any(np.asarray(self.n_values) <= 0):
            raise SampleLossError("n_values must be positive (vertices x 3 of each sample)")

    @classmethod
    def load(cls, path: str | Path) -> SampleLosses:
        """Read and check an npz file; SampleLossError names the file and what is wrong."""
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as data:
                missing = [k for k in SAMPLE_KEYS if k not in data]
                if missing:
                    raise SampleLossError(f"{path} lacks {', '.join(missing)} (expected {', '.join(SAMPLE_KEYS)})")
                arrays = {k: data[k] for k in SAMPLE_KEYS}
        except (OSError, ValueError) as err:
            if isinstance(err, SampleLossError):
                raise
            raise SampleLossError(f"{path} is not a readable npz file: {err}") from None
        try:
            return cls(cells=arrays["cells"].astype(str), sample=arrays["sample"].astype(np.int64),
                       sq_error=arrays["sq_error"].astype(float), n_values=arrays["n_values"].astype(float),
                       cv_sq_error=arrays["cv_sq_error"].astype(float), in_contact=arrays["in_contact"].astype(bool))
        except SampleLossError as err:
            raise SampleLossError(f"{path}: {err}") from None

    def save(self, path: str | Path) -> None:
        """Write the npz file (tests and synthetic studies; collect writes the real one)."""
        np.savez(path, **{k: getattr(self, k) for k in SAMPLE_KEYS})

    # ---------------------------------------------------------------- per cell

    def _ok(self, i: int, subset: np.ndarray | None = None) -> np.ndarray:
        ok = np.isfinite(self.sq_error[i])
        return ok if subset is None else ok & subset

    def mse(self, i: int, subset: np.ndarray | None = None) -> float:
        """Test MSE of cell i (over a subset of samples when given)."""
        ok = self._ok(i, subset)
        den = float(self.n_values[ok].sum())
        return float(self.sq_error[i, ok].sum()) / den if den > 0 else math.nan

    def mse_se(self, i: int) -> float:
        """Standard error of cell i's test MSE over its samples (delta method for a ratio of sums)."""
        ok = self._ok(i)
        x, n = self.sq_error[i, ok], self.n_values[ok]
        s = x.size
        if s < 2:
            return math.nan
        m = x.sum() / n.sum()
        return float(math.sqrt(s / (s - 1) * np.sum((x - m * n) ** 2)) / n.sum())

    def cv_mse(self, contact: bool | None = None) -> float:
        """Constant-velocity MSE over all samples, or over those with (True) or without (False) contact."""
        sel = np.ones(len(self.sample), bool) if contact is None else self.in_contact == contact
        den = float(self.n_values[sel].sum())
        return float(self.cv_sq_error[sel].sum()) / den if den > 0 else math.nan

    def cell_statistics(self, i: int) -> dict[str, float]:
        """The summary's test columns of cell i, as eqscale collect computes them."""
        ok = self._ok(i)
        mse, se = self.mse(i), self.mse_se(i)
        den = float(self.n_values[ok].sum())
        return {"test_mse": mse, "test_mse_se": se, "test_mse_lo": mse - Z_95 * se, "test_mse_hi": mse + Z_95 * se,
                "n_test_samples": int(ok.sum()),
                "const_velocity_mse": float(self.cv_sq_error[ok].sum()) / den if den > 0 else math.nan,
                "test_mse_contact": self.mse(i, self.in_contact), "test_mse_free": self.mse(i, ~self.in_contact)}

    def rows_of(self, cell_ids: pd.Series | np.ndarray) -> np.ndarray:
        """Row of each cell id in this file (-1 where the file has no such cell)."""
        index = {c: i for i, c in enumerate(self.cells)}
        return np.array([index.get(str(c), -1) for c in cell_ids], dtype=int)

    def resampled_mse(self, rows: np.ndarray, n_resamples: int, seed: int) -> np.ndarray:
        """(n_resamples, len(rows)) test MSEs, the test samples resampled with replacement jointly for all cells."""
        rng = np.random.default_rng(seed)
        x = np.nan_to_num(self.sq_error[rows], nan=0.0).T  # (S, k)
        n = (np.isfinite(self.sq_error[rows]) * self.n_values[None, :]).T
        s = len(self.sample)
        out = np.empty((n_resamples, len(rows)))
        for start in range(0, n_resamples, RESAMPLE_CHUNK):
            m = min(RESAMPLE_CHUNK, n_resamples - start)
            picks = rng.integers(0, s, size=(m, s)) + (np.arange(m) * s)[:, None]
            weights = np.bincount(picks.ravel(), minlength=m * s).reshape(m, s).astype(float)
            with np.errstate(invalid="ignore", divide="ignore"):
                out[start:start + m] = (weights @ x) / (weights @ n)
        return out


@dataclass(frozen=True)
class EvalResamples:
    """Each summary row's test MSE in every bootstrap resample of the evaluation (rows aligned with the table).

    `loss[r, i]` is row i's test MSE in resample r: from the per-sample losses (jointly for all cells:
    paired) where the file has the cell; else drawn from a lognormal with the row's test_mse_se
    (independent: unpaired); else the measured value itself (no evaluation error known).
    """

    loss: np.ndarray  # (R, n_rows)
    paired: np.ndarray  # (n_rows,) bool: resampled from per-sample losses
    parametric: np.ndarray  # (n_rows,) bool: drawn from test_mse_se
    method: str

    @property
    def n_resamples(self) -> int:
        """Resamples per row."""
        return self.loss.shape[0]


def evaluation_resamples(table: pd.DataFrame, samples: SampleLosses | None, n_resamples: int,
                         seed: int) -> EvalResamples:
    """The evaluation resamples of every row of `table` (columns cell, test_mse, and test_mse_se if recorded)."""
    n_rows = len(table)
    loss = np.tile(table["test_mse"].to_numpy(float), (n_resamples, 1))
    paired = np.zeros(n_rows, bool)
    if samples is not None and "cell" in table and n_resamples:
        rows = samples.rows_of(table["cell"])
        have = rows >= 0
        if have.any():
            loss[:, have] = samples.resampled_mse(rows[have], n_resamples, seed)
            paired = have
    parametric = np.zeros(n_rows, bool)
    if "test_mse_se" in table and n_resamples:
        se = table["test_mse_se"].to_numpy(float)
        mse = table["test_mse"].to_numpy(float)
        parametric = ~paired & np.isfinite(se) & (se > 0) & np.isfinite(mse) & (mse > 0)
        if parametric.any():
            rng = np.random.default_rng([seed, 1])
            rel = se[parametric] / mse[parametric]
            loss[:, parametric] = mse[parametric] * np.exp(rel * rng.standard_normal((n_resamples, parametric.sum()))
                                                           - 0.5 * rel ** 2)
    parts = []
    if paired.any():
        parts.append(f"{int(paired.sum())} cells: test samples resampled jointly for all cells (paired)")
    if parametric.any():
        parts.append(f"{int(parametric.sum())} cells: lognormal draws from test_mse_se (no per-sample losses; "
                     "unpaired)")
    rest = int((~paired & ~parametric).sum())
    if rest:
        parts.append(f"{rest} cells: no evaluation error recorded")
    return EvalResamples(loss=loss, paired=paired, parametric=parametric, method="; ".join(parts) or "none")
