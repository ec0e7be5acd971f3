"""A real training process killed with SIGKILL mid-run, then rerun, ends bit-identical to one never killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

from eqscale.training.checkpoint import read_checkpoint
from eqscale.training.loop import TIMING_COLUMNS, read_metrics

TESTS_DIR = Path(__file__).resolve().parents[1]
STEPS = 24
HANG_AT = 14  # the killed run stops asking for batches here: 14 steps done, last checkpoint at 12

SCRIPT = f"""
import sys, time
from pathlib import Path
sys.path[:0] = [{str(TESTS_DIR)!r}, {str(TESTS_DIR / "training")!r}]
import torch
from eqscale.data.batch import batch_structure
from eqscale.training.loop import train_loop
from eqscale.training.seeding import seed_everything
from training_synthetic import SyntheticStream, tiny_model

torch.set_num_threads(1)
out_dir, hang_at = Path(sys.argv[1]), int(sys.argv[2])


class Stream(SyntheticStream):
    def __call__(self, start):
        for step, batch in enumerate(super().__call__(start), start):
            if step == hang_at:
                (out_dir / "hanging").write_text(str(step))
                time.sleep(600)  # waits here until the test kills the process
            yield batch


seed_everything(0)
model = tiny_model()
train_loop(model, Stream(seed=3), steps={STEPS}, lr=3e-3, warmup_fraction=0.1, weight_decay=0.01, grad_clip=1.0,
           out_dir=out_dir, checkpoint_every_s=None, checkpoint_every_steps=4, log_every=1, device="cpu",
           flops_per_step_fn=lambda b: model.flops_per_step(batch_structure(b))["total"], progress=False)
torch.save(model.state_dict(), out_dir / "final.pt")
"""


def _start(script: Path, out_dir: Path, hang_at: int) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, str(script), str(out_dir), str(hang_at)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(proc: subprocess.Popen) -> str:
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    return err


def _rows(path: Path) -> list[dict]:
    return [{k: v for k, v in row.items() if k not in TIMING_COLUMNS} for row in read_metrics(path)]


def test_sigkill_mid_run_then_rerun_matches_an_uninterrupted_run(tmp_path):
    script = tmp_path / "train_tiny.py"
    script.write_text(SCRIPT)
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    straight.mkdir()
    killed.mkdir()

    proc = _start(script, killed, HANG_AT)
    try:
        deadline = time.monotonic() + 120
        while not (killed / "hanging").exists():
            assert proc.poll() is None, proc.communicate()[1]
            assert time.monotonic() < deadline, "the training script never reached the kill point"
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    assert not (killed / "final.pt").exists()
    assert read_checkpoint(killed / "checkpoint.pt")["step"] == 12
    assert read_checkpoint(killed / "checkpoint.prev.pt")["step"] == 8
    # metrics.csv already holds steps the checkpoint does not: the rerun must drop and redo them
    assert [r["step"] for r in read_metrics(killed / "metrics.csv")] == list(range(1, HANG_AT + 1))

    rerun = _start(script, killed, -1)
    uninterrupted = _start(script, straight, -1)
    _finish(rerun)
    _finish(uninterrupted)

    final_killed = torch.load(killed / "final.pt", weights_only=True)
    final_straight = torch.load(straight / "final.pt", weights_only=True)
    assert final_killed.keys() == final_straight.keys()
    for name in final_straight:
        assert torch.equal(final_killed[name], final_straight[name]), name
    rows = _rows(killed / "metrics.csv")
    assert [r["step"] for r in rows] == list(range(1, STEPS + 1))
    assert rows == _rows(straight / "metrics.csv")
    assert read_checkpoint(killed / "checkpoint.pt")["step"] == STEPS
    # optimizer moments too, not just the weights
    opt_killed = read_checkpoint(killed / "checkpoint.pt")["optimizer"]["state"]
    opt_straight = read_checkpoint(straight / "checkpoint.pt")["optimizer"]["state"]
    for key in opt_straight:
        assert torch.equal(opt_killed[key]["exp_avg_sq"], opt_straight[key]["exp_avg_sq"])
