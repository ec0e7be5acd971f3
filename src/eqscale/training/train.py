"""`eqscale train --cell-dir results/runs/<cell>`: train one grid cell to exactly its number of steps.

The cell's model, size, budget, data fraction, augmentation and seed are read from its directory
name (`eqscale.cells.Cell` is the one place that writes and reads it); its steps follow from the
budget (`eqscale.grid.plan_cell`); the optimisation settings come from the config's `training`
section. A killed job rerun with the same arguments resumes from its last
good checkpoint and ends with the same weights as an uninterrupted run.

Outputs in the cell directory: metrics.csv (during training), checkpoint.pt (+ .prev, during),
model.pt (final weights) and run.json (written last; its presence means the cell is done).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import logging
import math
import sys
from pathlib import Path

import numpy as np
import torch

from eqscale.cells import Cell, CellError
from eqscale.config import RUNTIME_SETTINGS, ConfigError, add_config_arguments, add_runtime_arguments, config_from_args
from eqscale.data.dataset import train_batch_stream
from eqscale.grid import plan_cell
from eqscale.io_utils import atomic_write_bytes, package_versions
from eqscale.data.batch import batch_structure
from eqscale.data.token_format import split_size
from eqscale.models.counts import num_params, step_flops, steps_for_budget
from eqscale.models.registry import build_model
from eqscale.records import MODEL_NAME, RunRecord, write_record
from eqscale.training.cell_lock import LOCK_NAME, CellBusy, cell_lock  # noqa: F401  (re-exported: its home moved)
from eqscale.training.device import choose_device
from eqscale.training.cell_files import diverged_wall_time
from eqscale.training.loop import TrainingDiverged, train_loop
from eqscale.training.lr_rule import RuleError, read_rule
from eqscale.training.measure import ValidationLoss
from eqscale.training.seeding import seed_everything




def learning_rate(cell: Cell, config: dict, lr_rule: str | Path | None) -> float:
    """The cell's peak learning rate: its own (a sweep cell), the family's fitted rule, or the config's."""
    if cell.lr is not None:
        return cell.lr
    if config["lr_sweep"]["enabled"]:
        if lr_rule is None:
            raise RuleError("lr_sweep.enabled is set: pass the fitted rule with --lr-rule (eqscale lr-rule writes it)")
        return read_rule(lr_rule, cell.model)(num_params(cell.model, cell.size))
    return float(config["training"]["lr"][cell.model])


def train_cell(cell_dir: str | Path, tokens_dir: str | Path, config: dict, device: str = "auto",
               progress: bool = True, lr_rule: str | Path | None = None) -> RunRecord:
    """Train the cell in `cell_dir`; return the run record written to run.json."""
    cell_dir = Path(cell_dir)
    cell = plan_cell(Cell.from_dir(cell_dir), config)
    lr = learning_rate(cell, config, lr_rule)
    with cell_lock(cell_dir):
        return _train_locked(cell, cell_dir, tokens_dir, config, device, progress, lr)


