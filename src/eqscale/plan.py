"""`eqscale plan`: a config's jobs, compute and GPU memory before anything runs.

Prints the jobs per stage, the training compute (every cell's budget, or cap for the converging
ones) in GPU-hours at the configured peak and utilisation, and per model size the estimated peak
GPU memory of a training step (bf16 activations, fp32 weights and AdamW state; see
`eqscale.models.counts.peak_memory_bytes`) on the study's expected batch and on its largest
possible batch (every scene with the most objects at the full face budget), naming every size that
would not fit the configured GPU (`compute.gpu_memory_gb`). Then per family and budget the ladder of
sizes and, given the fits of an earlier (pilot) run (`--fits`, by default results/fits when it
exists), whether the predicted compute-optimal size N*(C) of the joint law lies inside that ladder:
a ladder that does not bracket it cannot show the IsoFLOP minimum. Torch-free: it reads the
analytic counts.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from eqscale.cells import FORCEFIELD, study_of
from eqscale.config import ConfigError, add_config_arguments, config_from_args, default_configfile
from eqscale.grid import SCALING, nominal_structure, sweep_cells
from eqscale.models.counts import BatchStructure, peak_memory_bytes
from eqscale.models.counts import num_params as rigid_params
from eqscale.validate import check_study

GIB = 1024**3
# GFN2-xTB configurations per second per core at the default MD settings (relaxation, 50 equilibration steps, a
# sample every 10): 6.6 measured in the default force-field study (12.8 atoms on average, docs/forcefield-study.md)
LABELS_PER_CORE_S = 6.6


def num_params(model: str, size: str) -> int:
    """Parameters of a family's size, in either study (the force-field ones from the stored size table)."""
    if study_of(model) == FORCEFIELD:
        from eqscale.forcefield.models.table import entry

        return int(entry(model, size)["params"])
    return int(rigid_params(model, size))
BF16_BYTES = 2  # activations under bf16 autocast, the GPU path


@dataclass(frozen=True)
class MemoryEstimate:
    """Estimated peak GPU memory of one training step of a model size, in GiB."""

    model: str
    size: str
    params: int
    expected_gib: float  # on the study's expected batch
    worst_gib: float  # on the largest batch the config allows

    def fits(self, gpu_gib: float) -> bool:
        """Whether even the worst batch fits in `gpu_gib`."""
        return self.worst_gib <= gpu_gib


def worst_structure(config: dict) -> BatchStructure:
    """The largest batch the config allows: every scene with max_objects objects at the full face budget."""
    sim, faces = config["simulation"], config["assets"]["max_faces"]
    scenes = [[faces] * sim["max_objects"]] * config["training"]["batch_size"]
    return BatchStructure.from_scenes(scenes)


def memory_estimates(config: dict, sizes: set[tuple[str, str]]) -> list[MemoryEstimate]:
    """Peak memory of a training step per (model, size), on the expected and on the worst batch."""
    expected, worst = nominal_structure(config), worst_structure(config)
    return [MemoryEstimate(model, size, num_params(model, size),
                           peak_memory_bytes(model, size, expected, dtype_bytes=BF16_BYTES)["total"] / GIB,
                           peak_memory_bytes(model, size, worst, dtype_bytes=BF16_BYTES)["total"] / GIB)
            for model, size in sorted(sizes, key=lambda ms: (ms[0], num_params(*ms)))]


@dataclass(frozen=True)
class Ladder:
    """The sizes of one family on one IsoFLOP line, and where a prior fit puts that budget's optimum."""

    model: str
    budget: float
    sizes: list[tuple[str, int]]  # (size, parameters), smallest first
    predicted_n: float | None = None  # N*(C) of a prior fit's joint law, if one was given
    extrapolated: bool = False  # the budget lies outside the compute range that fit was made on

    @property
    def bracketing(self) -> str:
        """'bracketed', 'below the smallest size', 'above the largest size', or why it is not known."""
        if len(self.sizes) < 3:
            return "cannot be bracketed (fewer than 3 sizes)"
        if self.predicted_n is None:
            return "not predicted (no fit given)"
        if self.predicted_n < self.sizes[0][1]:
            return "below the smallest size"
        if self.predicted_n > self.sizes[-1][1]:
            return "above the largest size"
        return "bracketed"


