"""The training loop: AdamW on a warm-up + decay schedule, or schedule-free AdamW; checkpoints a killed job resumes from.

`train_loop` trains a model for exactly `steps` optimizer steps and writes into `out_dir`:

* `metrics.csv`, one row per `log_every` steps (and the last step), columns exactly
  `step,train_loss,lr,flops,tokens_per_s,wall_time_s`: step = optimizer steps done; train_loss =
  mean loss over the steps since the previous row; lr = learning rate of the row's step; flops =
  cumulative analytic FLOPs (`flops_per_step_fn`); tokens_per_s = real face tokens per second
  over the interval; wall_time_s = training time so far, summed over resumed segments;
* `checkpoint.pt` and `checkpoint.prev.pt` (see `checkpoint.py`), every `checkpoint_every_s`
  seconds and/or `checkpoint_every_steps` steps, and at the end;
* `val.csv` (with `validate_fn`), columns `step,val_loss`: the validation loss every
  `validate_every` steps and at the end.

Validation and early stopping. `validate_fn(model)` returns a validation loss (deterministic: a
fixed subset, the model in eval mode). With `patience`, the loop keeps the weights of the best
validation loss so far (in memory and in every checkpoint), stops once `patience` steps have passed
without a better one, and ends with those best weights: the run's result is its best validation
point, `best_step`. Without `patience`, a `validate_fn` only records the losses and the final one.

The batch-stream contract. `batch_stream` is a callable: `batch_stream(start_step)` returns an
iterator whose first item is the batch for optimizer step index `start_step` (0-based), the next
for `start_step + 1`, and so on, at least up to `steps - 1`. It must be a pure function of
`start_step` and its own configuration (seed, data, batch size): the loader derives its shuffling
from (seed, epoch) and its position within the epoch from the step, so `batch_stream(k)` yields
exactly what `batch_stream(0)` yields after skipping k batches, without reading them. The loop
keeps no data-loader state beyond the step; an optional `seed` attribute on the stream is
recorded in the checkpoint and must match on resume, and an optional `num_trajectories`
attribute is passed through to the result.

Resume. A rerun with the same arguments loads the newest good checkpoint (model, optimizer,
scheduler, step, all RNG states, metrics so far), rewrites metrics.csv to the rows it holds (rows
logged after that checkpoint by the killed run are dropped and recomputed), restarts the stream at
the checkpoint's step and continues. On CPU the final weights and every metrics.csv value except
the two timing columns are bit-identical to an uninterrupted run. A checkpoint from a different
run (other steps, learning rate, schedule, model or config) is not resumed from.

Optimizers. `optimizer="adamw"` (the rigid-body study): AdamW on the warm-up + decay schedule of
`schedule.py`. `optimizer="schedulefree"` (the force-field study, as paper 2): schedule-free AdamW
(`schedulefree.AdamWScheduleFree`) with its own linear warm-up of `warmup` steps and a constant
scheduler. It trains at the point y and averages the iterates into x: validation runs on x and the
loop ends with x in the model (`optimizer.eval()`), while checkpoints hold y and the optimizer in
train mode, so a resumed run continues the very same arithmetic. Moving y to x and back is not
exact in floating point, so a validation restores y from a copy rather than by `optimizer.train()`
alone; a run with validations then ends exactly like one without. metrics.csv's lr is the warmed-up
rate the step used.

A `loss_fn` may return a pair (objective, reported): the objective is minimised, the reported loss
goes to metrics.csv (the symmetry-loss arm minimises L + lambda L_sym and reports L).

Divergence. A non-finite loss or gradient norm raises `TrainingDiverged` naming the step before
the optimizer step is taken (its `step` attribute); no checkpoint is written after it, so the last
good one stays.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import io
import json
import logging
import math
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
from tqdm import tqdm

from eqscale.data.batch import vertex_mse
from eqscale.io_utils import atomic_write_text
from eqscale.training.checkpoint import CheckpointStore
from eqscale.training.schedule import build_scheduler, warmup_steps_for
from eqscale.training.seeding import capture_rng_state, restore_rng_state

log = logging.getLogger("eqscale.training")

Batch = dict[str, torch.Tensor]
BatchStream = Callable[[int], Iterator[Batch]]
METRICS_COLUMNS = ("step", "train_loss", "lr", "flops", "tokens_per_s", "wall_time_s")
TIMING_COLUMNS = ("tokens_per_s", "wall_time_s")  # the only columns that differ between reruns
OPTIMIZERS = ("adamw", "schedulefree")


def subnormals_flushed() -> bool:
    """Whether this thread's CPU float arithmetic flushes subnormal numbers to zero."""
    return torch.tensor(1e-39, dtype=torch.float32).mul(1.0).item() == 0.0


