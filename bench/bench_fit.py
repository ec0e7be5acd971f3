"""Time `fit_all` (every fit, 1000 bootstrap resamples) on a ~200-cell synthetic summary.

    .venv/bin/python bench/bench_fit.py [--resamples 1000] [--jobs 2] [--rounds 1]

Prints the cells per arm, then the wall time and CPU time of each round. The machine is shared:
rerun and compare the best round, not single numbers.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np

from eqscale.analysis.fit import fit_all
from eqscale.analysis.synthetic import synthetic_summary


def bench_summary():
    """8 budgets x 12 sizes for GATr and the transformer, plus the data-efficiency grid: 202 cells."""
    return synthetic_summary(budgets=tuple(np.geomspace(1e12, 1e14, 8)), sizes=tuple(np.geomspace(1e4, 1e6, 12)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--jobs", type=int, default=2, help="processes (the bench target is 2 cores)")
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    summary = bench_summary()
    print(f"{len(summary)} cells: {summary['arm'].value_counts().to_dict()}; {args.resamples} resamples; "
          f"jobs={args.jobs}; cpus={os.cpu_count()}; python {platform.python_version()}")
    for r in range(args.rounds):
        wall, cpu = time.perf_counter(), time.process_time()
        fits = fit_all(summary, n_resamples=args.resamples, seed=0, jobs=args.jobs)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        boot = fits.joint.arms["gatr"].fit.bootstrap
        print(f"round {r}: fit + {args.resamples} bootstraps: {wall:.1f} s wall ({cpu:.1f} s CPU in the parent); "
              f"joint gatr resamples ok {boot.ok}/{boot.resamples}")


if __name__ == "__main__":
    main()
