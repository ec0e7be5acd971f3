"""Files a cell's stages hand each other, in both studies: model.pt (checked against run.json), eval_samples.npz,
metrics.csv's training time and the eval.json of a diverged run.

Torch is the only heavy import: the force-field stages read these without the rigid-body models.
"""

from __future__ import annotations

import hashlib
import io
import math
from pathlib import Path

import numpy as np
import torch

from eqscale.io_utils import atomic_write_bytes
from eqscale.records import MODEL_NAME, EvalRecord, RecordError, RunRecord, write_record

SAMPLES_NAME = "eval_samples.npz"


def write_samples(path: Path, samples: dict) -> None:
    """The per-sample numbers as an .npz, atomically."""
    buffer = io.BytesIO()
    np.savez(buffer, **samples)
    atomic_write_bytes(path, buffer.getvalue())


def load_weights(cell_dir: Path, run: RunRecord, device: torch.device) -> dict:
    """The state dict in the cell's model.pt, after checking its sha256 against run.json's."""
    path = cell_dir / MODEL_NAME
    try:
        blob = path.read_bytes()
    except FileNotFoundError:
        raise RecordError(f"{path} not found: train the cell first (eqscale train --cell-dir {cell_dir})") from None
    digest = hashlib.sha256(blob).hexdigest()
    if digest != run.model_sha256:
        raise RecordError(f"{path} does not match the sha256 run.json records ({digest[:12]}... vs "
                          f"{run.model_sha256[:12]}...): the file is corrupt or from another run; retrain the cell")
    return torch.load(io.BytesIO(blob), map_location=device, weights_only=True)


def diverged_wall_time(cell_dir: Path) -> float:
    """Training time of a run that ended in divergence: the last metrics row's (0 if none was logged)."""
    from eqscale.training.loop import read_metrics

    try:
        rows = read_metrics(cell_dir / "metrics.csv")
    except (OSError, ValueError, KeyError):
        return 0.0
    return float(rows[-1]["wall_time_s"]) if rows else 0.0


def write_diverged_eval(run: RunRecord, cell_dir: Path, wall_time_s: float) -> EvalRecord:
    """eval.json of a cell whose training diverged: no test metrics (NaN), never a made-up number."""
    record = EvalRecord(cell=run.cell, model_sha256=run.model_sha256, test_mse=math.nan, const_velocity_mse=math.nan,
                        equivariance_error=math.nan, n_test_samples=0, wall_time_s=wall_time_s, diverged=True)
    write_record(record, cell_dir)
    return record