@contextlib.contextmanager
def flushed_subnormals() -> Iterator[None]:
    """Flush CPU subnormals to zero inside, and restore the previous mode after.

    The mode is a CPU flag of the calling thread, so it outlives the call that sets it: left on, it
    changed every later computation of the process (a kd-tree build in scipy recursed until it crashed
    when assets were built after a training run in the same process).
    """
    previous = subnormals_flushed()
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(previous)


def _flush_subnormals_on_cpu(fn: Callable) -> Callable:
    # GATr's distance logits underflow to subnormal softmax weights; CPU arithmetic on subnormals made its
    # attention backward ~3x slower (bench/RESULTS.md). Flushing them to zero changes nothing else.
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if torch.device(kwargs.get("device", "cpu")).type != "cpu":
            return fn(*args, **kwargs)
        with flushed_subnormals():
            return fn(*args, **kwargs)
    return wrapper


class TrainingDiverged(RuntimeError):
    """The loss or gradient became NaN or infinite; the message names the step and the checkpoint kept."""

    def __init__(self, message: str, step: int) -> None:
        super().__init__(message)
        self.step = step  # the 1-based optimizer step whose loss or gradient was not finite


VAL_COLUMNS = ("step", "val_loss")


def _write_val(path: Path, rows: list[dict]) -> None:
    atomic_write_text(path, "".join([",".join(VAL_COLUMNS) + "\n"] + [f"{r['step']},{r['val_loss']!r}\n"
                                                                        for r in rows]))


def vertex_loss(model: torch.nn.Module, batch: Batch) -> torch.Tensor:
    """The study's training loss: MSE of predicted vertex positions over every vertex of the packed batch."""
    return vertex_mse(model(batch), batch["vertices_target"])


def face_tokens(batch: Batch) -> int:
    """Tokens (faces) in a packed batch: all of them are real."""
    return int(batch["faces"].shape[0])


def build_optimizer(model: torch.nn.Module, lr: float, weight_decay: float,
                    betas: tuple[float, float] = (0.9, 0.999)) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices only (biases and norm gains are not decayed)."""
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.ndim >= 2]
    no_decay = [p for p in params if p.ndim < 2]
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=lr, betas=betas)


def build_schedulefree_optimizer(model: torch.nn.Module, lr: float, weight_decay: float, warmup: int,
                                 betas: tuple[float, float] = (0.9, 0.999)) -> torch.optim.Optimizer:
    """Schedule-free AdamW with `warmup` linear warm-up steps, weight decay on matrices only (as `build_optimizer`)."""
    import schedulefree  # only the force-field study needs it

    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.ndim >= 2]
    no_decay = [p for p in params if p.ndim < 2]
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return schedulefree.AdamWScheduleFree([g for g in groups if g["params"]], lr=lr, betas=betas,
                                          warmup_steps=warmup)


@contextlib.contextmanager
def averaged_weights(optimizer: torch.optim.Optimizer, params: list[torch.Tensor]) -> Iterator[None]:
    """The schedule-free average x in the model for the block; the training point y back after it, bit for bit."""
    saved = [p.detach().clone() for p in params]
    optimizer.eval()
    try:
        yield
    finally:
        optimizer.train()
        with torch.no_grad():
            for p, value in zip(params, saved):
                p.copy_(value)


def _format_row(row: dict) -> list[str]:
    # repr of a float round-trips exactly, so identical runs give identical text
    return [str(row["step"]), repr(float(row["train_loss"])), repr(float(row["lr"])), str(int(row["flops"])),
            f"{row['tokens_per_s']:.6g}", f"{row['wall_time_s']:.6g}"]


class MetricsLog:
    """metrics.csv: rewritten whole on (re)start from the checkpoint's rows, then appended to."""

    def __init__(self, path: Path, rows: list[dict]) -> None:
        self.path = path
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(METRICS_COLUMNS)
        writer.writerows(_format_row(r) for r in rows)
        atomic_write_text(path, buffer.getvalue())

    def append(self, row: dict) -> None:
        """Add one row and flush it to the file."""
        with open(self.path, "a", newline="") as fh:
            csv.writer(fh, lineterminator="\n").writerow(_format_row(row))


