"""Pick the device for a job: an explicit --device, else one free GPU, else the CPU.

On a workstation Snakemake limits concurrent training jobs with `--resources gpu=N` but does not
say which GPU a job gets. When several GPUs are visible, each job takes an exclusive lock file per
GPU (held until the process exits), so N concurrent jobs land on N different GPUs.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
from pathlib import Path

import torch

_held_locks: list = []  # keep lock files open for the life of the process


def choose_device(requested: str = "auto", lock_dir: str | Path | None = None) -> torch.device:
    """'cpu', 'cuda', 'cuda:N' as given; 'auto' = a free visible GPU if any, else the CPU."""
    if requested != "auto":
        device = torch.device(requested)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(f"--device {requested}: CUDA is not available on this machine")
        return device
    if not torch.cuda.is_available():
        return torch.device("cpu")
    count = torch.cuda.device_count()
    if count == 1:
        return torch.device("cuda:0")
    lock_dir = Path(lock_dir or os.environ.get("EQSCALE_GPU_LOCK_DIR", tempfile.gettempdir())) / "eqscale-gpu-locks"
    lock_dir.mkdir(parents=True, exist_ok=True)
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", ",".join(map(str, range(count)))).split(",")
    for index, physical in enumerate(visible[:count]):
        fh = open(lock_dir / f"gpu-{physical.strip()}.lock", "w")
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.close()
            continue
        _held_locks.append(fh)
        return torch.device(f"cuda:{index}")
    raise RuntimeError(f"all {count} visible GPUs are taken by other eqscale jobs (locks in {lock_dir}); "
                       "run with --resources gpu=N no larger than the number of GPUs")