def predicted_optimum(fits_dir: str | Path | None) -> dict:
    """Per family, a function C -> (N*(C), extrapolated) from the joint law in fits_dir (empty without one)."""
    if fits_dir is None or not (Path(fits_dir) / "joint.json").is_file():
        return {}
    from eqscale.analysis.results import JointArm  # numpy only; keeps plan free of the fitter
    from eqscale.analysis.store import read_fits

    joint = read_fits(fits_dir).joint
    out = {}
    for name, arm in (joint.arms.items() if joint is not None else ()):
        curve = arm.curves.get("N_opt") if isinstance(arm, JointArm) else None
        if curve is None or name != arm.family or len(curve.x) < 2:
            continue
        lx, ly = np.log(np.asarray(curve.x, float)), np.log(np.asarray(curve.value, float))

        def at(c: float, lx=lx, ly=ly) -> tuple[float, bool]:
            u = math.log(c)
            slope = (ly[-1] - ly[0]) / (lx[-1] - lx[0])  # the law's slope carries it beyond the fitted range
            if u < lx[0]:
                return math.exp(ly[0] + slope * (u - lx[0])), True
            if u > lx[-1]:
                return math.exp(ly[-1] + slope * (u - lx[-1])), True
            return math.exp(float(np.interp(u, lx, ly))), False

        out[name] = at
    return out


def ladders(cells: list, fits_dir: str | Path | None = None) -> list[Ladder]:
    """Per family and scaling budget the sizes planned (seed 0 of each), with a prior fit's N*(C) if given."""
    optimum = predicted_optimum(fits_dir)
    lines: dict[tuple[str, float], set[str]] = {}
    for c in cells:
        if SCALING in c.designs:
            lines.setdefault((c.model, c.budget), set()).add(c.size)
    out = []
    for (model, budget), sizes in sorted(lines.items()):
        ranked = sorted(((s, num_params(model, s)) for s in sizes), key=lambda sp: sp[1])
        n, extrapolated = optimum[model](budget) if model in optimum else (None, False)
        out.append(Ladder(model, budget, ranked, n, extrapolated))
    return out


def plan(config: dict, fits_dir: str | Path | None = None) -> dict:
    """Job counts, compute and memory estimates for a config (validated here, as snakemake does)."""
    config, cells = check_study(config)
    sweep = sweep_cells(cells)
    study = [c for c in cells if c not in sweep]
    compute = config["compute"]
    rate = compute["gpu_peak_flops_per_s"] * compute["gpu_utilisation"]
    sim = config["simulation"]
    forcefield = config["study"] == FORCEFIELD
    if forcefield:
        from eqscale.forcefield.plan import training_pool

        pool = training_pool(config)
        jobs = {"molecules": config["molecules"]["num_shards"], "molecule_stats": 1}
        hours = pool.labelled / LABELS_PER_CORE_S / 3600
        data = (f"{pool.labelled:,} configurations labelled with GFN2-xTB, {pool.configurations:,} of them for training "
                f"({pool.molecules} molecules, {pool.mean_atoms:.1f} atoms on average); labelling ~{hours:.3g} CPU "
                f"core-hours at {LABELS_PER_CORE_S:g} configurations/s per core (measured at ~13 atoms)")
    else:
        jobs = {"assets": 1, "simulate": sim["num_shards"], "tokenize": 1}
        data = f"{sim['num_shards'] * sim['trajectories_per_shard']:,} trajectories"
    if sweep:
        jobs.update(train_lr_sweep=len(sweep), lr_rule=len({c.model for c in sweep}))
    jobs.update(train=len(study), evaluate=len(study), collect=1, fit=1, plot=1, report=1)
    total_flops = sum(c.budget for c in cells)  # a converging cell's cap is an upper bound
    # the force-field graphs (tens of atoms per configuration) are far from any GPU's memory: no model of it here
    memory = [] if forcefield else memory_estimates(config, {(c.model, c.size) for c in cells})
    return {
        "jobs": jobs,
        "total_jobs": sum(jobs.values()) + 1,  # + rule all
        "cells_per_model": dict(Counter(c.model for c in study)),
        "data": data,
        "total_train_flops": total_flops,
        "gpu_hours": total_flops / rate / 3600,
        "gpu": compute["gpu_name"],
        "gpu_memory_gb": compute["gpu_memory_gb"],
        "utilisation": compute["gpu_utilisation"],
        "params_range": {m: (min(num_params(m, c.size) for c in study if c.model == m),
                             max(num_params(m, c.size) for c in study if c.model == m))
                         for m in {c.model for c in study}},
        "memory": memory,
        "too_big": [m for m in memory if not m.fits(compute["gpu_memory_gb"] * 1e9 / GIB)],
        "ladders": ladders(study, fits_dir),
    }


