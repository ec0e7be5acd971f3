"""`eqscale plan`: a config's jobs and compute before anything runs.

Prints the number of jobs per stage and the training compute: analytic FLOPs of every cell and
the GPU-hours they take at the configured peak and utilisation (config section `compute`).
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter

from eqscale.config import ConfigError, add_config_arguments, config_from_args, default_configfile
from eqscale.grid import build_grid
from eqscale.models.counts import num_params


def plan(config: dict) -> dict:
    """Job counts and compute estimates for a validated config."""
    cells = build_grid(config)
    flops = {c.dir: c.steps * c.flops_per_step for c in cells}
    compute = config["compute"]
    rate = compute["gpu_peak_flops_per_s"] * compute["gpu_utilisation"]
    sim = config["simulation"]
    jobs = {"assets": 1, "simulate": sim["num_shards"], "tokenize": 1, "train": len(cells), "evaluate": len(cells),
            "collect": 1, "fit": 1, "plot": 1, "report": 1}
    return {
        "jobs": jobs,
        "total_jobs": sum(jobs.values()) + 1,  # + rule all
        "cells_per_model": dict(Counter(c.model for c in cells)),
        "trajectories": sim["num_shards"] * sim["trajectories_per_shard"],
        "total_train_flops": sum(flops.values()),
        "gpu_hours": sum(flops.values()) / rate / 3600,
        "gpu": compute["gpu_name"],
        "utilisation": compute["gpu_utilisation"],
        "params_range": {m: (min(num_params(m, c.size) for c in cells if c.model == m),
                             max(num_params(m, c.size) for c in cells if c.model == m))
                         for m in {c.model for c in cells}},
    }


def main(argv: list[str] | None = None) -> int:
    """Print the plan of a config."""
    parser = argparse.ArgumentParser(prog="eqscale plan", description=__doc__.splitlines()[0])
    add_config_arguments(parser)
    args = parser.parse_args(argv)
    default_configfile(args)
    try:
        p = plan(config_from_args(args))
    except ConfigError as err:
        print(f"eqscale plan: {err}", file=sys.stderr)
        return 1
    print(f"config: {args.configfile or 'defaults'}")
    print(f"jobs: {p['total_jobs']} in all (" + ", ".join(f"{k} {v}" for k, v in p["jobs"].items()) + ")")
    print(f"trajectories: {p['trajectories']:,}")
    for model, (lo, hi) in sorted(p["params_range"].items()):
        print(f"{model}: {p['cells_per_model'][model]} cells, {lo:,} - {hi:,} parameters")
    print(f"training compute: {p['total_train_flops']:.3g} FLOPs = {p['gpu_hours']:.1f} GPU-hours on "
          f"{p['gpu']} at {100 * p['utilisation']:.0f}% utilisation")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
