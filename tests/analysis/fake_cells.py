"""Fake cell directories (run.json, eval.json, metrics.csv) for the analysis tests, written through eqscale.records."""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np
import pandas as pd

from eqscale.cells import Cell
from eqscale.records import EvalRecord, RunRecord, write_record


def _number(row: dict, key: str, default: float = math.nan) -> float:
    value = row.get(key, default)
    return default if value is None else float(value)


def cell_of_row(row: dict) -> Cell:
    """The cell a summary-like row describes (a row without a budget gets its FLOPs as budget)."""
    budget = _number(row, "budget")
    if not math.isfinite(budget):
        budget = float(row["flops"])
    return Cell(model=row["model"], size=str(row["size"]), budget=budget, data_fraction=float(row["data_fraction"]),
                augment=bool(row["augment"]), seed=int(row["seed"]))


FAKE_SAMPLES = 64
_COUNTS = np.full(FAKE_SAMPLES, 300, dtype=np.int64)  # every fake test sample: 100 vertices x 3 coordinates
_CONTACT = np.arange(FAKE_SAMPLES) % 3 == 0


def _write_samples(cell_dir: Path, test_mse: float, cv_mse: float) -> None:
    """eval_samples.npz whose samples sum to `test_mse` (heavy-tailed per-sample spread, seeded by the cell)."""
    rng = np.random.default_rng(int(hashlib.sha256(str(cell_dir).encode()).hexdigest()[:8], 16))
    weights = rng.lognormal(0.0, 1.0, FAKE_SAMPLES)
    sq_error = test_mse * _COUNTS.sum() * weights / weights.sum()
    cv = cv_mse * _COUNTS.sum() * np.linspace(0.5, 1.5, FAKE_SAMPLES) / np.linspace(0.5, 1.5, FAKE_SAMPLES).sum()
    np.savez(cell_dir / "eval_samples.npz", sample=np.arange(FAKE_SAMPLES, dtype=np.int64), sq_error=sq_error,
             cv_sq_error=cv, n_values=_COUNTS, in_contact=_CONTACT)


def write_cell(root: Path, row: dict, *, with_eval: bool = True, metrics_rows: int = 5) -> Path:
    """A fake trained (and evaluated) cell under root/runs, in the layout of eqscale.cells.Cell."""
    cell = cell_of_row(row)
    cell_dir = root / "runs" / cell.id
    cell_dir.mkdir(parents=True, exist_ok=True)
    weights = f"weights of {cell.id}".encode()
    (cell_dir / "model.pt").write_bytes(weights)
    sha = hashlib.sha256(weights).hexdigest()
    steps = int(row["steps"])
    diverged = bool(row.get("diverged", False))
    write_record(RunRecord(
        cell=cell, steps=steps, batch_size=8, lr=1e-3, params=int(row["params"]), total_flops=float(row["flops"]),
        flops_per_step_nominal=float(row["flops"]) / steps, train_tokens=int(row["tokens"]),
        num_train_trajectories=int(row["num_train_trajectories"]), num_train_samples=int(row["num_train_trajectories"]) * 40,
        final_train_loss=None if diverged else 2 * float(row["test_mse"]), wall_time_s=float(row["wall_time_s"]),
        device="cpu", model_sha256=sha, versions={"torch": "test"}, config={}, diverged=diverged), cell_dir)
    if with_eval:
        samples = 0 if diverged else FAKE_SAMPLES
        if not diverged:
            _write_samples(cell_dir, float(row["test_mse"]), float(row["const_velocity_mse"]))
        write_record(EvalRecord(
            cell=cell, model_sha256=sha, test_mse=math.nan if diverged else float(row["test_mse"]),
            const_velocity_mse=math.nan if diverged else float(row["const_velocity_mse"]),
            equivariance_error=math.nan if diverged else float(row["equivariance_error"]), n_test_samples=samples,
            wall_time_s=0.1 * float(row["wall_time_s"]), diverged=diverged,
            samples_file=None if diverged else "eval_samples.npz"), cell_dir)
    steps_logged = np.unique(np.linspace(1, steps, metrics_rows).astype(int))
    loss = float(row["test_mse"]) * (1 + 5 / np.sqrt(steps_logged))
    pd.DataFrame({"step": steps_logged, "train_loss": loss, "lr": 1e-3, "flops": steps_logged * 1e6,
                  "tokens_per_s": 1e4, "wall_time_s": steps_logged * 0.01}).to_csv(cell_dir / "metrics.csv", index=False)
    return cell_dir
