"""The per-cell training lock: two trainers can never write one cell at once (shared by both studies' stages)."""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path


LOCK_NAME = ".train.lock"


class CellBusy(RuntimeError):
    """Another process is training this cell right now; the message names it."""


@contextlib.contextmanager
def cell_lock(cell_dir: Path) -> Iterator[None]:
    """Hold the cell's training lock for the block; CellBusy at once if another live process holds it.

    A POSIX record lock on `<cell>/.train.lock`: the kernel drops it when its holder dies however it
    dies, so a lock left by a killed trainer is simply taken over, and two trainers (say, one orphaned
    by a killed Snakemake and one started by `--rerun-incomplete`) can never write one cell at once.
    """
    cell_dir.mkdir(parents=True, exist_ok=True)
    fh = open(cell_dir / LOCK_NAME, "a+")
    try:
        try:
            fcntl.lockf(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.seek(0)
            holder = fh.read().strip() or "unknown process"
            raise CellBusy(f"{cell_dir} is being trained by another process ({holder}); wait for it to finish, or "
                           "stop it first (after a crash: snakemake --unlock, then snakemake --rerun-incomplete)") from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()} on {socket.gethostname()}, since {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
        fh.flush()
        yield
    finally:
        fh.close()  # closing releases the lock
