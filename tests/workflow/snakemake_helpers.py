"""Run Snakemake on the repository's Snakefile in a scratch working directory."""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def snakemake(workdir: Path, *args: str, configfile: Path | None = REPO / "presets" / "tiny.yaml",
              check: bool = True, timeout: float = 900, snakefile: Path | None = None) -> subprocess.CompletedProcess:
    """`snakemake -s <repo>/Snakefile -d workdir [--configfile ...] args...`, output captured."""
    cmd = [sys.executable, "-m", "snakemake", "-s", str(snakefile or REPO / "Snakefile"), "-d", str(workdir)]
    cmd += list(args)  # targets first: --configfile takes every word after it
    if configfile is not None:
        cmd += ["--configfile", str(configfile)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
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
