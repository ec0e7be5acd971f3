"""Run Snakemake on the repository's Snakefile in a scratch working directory.

Snakemake imports its SLURM executor plugin at start-up, and the plugin runs `scontrol show config` while
its module loads (for a help text). Where the SLURM client is installed but no controller answers (CI
installs it for test_slurm.py and starts the daemons only for that test) that call waits 9-10 s for its
timeout, in every `snakemake` process. Runs that do not submit to SLURM therefore get an `scontrol`
that fails at once, first on their PATH; the plugin then falls back to its defaults, as it does where
SLURM is absent. Only `real_slurm=True` (the SLURM profile test) sees the real one.
"""

from __future__ import annotations

import atexit
import functools
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
WORKFLOW_FILES = ("Snakefile", "config.yaml", "workflow", "src", "presets", "envs")


@functools.cache
def _failing_scontrol_dir() -> Path:
    """A directory (removed at exit) holding an `scontrol` that exits 1 immediately."""
    directory = Path(tempfile.mkdtemp(prefix="eqscale-no-scontrol-"))
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    shim = directory / "scontrol"
    shim.write_text("#!/bin/sh\necho 'scontrol: no controller in this test' >&2\nexit 1\n")
    shim.chmod(shim.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return directory


def _without_slurm_controller() -> dict[str, str]:
    """The environment with a PATH whose first `scontrol` exits 1 immediately."""
    return {**os.environ, "PATH": f"{_failing_scontrol_dir()}{os.pathsep}{os.environ.get('PATH', '')}"}


def snakemake(workdir: Path, *args: str, configfile: Path | None = REPO / "presets" / "tiny.yaml",
              check: bool = True, timeout: float = 900, snakefile: Path | None = None,
              real_slurm: bool = False) -> subprocess.CompletedProcess:
    """`snakemake -s <repo>/Snakefile -d workdir [--configfile ...] args...`, output captured."""
    cmd = [sys.executable, "-m", "snakemake", "-s", str(snakefile or REPO / "Snakefile"), "-d", str(workdir)]
    cmd += list(args)  # targets first: --configfile takes every word after it
    if configfile is not None:
        cmd += ["--configfile", str(configfile)]
    env = None if real_slurm else _without_slurm_controller()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def planned_jobs(workdir: Path, *args: str, configfile: Path | None = REPO / "presets" / "tiny.yaml",
                 snakefile: Path | None = None) -> Counter:
    """Jobs per rule that `snakemake -n` would run (from its job-stats table)."""
    proc = snakemake(workdir, *args, "-n", "--quiet", "rules", configfile=configfile, snakefile=snakefile)
    counts: Counter = Counter()
    for line in (proc.stdout + proc.stderr).splitlines():
        match = re.match(r"^(\w+)\s+(\d+)$", line.strip())
        if match and match.group(1) != "total":
            counts[match.group(1)] = int(match.group(2))
    return counts


def planned_cells(workdir: Path, rule: str, *args: str, snakefile: Path | None = None,
                  configfile: Path | None = REPO / "presets" / "tiny.yaml") -> set[str]:
    """Cell directories whose `rule` (train or evaluate) job `snakemake -n` would run."""
    cmd_args = list(args) + ["-n", "--printshellcmds"]
    proc = snakemake(workdir, *cmd_args, configfile=configfile, snakefile=snakefile)
    found = re.findall(rf"eqscale {rule} .*?--cell-dir (\S+)", proc.stdout + proc.stderr)
    return set(found)


def run_copied_workflow(root: Path, configfile: Path = REPO / "presets" / "tiny.yaml") -> tuple[Path, Path]:
    """Copy the workflow's files to root/repo and run the study of `configfile` to completion in root/work.

    Rerun tests edit the copy's sources, never the checkout's; the jobs run the installed eqscale package.
    """
    copy, work = root / "repo", root / "work"
    copy.mkdir()
    for name in WORKFLOW_FILES:
        source = REPO / name
        (shutil.copytree if source.is_dir() else shutil.copy2)(source, copy / name)
    work.mkdir()
    snakemake(work, "--cores", "2", snakefile=copy / "Snakefile", configfile=configfile, timeout=1800)
    return copy, work
