"""The training loop in-process: metrics.csv, schedule and FLOPs bookkeeping, resume after damaged
checkpoints with identical results, divergence, and refusing checkpoints of another run."""

from __future__ import annotations

import itertools
import logging
import math

import pytest
import torch

from eqscale.data.batch import batch_structure
from eqscale.training.checkpoint import read_checkpoint
from eqscale.training.loop import (
    METRICS_COLUMNS,
    TrainingDiverged,
    build_optimizer,
    read_metrics,
    subnormals_flushed,
    train_loop,
    vertex_loss,
)
from eqscale.training.schedule import WarmupDecay
from training_synthetic import SyntheticStream, tiny_model

STEPS = 10


def _run(out_dir, steps=STEPS, model=None, stream=None, **overrides):
    model = model if model is not None else tiny_model()
    settings = dict(steps=steps, lr=3e-3, warmup_fraction=0.2, weight_decay=0.01, grad_clip=1.0, out_dir=out_dir,
                    checkpoint_every_s=None, checkpoint_every_steps=1, log_every=3, device="cpu",
                    flops_per_step_fn=lambda b: model.flops_per_step(batch_structure(b))["total"], progress=False,
                    config={"seed": 0, "training": {"lr": 3e-3}})
    settings.update(overrides)
    result = train_loop(model, stream or SyntheticStream(), **settings)
    return model, result


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def _without_timing(rows: list[dict]) -> list[tuple]:
    return [(r["step"], r["train_loss"], r["lr"], r["flops"]) for r in rows]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted run of STEPS steps: final weights and metrics rows."""
    out = tmp_path_factory.mktemp("reference")
    torch.manual_seed(0)
    model, result = _run(out)
    return model, read_metrics(out / "metrics.csv"), result


def test_metrics_csv_has_the_columns_rows_schedule_and_cumulative_flops(tmp_path):
    losses = []

    def recording_loss(model, batch):
        loss = vertex_loss(model, batch)
        losses.append(loss.item())
        return loss

    model, result = _run(tmp_path, loss_fn=recording_loss)
    header = (tmp_path / "metrics.csv").read_text().splitlines()[0]
    assert header == ",".join(METRICS_COLUMNS) == "step,train_loss,lr,flops,tokens_per_s,wall_time_s"
    rows = read_metrics(tmp_path / "metrics.csv")
    assert [r["step"] for r in rows] == [3, 6, 9, 10]
    batches = list(zip(range(STEPS), SyntheticStream()(0)))
    flops = [model.flops_per_step(batch_structure(b))["total"] for _, b in batches]
    assert [r["flops"] for r in rows] == [sum(flops[:s]) for s in (3, 6, 9, 10)]
    assert result["total_flops"] == sum(flops)
    assert result["total_tokens"] == sum(len(b["faces"]) for _, b in batches)
    schedule = WarmupDecay(STEPS, warmup=2)
    assert [r["lr"] for r in rows] == [3e-3 * schedule(s - 1) for s in (3, 6, 9, 10)]
    assert [r["train_loss"] for r in rows] == pytest.approx(
        [sum(losses[0:3]) / 3, sum(losses[3:6]) / 3, sum(losses[6:9]) / 3, losses[9]], rel=1e-12)
    assert all(r["tokens_per_s"] > 0 for r in rows)
    assert all(a["wall_time_s"] <= b["wall_time_s"] for a, b in zip(rows, rows[1:]))
    assert result["final_loss"] == rows[-1]["train_loss"] and result["steps"] == STEPS
    assert result["num_train_trajectories"] == SyntheticStream.num_trajectories
    assert read_checkpoint(tmp_path / "checkpoint.pt")["step"] == STEPS


def test_training_reduces_the_loss(tmp_path):
    batch = next(SyntheticStream()(0))
    _, result = _run(tmp_path, steps=30, lr=1e-2, log_every=10, checkpoint_every_steps=None,
                     stream=lambda start: itertools.repeat(batch))
    rows = result["metrics"]
    assert rows[-1]["train_loss"] < 0.5 * rows[0]["train_loss"]


def test_weight_decay_spares_biases_and_norm_gains():
    model = tiny_model()
    optimizer = build_optimizer(model, lr=1e-3, weight_decay=0.1)
    decayed, spared = optimizer.param_groups
    assert decayed["weight_decay"] == 0.1 and spared["weight_decay"] == 0.0
    assert all(p.ndim == 2 for p in decayed["params"]) and all(p.ndim == 1 for p in spared["params"])
    assert model.embedding.linear.weight in [p for p in decayed["params"]]
    assert len(decayed["params"]) + len(spared["params"]) == len(list(model.parameters()))


def test_progress_bar_reports_loss_and_throughput_on_stderr(tmp_path, capsys):
    _run(tmp_path, steps=4, log_every=2, progress=True)
    err = capsys.readouterr().err
    assert "4/4" in err and "loss=" in err and "tok_s=" in err


def test_a_finished_run_rerun_does_nothing_and_keeps_its_files(tmp_path, reference):
    _run(tmp_path)
    files = {name: (tmp_path / name).read_bytes() for name in ("metrics.csv", "checkpoint.pt", "checkpoint.prev.pt")}
    model, result = _run(tmp_path)
    assert result["resumed_from_step"] == STEPS
    assert {name: (tmp_path / name).read_bytes() for name in files} == files
    assert _same_weights(model, reference[0])


def test_resume_after_an_exception_mid_run_is_identical(tmp_path, reference):
    class Killed(Exception):
        pass

    class DyingStream(SyntheticStream):
        def __call__(self, start):
            for step, batch in zip(itertools.count(start), super().__call__(start)):
                if step == 7:
                    raise Killed
                yield batch

    with pytest.raises(Killed):
        _run(tmp_path, stream=DyingStream(), checkpoint_every_steps=4)
    assert read_checkpoint(tmp_path / "checkpoint.pt")["step"] == 4
    assert [r["step"] for r in read_metrics(tmp_path / "metrics.csv")] == [3, 6]  # 6 is past the checkpoint
    model, result = _run(tmp_path, checkpoint_every_steps=4)
    assert result["resumed_from_step"] == 4
    rows = read_metrics(tmp_path / "metrics.csv")
    assert _without_timing(rows) == _without_timing(reference[1])  # step 6 once, recomputed identically
    assert _same_weights(model, reference[0])


@pytest.mark.parametrize("damage_previous", [False, True])
def test_corrupt_checkpoints_fall_back_and_still_end_identically(tmp_path, reference, caplog, damage_previous):
    _run(tmp_path, steps=STEPS)
    current, previous = tmp_path / "checkpoint.pt", tmp_path / "checkpoint.prev.pt"
    current.write_bytes(current.read_bytes()[:-7])  # truncated
    data = bytearray(previous.read_bytes())
    if damage_previous:
        data[len(data) // 2] ^= 0x01
    previous.write_bytes(bytes(data))
    with caplog.at_level(logging.INFO, logger="eqscale.training"):
        model, result = _run(tmp_path)
    if damage_previous:
        assert result["resumed_from_step"] is None
        assert result["resume_message"].startswith("checkpoint.pt is corrupt (truncated: ")
        assert result["resume_message"].endswith("; checkpoint.prev.pt is corrupt (sha256 mismatch); "
                                                 "starting from scratch")
    else:
        assert result["resumed_from_step"] == STEPS - 1
        assert result["resume_message"].startswith("checkpoint.pt is corrupt (truncated: ")
        assert result["resume_message"].endswith(f"; resuming from checkpoint.prev.pt at step {STEPS - 1}")
    assert result["resume_message"] in caplog.text
    assert _same_weights(model, reference[0])
    assert _without_timing(read_metrics(tmp_path / "metrics.csv")) == _without_timing(reference[1])


def test_a_checkpoint_of_a_different_run_is_not_resumed(tmp_path, reference):
    _run(tmp_path, steps=6)
    model, result = _run(tmp_path, steps=STEPS)
    assert result["resumed_from_step"] is None
    assert result["resume_message"].startswith(
        "checkpoint.pt does not match this run (different steps: 6 there, 10 now;")
    assert result["resume_message"].endswith("; starting from scratch")
    assert _same_weights(model, reference[0])
    _, other = _run(tmp_path, steps=STEPS, lr=1e-3)
    assert "lr: 0.003 there, 0.001 now" in other["resume_message"]


def test_nan_loss_raises_naming_the_step_and_leaves_the_checkpoints_alone(tmp_path):
    model = tiny_model()
    calls = {"n": 0}
    on_disk = {}

    def poison(module, args, output):
        calls["n"] += 1
        if calls["n"] == 6:  # the forward of optimizer step 6
            on_disk.update({p.name: p.read_bytes() for p in tmp_path.iterdir()})
            return output * float("nan")
        return output

    model.register_forward_hook(poison)
    with pytest.raises(TrainingDiverged, match=r"at step 6 of 10 .*loss is nan.*checkpoint\.pt, step 5\) is kept"):
        _run(tmp_path, model=model)
    assert on_disk and {p.name: p.read_bytes() for p in tmp_path.iterdir()} == on_disk
    assert read_checkpoint(tmp_path / "checkpoint.pt")["step"] == 5
    assert [r["step"] for r in read_metrics(tmp_path / "metrics.csv")] == [3]


def test_subnormals_are_flushed_while_training_on_cpu_and_the_mode_is_restored_after(tmp_path):
    # the flag belongs to the thread: left on, it changed every later computation of the process
    seen = []

    def loss(model, batch):
        seen.append(subnormals_flushed())
        return vertex_loss(model, batch)

    assert not subnormals_flushed()
    _run(tmp_path / "ok", loss_fn=loss)
    assert seen and all(seen) and not subnormals_flushed()
    model = tiny_model()
    model.register_forward_hook(lambda module, args, output: output * float("nan"))
    with pytest.raises(TrainingDiverged):
        _run(tmp_path / "nan", model=model)
    assert not subnormals_flushed()  # restored on the way out of a failed run too
    assert torch.tensor(1e-39, dtype=torch.float32).item() != 0.0


def test_infinite_gradients_also_count_as_divergence(tmp_path):
    model = tiny_model()

    def explode(grad):
        return grad * math.inf

    model.linear_out.bias.register_hook(explode)
    with pytest.raises(TrainingDiverged, match="at step 1 of 10 .*gradient norm is (inf|nan).*no checkpoint"):
        _run(tmp_path, model=model)
    assert not (tmp_path / "checkpoint.pt").exists()


def test_a_stream_that_runs_out_is_an_error(tmp_path):
    def short(start):
        return (batch for _, batch in zip(range(start, 4), SyntheticStream()(start)))

    with pytest.raises(ValueError, match="batch_stream ran out at step 4 of 10"):
        _run(tmp_path, stream=short)


def test_time_based_checkpoints(tmp_path):
    _run(tmp_path, steps=3, checkpoint_every_s=0.0, checkpoint_every_steps=None)  # due after every step
    assert read_checkpoint(tmp_path / "checkpoint.prev.pt")["step"] == 2
    _run(tmp_path / "rare", steps=3, checkpoint_every_s=1e9, checkpoint_every_steps=None)  # only the final one
    assert read_checkpoint(tmp_path / "rare" / "checkpoint.pt")["step"] == 3
    assert not (tmp_path / "rare" / "checkpoint.prev.pt").exists()


class ScriptedValidation:
    """validate_fn returning a scripted loss sequence, keeping a copy of the weights it saw at each call."""

    def __init__(self, losses):
        self.losses, self.calls, self.weights = list(losses), 0, []

    def __call__(self, model):
        self.weights.append({k: v.clone() for k, v in model.state_dict().items()})
        loss = self.losses[min(self.calls, len(self.losses) - 1)]
        self.calls += 1
        return loss


def test_early_stopping_keeps_the_best_weights_and_stops_after_its_patience(tmp_path):
    # validation every 2 steps: losses 5, 4, 3 (best, at step 6), then worse; patience 4 steps -> stop at step 10
    validation = ScriptedValidation([5.0, 4.0, 3.0, 3.5, 4.0, 4.5, 5.0])
    model, result = _run(tmp_path, steps=20, validate_fn=validation, validate_every=2, patience=4)
    assert result["stopped_early"] and result["steps"] == 10 and result["best_step"] == 6
    assert result["val_loss"] == 3.0
    assert [(r["step"], r["val_loss"]) for r in result["val_rows"]] == [(2, 5.0), (4, 4.0), (6, 3.0), (8, 3.5),
                                                                        (10, 4.0)]
    assert (tmp_path / "val.csv").read_text().splitlines()[0] == "step,val_loss"
    best_seen = validation.weights[2]
    assert all(torch.equal(model.state_dict()[k], best_seen[k]) for k in best_seen)  # the best weights, not the last
    assert read_metrics(tmp_path / "metrics.csv")[-1]["step"] == 10


def test_early_stopping_resumes_to_the_same_result(tmp_path):
    losses = [5.0, 4.0, 3.0, 3.5, 4.0, 4.5, 5.0]

    class Killed(Exception):
        pass

    class DyingStream(SyntheticStream):
        def __call__(self, start):
            for step, batch in zip(itertools.count(start), super().__call__(start)):
                if step == 7:
                    raise Killed
                yield batch

    reference_model, reference = _run(tmp_path / "whole", steps=20, validate_fn=ScriptedValidation(losses),
                                      validate_every=2, patience=4)
    with pytest.raises(Killed):
        _run(tmp_path / "killed", steps=20, stream=DyingStream(), validate_fn=ScriptedValidation(losses),
             validate_every=2, patience=4)
    # the rerun resumes from the checkpoint at step 7 (after the best point) with the script where it was
    model, result = _run(tmp_path / "killed", steps=20, validate_fn=ScriptedValidation(losses[3:]),
                         validate_every=2, patience=4)
    assert result["resumed_from_step"] == 7
    assert (result["best_step"], result["steps"], result["val_loss"]) == (6, 10, 3.0)
    assert result["val_rows"] == reference["val_rows"]
    assert _same_weights(model, reference_model)


def test_divergence_names_its_step(tmp_path):
    def nan_at_three(model, batch, calls=[0]):  # noqa: B006 - a counter across calls
        calls[0] += 1
        loss = vertex_loss(model, batch)
        return loss * float("nan") if calls[0] == 3 else loss

    with pytest.raises(TrainingDiverged) as info:
        _run(tmp_path, loss_fn=nan_at_three)
    assert info.value.step == 3
