"""Fake cell directories (run.json, eval.json, metrics.csv) for the analysis tests."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd


def write_cell(root: Path, row: dict, *, with_eval: bool = True, metrics_rows: int = 5) -> Path:
    """A fake trained (and evaluated) cell under root, in the layout of eqscale.grid.cell_dir."""
    cell = root / "runs" / row["model"] / f"size~{row['size']}" / f"steps~{int(row['steps'])}" / \
        f"data~{row['data_fraction']:.6g}" / f"aug~{int(bool(row['augment']))}" / f"seed~{int(row['seed'])}"
    cell.mkdir(parents=True, exist_ok=True)
    budget = row.get("budget")
    run = {"cell": {"model": row["model"], "size": row["size"], "steps": int(row["steps"]),
                    "data_fraction": float(row["data_fraction"]), "augment": bool(row["augment"]),
                    "seed": int(row["seed"]), "batch_size": 8, "lr": 1e-3,
                    "budget": None if budget is None or (isinstance(budget, float) and math.isnan(budget))
                    else float(budget)},
           "params": int(row["params"]), "flops_per_step": float(row["flops"]) / int(row["steps"]),
           "total_flops": float(row["flops"]), "tokens_per_step": 4096.0, "train_tokens": float(row["tokens"]),
           "num_train_trajectories": int(row["num_train_trajectories"]), "wall_time_s": float(row["wall_time_s"]),
           "device": "cpu", "versions": {"torch": "test"}}
    (cell / "run.json").write_text(json.dumps(run))
    if with_eval:
        (cell / "eval.json").write_text(json.dumps({
            "test_mse": float(row["test_mse"]), "const_velocity_mse": float(row["const_velocity_mse"]),
            "equivariance_error": float(row["equivariance_error"]), "num_test_samples": 64}))
    steps = np.unique(np.linspace(1, int(row["steps"]), metrics_rows).astype(int))
    loss = float(row["test_mse"]) * (1 + 5 / np.sqrt(steps))
    pd.DataFrame({"step": steps, "train_loss": loss, "lr": 1e-3, "flops": steps * 1e6, "tokens_per_s": 1e4,
                  "wall_time_s": steps * 0.01}).to_csv(cell / "metrics.csv", index=False)
    return cell