def main(argv: list[str] | None = None) -> int:
    """Print the plan of a config."""
    parser = argparse.ArgumentParser(prog="eqscale plan", description=__doc__.splitlines()[0])
    add_config_arguments(parser)
    parser.add_argument("--fits", type=Path, default=None,
                        help="fit files of an earlier run (default: results/fits if it exists): whether each "
                             "budget's ladder brackets the predicted compute-optimal size")
    args = parser.parse_args(argv)
    default_configfile(args)
    fits = args.fits if args.fits is not None else (Path("results/fits") if Path("results/fits").is_dir() else None)
    try:
        p = plan(config_from_args(args), fits)
    except ConfigError as err:
        print(f"eqscale plan: {err}", file=sys.stderr)
        return 1
    print(f"config: {args.configfile or 'defaults'}")
    print(f"jobs: {p['total_jobs']} in all (" + ", ".join(f"{k} {v}" for k, v in p["jobs"].items()) + ")")
    print(f"data: {p['data']}")
    for model, (lo, hi) in sorted(p["params_range"].items()):
        print(f"{model}: {p['cells_per_model'][model]} cells, {lo:,} - {hi:,} parameters")
    print(f"training compute: {p['total_train_flops']:.3g} FLOPs = {p['gpu_hours']:.3g} GPU-hours on "
          f"{p['gpu']} at {100 * p['utilisation']:.0f}% utilisation")
    if p["memory"]:
        print(f"peak memory of a training step (bf16; expected batch / largest possible batch) against "
              f"{p['gpu_memory_gb']:g} GB:")
    for m in p["memory"]:
        flag = "" if m not in p["too_big"] else "   DOES NOT FIT the largest batch"
        print(f"  {m.model:<12} {m.size:<6} {m.params:>12,} params  {m.expected_gib:8.2f} / {m.worst_gib:8.2f} GiB{flag}")
    print("size ladders per IsoFLOP line" + (f" (N* from the joint law in {fits})" if fits else
                                             " (no fits given: pass --fits from a pilot run to check bracketing)") + ":")
    for line in p["ladders"]:
        sizes = ", ".join(f"{s} {n:,}" for s, n in line.sizes)
        guess = "" if line.predicted_n is None else f"; N* ~ {line.predicted_n:,.0f}" + (
            " (extrapolated)" if line.extrapolated else "")
        print(f"  {line.model:<12} {line.budget:9.3g} FLOPs: {sizes}{guess} -> {line.bracketing}")
    if p["too_big"]:
        print(f"warning: {len(p['too_big'])} size(s) may run out of GPU memory on their largest batches: lower "
              "training.batch_size or assets.max_faces, or use a GPU with more memory", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
