"""Time `snakemake -n` (building the whole DAG) against `snakemake --version`, side by side, per preset.

    .venv/bin/python bench/bench_dag.py [--rounds 5] [--configs presets/paper.yaml presets/tiny.yaml]

Each round runs `snakemake --version` and then a quiet dry run of each config in a fresh empty
working directory, alternating, and prints every time; the summary is the median and best of the
rounds and the ratio dry run / --version (the target for the paper preset: at most 2x). The dry runs
build the grid, validate the config and plan every job, with nothing imported from torch.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _timed(cmd: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--configs", nargs="+", default=["presets/paper.yaml", "presets/tiny.yaml", "config.yaml"])
    args = parser.parse_args()
    snakemake = [sys.executable, "-m", "snakemake"]
    times: dict[str, list[float]] = {"--version": [], **{c: [] for c in args.configs}}
    print(f"{platform.processor() or platform.machine()}, Python {platform.python_version()}; rounds: {args.rounds}")
    for round_ in range(args.rounds):
        with tempfile.TemporaryDirectory() as scratch:
            times["--version"].append(_timed(snakemake + ["--version"], Path(scratch)))
            for config in args.configs:
                work = Path(scratch) / Path(config).stem
                work.mkdir()
                times[config].append(_timed(snakemake + ["-s", str(REPO / "Snakefile"), "-d", str(work), "-n", "-q",
                                                         "--configfile", str(REPO / config)], work))
        print(f"round {round_ + 1}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in times.items()))
    base = statistics.median(times["--version"])
    print("\nmedian (best) seconds, and median ratio to snakemake --version:")
    for name, values in times.items():
        print(f"  {name:<24} {statistics.median(values):6.2f} ({min(values):.2f})   x{statistics.median(values) / base:.2f}")


if __name__ == "__main__":
    main()