def read_metrics(path: str | Path) -> list[dict]:
    """metrics.csv as a list of rows (step and flops as int, the rest as float)."""
    with open(path, newline="") as fh:
        return [{k: (int(v) if k in ("step", "flops") else float(v)) for k, v in row.items()}
                for row in csv.DictReader(fh)]


def _signature(model: torch.nn.Module, batch_stream: BatchStream, **settings) -> dict:
    """What must match for a checkpoint to belong to this run."""
    shapes = sorted((name, tuple(t.shape)) for name, t in model.state_dict().items())
    return {
        **settings,
        "model": type(model).__name__,
        "model_shapes": json.dumps(shapes),
        "stream_seed": getattr(batch_stream, "seed", None),
    }


def _signature_mismatch(stored: dict, current: dict) -> str | None:
    stored = {"optimizer": "adamw", **stored}  # checkpoints from before the choice existed were AdamW's
    differing = [k for k in sorted(set(stored) | set(current)) if stored.get(k) != current.get(k)]
    if not differing:
        return None
    shown = [k if k in ("model_shapes", "config") else f"{k}: {stored.get(k)!r} there, {current.get(k)!r} now"
             for k in differing]
    return "different " + "; ".join(shown)


@_flush_subnormals_on_cpu
def train_loop(
    model: torch.nn.Module,
    batch_stream: BatchStream,
    *,
    steps: int,
    lr: float,
    out_dir: str | Path,
    warmup_fraction: float = 0.05,
    warmup_steps: int | None = None,
    schedule: str = "cosine",
    final_lr_fraction: float = 0.0,
    weight_decay: float = 0.01,
    grad_clip: float | None = 1.0,
    betas: tuple[float, float] = (0.9, 0.999),
    checkpoint_every_s: float | None = 120.0,
    checkpoint_every_steps: int | None = None,
    log_every: int = 10,
    device: str | torch.device = "cpu",
    flops_per_step_fn: Callable[[Batch], float] | None = None,
    loss_fn: Callable[[torch.nn.Module, Batch], torch.Tensor | tuple[torch.Tensor, torch.Tensor]] = vertex_loss,
    tokens_fn: Callable[[Batch], int] = face_tokens,
    bf16: bool | None = None,
    progress: bool = True,
    config: dict | None = None,
    validate_fn: Callable[[torch.nn.Module], float] | None = None,
    validate_every: int | None = None,
    patience: int | None = None,
    optimizer: str = "adamw",
) -> dict:
    """Train `model` for `steps` steps on `batch_stream` (fewer if early stopping ends it); resume if possible.

    Returns steps (taken), final_loss (last metrics row), total_flops, total_tokens, wall_time_s,
    resumed_from_step (None on a fresh start), resume_message, metrics (all rows),
    num_train_trajectories (the stream's attribute, if any), and with `validate_fn`: val_loss (of the
    weights the model ends with), val_rows, best_step and stopped_early.
    """
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {optimizer!r} (known: {', '.join(OPTIMIZERS)})")
    schedule_free = optimizer == "schedulefree"
    if patience is not None and (validate_fn is None or validate_every is None):
        raise ValueError("early stopping (patience) needs validate_fn and validate_every")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    device = torch.device(device)
    if log_every < 1:
        raise ValueError(f"log_every must be at least 1, got {log_every}")
    warmup = warmup_steps if warmup_steps is not None else warmup_steps_for(steps, warmup_fraction)
    use_bf16 = device.type == "cuda" if bf16 is None else bf16
    model.to(device)
    kind = optimizer
    if schedule_free:
        optimizer = build_schedulefree_optimizer(model, lr, weight_decay, warmup, betas)
        # the optimizer warms up by itself and needs no decay: the scheduler only keeps the checkpoint format
        scheduler = torch.optim.lr_scheduler.ConstantLR(optimizer, factor=1.0, total_iters=0)
    else:
        optimizer = build_optimizer(model, lr, weight_decay, betas)
        scheduler = build_scheduler(optimizer, steps, warmup, schedule, final_lr_fraction)
    config_json = json.dumps(config, sort_keys=True, default=str) if config is not None else None
    signature = _signature(model, batch_stream, steps=steps, lr=lr, warmup=warmup, schedule=schedule,
                           final_lr_fraction=final_lr_fraction, weight_decay=weight_decay, grad_clip=grad_clip,
                           betas=list(betas), config=config_json, validate_every=validate_every, patience=patience,
                           optimizer=kind)

    store = CheckpointStore(out_dir)
    resumed = store.load(check=lambda state: _signature_mismatch(state.get("signature", {}), signature))
    step, total_flops, total_tokens, wall_before = 0, 0, 0, 0.0
    rows: list[dict] = []
    # the current logging interval, carried through checkpoints that fall inside it
    interval = {"loss_sum": 0.0, "count": 0, "tokens": 0, "start_wall": 0.0}
    saved_step = None
    val_rows: list[dict] = []
    best = {"step": None, "val_loss": math.inf, "model": None}  # the best validation point (early stopping)
    stopped_early = False
    if resumed.state is not None:
        state = resumed.state
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        restore_rng_state(state["rng"])
        step, total_flops, total_tokens = state["step"], state["flops"], state["tokens"]
        wall_before, rows, interval = state["wall_time_s"], list(state["metrics"]), dict(state["interval"])
        val_rows, best, stopped_early = list(state["val_rows"]), dict(state["best"]), bool(state["stopped_early"])
        saved_step = step
    metrics = MetricsLog(out_dir / "metrics.csv", rows)
    if validate_fn is not None:
        _write_val(out_dir / "val.csv", val_rows)

    def save() -> None:
        nonlocal saved_step, last_save
        store.save({
            "format": 1, "signature": signature, "step": step, "flops": total_flops, "tokens": total_tokens,
            "wall_time_s": wall(), "metrics": rows, "interval": interval,
            "model": model.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
            "rng": capture_rng_state(),
            "data": {"next_step": step, "stream_seed": signature["stream_seed"]},
            "config": config_json, "val_rows": val_rows, "best": best, "stopped_early": stopped_early,
        })
        saved_step, last_save = step, time.monotonic()

    start = time.perf_counter()
    last_save = time.monotonic()

    def wall() -> float:
        return wall_before + time.perf_counter() - start

    params = [p for p in model.parameters() if p.requires_grad]
    autocast = (torch.autocast(device_type=device.type, dtype=torch.bfloat16) if use_bf16
                else contextlib.nullcontext())
    bar = tqdm(total=steps, initial=step, disable=not progress, file=sys.stderr, unit="step", dynamic_ncols=True,
               desc=out_dir.name or "train")

    def validate() -> None:
        nonlocal stopped_early
        # schedule-free: measure (and keep as the best) the averaged weights the run would end with
        with averaged_weights(optimizer, params) if schedule_free else contextlib.nullcontext():
            loss_value = float(validate_fn(model))
            improved = patience is not None and loss_value < best["val_loss"]
            if improved:
                best.update(step=step, val_loss=loss_value,
                            model={k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()})
        model.train()
        val_rows.append({"step": step, "val_loss": loss_value})
        _write_val(out_dir / "val.csv", val_rows)
        if patience is not None and not improved and step - best["step"] >= patience:
            stopped_early = True

    try:
        batches = iter(batch_stream(step)) if step < steps and not stopped_early else iter(())
        model.train()
        if schedule_free:
            optimizer.train()  # a no-op after a resume: checkpoints are taken in train mode
        while step < steps and not stopped_early:
            try:
                batch = next(batches)
            except StopIteration:
                raise ValueError(f"batch_stream ran out at step {step} of {steps}: it must yield a batch for "
                                 "every step from its start step on") from None
            batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
            step_lr = optimizer.param_groups[0]["lr"]
            with autocast:
                loss = loss_fn(model, batch)
            loss, reported = loss if isinstance(loss, tuple) else (loss, None)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if grad_clip is not None:
                grad_norm = torch.nn.utils.clip_grad_norm_(params, grad_clip)
            else:
                grad_norm = torch.nn.utils.get_total_norm([p.grad for p in params if p.grad is not None])
            # one host sync per step for both checks (and the reported loss, where it is another)
            checked = [loss.detach().float(), grad_norm.detach().float()]
            if reported is not None:
                checked.append(reported.detach().float())
            loss_value, norm_value, *other = torch.stack(checked).tolist()
            if not (math.isfinite(loss_value) and math.isfinite(norm_value)):
                what = f"loss is {loss_value}" if not math.isfinite(loss_value) else f"gradient norm is {norm_value}"
                kept = (f"the last good checkpoint ({store.current}, step {saved_step}) is kept"
                        if saved_step is not None else "no checkpoint was written")
                raise TrainingDiverged(f"training diverged at step {step + 1} of {steps} in {out_dir}: {what}; "
                                       f"{kept}; try a lower learning rate (now {lr}) or a longer warm-up", step + 1)
            optimizer.step()
            scheduler.step()
            if schedule_free:
                step_lr = optimizer.param_groups[0]["scheduled_lr"]  # the warmed-up rate this step used
            if other:
                loss_value = other[0]
            step += 1
            tokens = tokens_fn(batch)
            total_tokens += tokens
            if flops_per_step_fn is not None:
                total_flops += int(flops_per_step_fn(batch))
            interval["loss_sum"] += loss_value
            interval["count"] += 1
            interval["tokens"] += tokens
            bar.update(1)
            if validate_fn is not None and ((validate_every and step % validate_every == 0) or step == steps):
                validate()
            if step % log_every == 0 or step == steps or stopped_early:
                now = wall()
                throughput = interval["tokens"] / max(now - interval["start_wall"], 1e-9)
                row = {"step": step, "train_loss": interval["loss_sum"] / interval["count"], "lr": step_lr,
                       "flops": total_flops, "tokens_per_s": throughput, "wall_time_s": now}
                rows.append(row)
                metrics.append(row)
                interval = {"loss_sum": 0.0, "count": 0, "tokens": 0, "start_wall": now}
                bar.set_postfix(loss=f"{row['train_loss']:.3g}", tok_s=f"{row['tokens_per_s']:.3g}", refresh=False)
            due_by_steps = checkpoint_every_steps is not None and step % checkpoint_every_steps == 0
            due_by_time = checkpoint_every_s is not None and time.monotonic() - last_save >= checkpoint_every_s
            if due_by_steps or due_by_time or step == steps or stopped_early:
                save()
    finally:
        bar.close()
    if validate_fn is not None and (not val_rows or val_rows[-1]["step"] != step):
        validate()  # a finished run resumed with nothing left to do still reports its loss
    if schedule_free:
        optimizer.eval()  # the run's result is the averaged point x
    val_loss = val_rows[-1]["val_loss"] if val_rows else None
    best_step = step
    if patience is not None and best["model"] is not None:
        model.load_state_dict(best["model"])  # the run's result is its best validation point
        val_loss, best_step = best["val_loss"], best["step"]
    return {
        "steps": step,
        "final_loss": rows[-1]["train_loss"] if rows else None,
        "total_flops": total_flops,
        "total_tokens": total_tokens,
        "wall_time_s": wall(),
        "resumed_from_step": resumed.state["step"] if resumed.state is not None else None,
        "resume_message": resumed.message,
        "metrics": rows,
        "num_train_trajectories": getattr(batch_stream, "num_trajectories", None),
        "val_loss": val_loss,
        "val_rows": val_rows,
        "best_step": best_step,
        "stopped_early": stopped_early,
    }