def _train_locked(cell: Cell, cell_dir: Path, tokens_dir: str | Path, config: dict, device: str,
                  progress: bool, lr: float) -> RunRecord:
    """`train_cell` once the cell's lock is held: train (or resume), write model.pt, then run.json."""
    training, horizon = config["training"], config["tokens"]["horizon"]
    torch.set_num_threads(training["threads"])
    dev = choose_device(device)
    seed_everything(cell.seed)
    model = build_model(cell.model, cell.size, compile=training["compile"]).to(dev)
    stream = train_batch_stream(tokens_dir, batch_size=training["batch_size"], horizon=horizon,
                                data_fraction=cell.data_fraction, augment=cell.augment, seed=cell.seed,
                                num_workers=training["num_workers"])
    # the steps whose batches, exactly as the loader will deliver them, add up to the budget (or the cap)
    steps = steps_for_budget(cell.model, cell.size, cell.budget, stream.loader.structures, guess=cell.steps)
    stopping = training["early_stopping"]
    validation = None
    if split_size(tokens_dir, "val"):
        validation = ValidationLoss(tokens_dir, horizon, stopping["val_samples"], config["seed"],
                                    config["evaluation"]["batch_size"], dev)
    elif cell.converge:
        raise ValueError(f"{cell.id} trains until its validation loss stops improving, but {tokens_dir} has no "
                         "validation split: raise tokens.val_fraction")
    diverged = None
    try:
        result = train_loop(
            model, stream, steps=steps, lr=lr, warmup_fraction=training["warmup_fraction"],
            schedule=training["schedule"], weight_decay=training["weight_decay"], grad_clip=training["grad_clip"],
            out_dir=cell_dir, checkpoint_every_s=training["checkpoint_every_s"], log_every=training["log_every"],
            device=dev,
            flops_per_step_fn=lambda batch: step_flops(cell.model, cell.size, batch_structure(batch))["total"],
            # only what decides the result: an unrelated config edit must not void a resumable checkpoint
            progress=progress, config={"seed": config["seed"], "tokens": config["tokens"], "cell": cell.as_record(),
                                       "training": {k: v for k, v in training.items() if k not in RUNTIME_SETTINGS}},
            validate_fn=validation, validate_every=stopping["validate_every"] if cell.converge else None,
            patience=stopping["patience"] if cell.converge else None,
        )
    except TrainingDiverged as err:
        # a result, not a crash: the cell is recorded as diverged and counts against its family
        diverged = err
        result = {"steps": err.step - 1, "final_loss": None, "resumed_from_step": None, "val_loss": None,
                  "best_step": None, "stopped_early": False, "wall_time_s": math.nan}
    done = int(result["steps"])
    flops = step_flops(cell.model, cell.size, stream.loader.structures(0, done))
    buffer = io.BytesIO()  # torch.save names its archive after the file: keep temp names out of the bytes
    torch.save(getattr(model, "_orig_mod", model).state_dict(), buffer)
    weights = buffer.getvalue()
    atomic_write_bytes(cell_dir / MODEL_NAME, weights)
    record = RunRecord(
        cell=cell, steps=done, batch_size=training["batch_size"], lr=lr, params=int(num_params(cell.model, cell.size)),
        total_flops=float(np.sum(flops["total"])), flops_attention=float(np.sum(flops["attention"])),
        flops_per_step_nominal=float(cell.flops_per_step),
        train_tokens=int(np.sum(stream.loader.structures(0, done).tokens)),
        num_train_trajectories=int(stream.num_trajectories), num_train_samples=int(stream.num_samples),
        final_train_loss=result["final_loss"], val_loss=result["val_loss"],
        best_step=result["best_step"] if cell.converge else None, stopped_early=bool(result["stopped_early"]),
        wall_time_s=float(result["wall_time_s"]) if diverged is None else diverged_wall_time(cell_dir),
        device=str(dev) if dev.type == "cpu" else torch.cuda.get_device_name(dev),
        model_sha256=hashlib.sha256(weights).hexdigest(),
        versions=package_versions("eqscale", "torch", "numpy", "h5py"),
        config={k: config[k] for k in ("seed", "training", "tokens")},
        resumed_from_step=result["resumed_from_step"],
        diverged=diverged is not None, diverged_message=None if diverged is None else str(diverged),
    )
    write_record(record, cell_dir)  # last: its presence means the cell is done
    return record


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and train one cell."""
    parser = argparse.ArgumentParser(prog="eqscale train", description=__doc__.splitlines()[0])
    add_config_arguments(parser)
    add_runtime_arguments(parser)
    parser.add_argument("--cell-dir", type=Path, required=True,
                        help="the cell's run directory, results/runs/<model>/size~S/budget~B/data~F/aug~A/seed~K")
    parser.add_argument("--tokens", type=Path, default=Path("results/tokens"), help="token shard directory")
    parser.add_argument("--device", default="auto", help="auto (a free GPU, else CPU), cpu, cuda or cuda:N")
    parser.add_argument("--lr-rule", type=Path, default=None,
                        help="the learning-rate rule (results/lr/<model>.json), read by lr~auto cells when lr_sweep is on")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        config = config_from_args(args)
        train_cell(args.cell_dir, args.tokens, config, device=args.device, progress=not args.no_progress,
                   lr_rule=args.lr_rule)
    except (ConfigError, CellError, CellBusy, RuleError, ValueError, FileNotFoundError) as err:
        print(f"eqscale train: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
