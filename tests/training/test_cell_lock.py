"""One trainer per cell: a second one exits at once naming the first; a dead trainer's lock is taken over."""

import os
import signal
import subprocess
import sys
import time

import pytest

from eqscale.cells import Cell
from eqscale.training.train import LOCK_NAME, CellBusy, cell_lock

HOLD = """
import sys, time
from pathlib import Path
from eqscale.training.train import cell_lock
with cell_lock(Path(sys.argv[1])):
    print("locked", flush=True)
    time.sleep(60)
"""


def _holder(cell_dir):
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(cell_dir)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_a_second_trainer_exits_at_once_naming_the_first(tmp_path, tokens_dir):
    cell_dir = tmp_path / Cell("gatr", "xxs", 1e12, 1.0, False, 0).dir
    holder = _holder(cell_dir)
    try:
        with pytest.raises(CellBusy, match=rf"is being trained by another process \(pid {holder.pid} on "):
            with cell_lock(cell_dir):
                pass
        start = time.monotonic()
        proc = subprocess.run([sys.executable, "-m", "eqscale", "train", "--cell-dir", str(cell_dir), "--tokens",
                               str(tokens_dir), "--no-progress"], capture_output=True, text=True, timeout=120)
        assert proc.returncode == 1 and "is being trained by another process" in proc.stderr
        assert "--rerun-incomplete" in proc.stderr  # says how to recover
        assert not (cell_dir / "metrics.csv").exists()  # it wrote nothing
        assert time.monotonic() - start < 60  # it did not wait for the holder
    finally:
        holder.kill()
        holder.wait()


def test_a_killed_trainers_lock_is_taken_over(tmp_path):
    cell_dir = tmp_path / "cell"
    holder = _holder(cell_dir)
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    assert str(holder.pid) in (cell_dir / LOCK_NAME).read_text()  # the file stays, its lock does not
    with cell_lock(cell_dir):
        assert f"pid {os.getpid()}" in (cell_dir / LOCK_NAME).read_text()
