"""Time `fit_all` (every fit, the comparisons and the findings, 1000 bootstrap resamples) on a ~230-cell study.

    .venv/bin/python bench/bench_fit.py [--resamples 1000] [--jobs 2] [--rounds 1] [--samples 1024]

The study: 8 budgets x 12 sizes for GATr and the transformer (two seeds on two budget lines), the
data-efficiency grid with two seeds, and per-sample test losses on `--samples` test samples (the
evaluation resampled jointly for all cells). Prints the cells per arm, then the wall time and CPU
time of each round. The machine is shared: rerun and compare the best round, not single numbers.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
import warnings

import numpy as np

from eqscale.analysis.fit import fit_all
from eqscale.analysis.synthetic import Family, SyntheticStudy, grid_table, synthetic_study


def bench_study(samples: int) -> SyntheticStudy:
    """8 budgets x 12 sizes per scaling arm (two seeds on two lines), 5 data fractions x 3 arms x 2 seeds."""
    budgets = tuple(np.geomspace(1e12, 1e14, 8))
    sizes = tuple(np.geomspace(1e4, 1e6, 12))
    families = {"gatr": Family.power("gatr", sizes, k=1.5e5, p=0.65),
                "transformer": Family.power("transformer", sizes, k=4e4, p=0.75)}
    grid = grid_table(families=families, budgets=budgets, seeds=(0, 1),
                      replicated=[(arm, b) for arm in ("gatr", "transformer") for b in budgets[3:5]])
    return synthetic_study(grid, n_test_samples=samples, rng_seed=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--jobs", type=int, default=2, help="processes (the bench target is 2 cores)")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--samples", type=int, default=1024, help="test samples per cell")
    args = parser.parse_args()
    study = bench_study(args.samples)
    summary = study.summary
    print(f"{len(summary)} cells: {summary['arm'].value_counts().to_dict()}; {args.samples} test samples; "
          f"{args.resamples} resamples; jobs={args.jobs}; cpus={os.cpu_count()}; python {platform.python_version()}; "
          f"load {os.getloadavg()[0]:.1f}")
    for r in range(args.rounds):
        wall, cpu = time.perf_counter(), time.process_time()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            fits = fit_all(summary, samples=study.sample_losses, n_resamples=args.resamples, seed=0, jobs=args.jobs)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        boot = fits.joint.arms["gatr"].fit.bootstrap
        if r == 0:
            for f in fits.findings.findings:
                print(f"  finding {f.number}: {f.verdict} -- {f.reason[:300]}")
        print(f"round {r}: fit + {args.resamples} bootstraps: {wall:.1f} s wall ({cpu:.1f} s CPU in the parent); "
              f"joint gatr resamples ok {boot.ok}/{boot.resamples}; findings "
              + ", ".join(f"{f.number}: {f.verdict}" for f in fits.findings.findings))


if __name__ == "__main__":
    main()
