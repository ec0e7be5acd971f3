"""Labelling throughput: configurations per second per core of `eqscale molecules` vs a bare tblite loop.

    .venv/bin/python bench/bench_molecules.py                  # 12 molecules, 2 temperatures, 3 rounds
    .venv/bin/python bench/bench_molecules.py --molecules 24 --rounds 5

The stage's loop (`label_shard`: RDKit conformers, BFGS relaxation and ASE Langevin MD under
tblite's ASE calculator, HDF5 write) labels one shard; every geometry it computed a single point at is recorded in an
untimed run. The bare loop replays exactly those geometries through tblite's own Python API
(`tblite.interface.Calculator`: update positions, single point restarted from the previous
wavefunction, as the ASE calculator does), one calculator per MD run, nothing else. Both run on
one thread (OpenMP pinned to 1), alternating, best of `rounds`. configurations/s = configurations
the shard keeps / seconds; the bare loop is credited with the same configurations. On a shared
machine wall time drifts between rounds; the process's CPU time is printed beside it.
"""

from __future__ import annotations

import argparse
import datetime
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from eqscale.forcefield.config import validate_forcefield_config
from eqscale.forcefield.labels import LabelSettings, single_thread_openmp
from eqscale.forcefield.molecules_cli import label_shard
from eqscale.forcefield.shard_format import read_shard
from eqscale.io_utils import package_versions


def bare_loop(trace: list, settings: LabelSettings) -> tuple[float, float, list[list[tuple[float, np.ndarray]]]]:
    """Wall and CPU seconds to label every traced geometry with tblite's API alone; per run (energy eV, forces eV/A)."""
    from ase.units import Bohr, Hartree, kB
    from tblite.interface import Calculator

    results = []
    start, start_cpu = time.perf_counter(), time.process_time()
    for _, numbers, geometries in trace:
        calc = Calculator("GFN2-xTB", np.array(numbers), geometries[0] / Bohr, 0, 0)
        calc.set("accuracy", settings.xtb_accuracy)
        calc.set("temperature", settings.electronic_temperature * kB / Hartree)
        calc.set("max-iter", settings.max_scf_iterations)
        calc.set("verbosity", 0)
        res, run = None, []
        for positions in geometries:
            calc.update(positions=positions / Bohr)
            res = calc.singlepoint(res)
            run.append((res["energy"] * Hartree, -res["gradient"] * Hartree / Bohr))
        results.append(run)
    return time.perf_counter() - start, time.process_time() - start_cpu, results


def main() -> None:
    """Time both loops and print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--molecules", type=int, default=12, help="molecules labelled (seeded draw from the list)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    single_thread_openmp()
    config = validate_forcefield_config({"seed": args.seed, "molecules": {
        "num_molecules": args.molecules, "num_shards": 1, "temperatures": [300, 1000], "equilibration_steps": 20,
        "sample_interval": 10, "configurations_per_run": 5}})
    settings = LabelSettings.from_config(config)
    with tempfile.TemporaryDirectory() as tmp:
        trace: list = []
        label_shard(config, 0, Path(tmp) / "trace.h5", progress=False, trace=trace)
        data = read_shard(Path(tmp) / "trace.h5")
        configurations = len(data.configurations)
        single_points = sum(len(g) for _, _, g in trace)
        relaxation = sum(len(g) for kind, _, g in trace if kind == "relax")
        atoms = float(data.configurations["num_atoms"].mean())
        stage_times, bare_times, stage_cpu, bare_cpu = [], [], [], []
        for round_ in range(args.rounds):
            start, start_cpu = time.perf_counter(), time.process_time()
            label_shard(config, 0, Path(tmp) / f"shard-{round_}.h5", progress=False)
            stage_times.append(time.perf_counter() - start)
            stage_cpu.append(time.process_time() - start_cpu)
            seconds, cpu_seconds, results = bare_loop(trace, settings)
            bare_times.append(seconds)
            bare_cpu.append(cpu_seconds)
        same = (Path(tmp) / "shard-0.h5").read_bytes() == (Path(tmp) / "trace.h5").read_bytes()
    # the bare loop's labels at the kept configurations against the shard's (runs in shard order)
    md_runs = [run for run, (kind, _, _) in zip(results, trace) if kind == "md"]
    steps = data.configurations["step"].reshape(len(md_runs), -1)
    bare_energies = np.array([[run[s][0] for s in row] for run, row in zip(md_runs, steps)]).ravel()
    bare_forces = np.concatenate([run[s][1] for run, row in zip(md_runs, steps) for s in row])
    gap = max(np.abs(bare_energies - data.configurations["energy"]).max(), np.abs(bare_forces - data.forces).max())
    stage, bare = min(stage_times), min(bare_times)
    versions = package_versions("tblite", "ase", "rdkit", "h5py")
    print(f"{datetime.date.today()}, {platform.processor() or platform.machine()}, one thread, "
          + ", ".join(f"{k} {v}" for k, v in versions.items()))
    print(f"{args.molecules} molecules (mean {atoms:.1f} atoms), 2 temperatures, {configurations} configurations "
          f"kept, {single_points} single points ({relaxation} relaxing); best of {args.rounds} rounds; stage shard identical to the "
          f"traced one: {same}; bare loop's labels differ from the shard's by at most {gap:.1e} (eV, eV/A)")
    print()
    print("| loop | s | configurations/s/core | single points/s | ms / single point |")
    print("|---|---:|---:|---:|---:|")
    for name, seconds in (("`eqscale molecules` (label_shard)", stage), ("bare tblite loop, same geometries", bare)):
        print(f"| {name} | {seconds:.2f} | {configurations / seconds:.1f} | {single_points / seconds:.0f} | "
              f"{1e3 * seconds / single_points:.2f} |")
    print()
    print(f"ratio stage / bare: {stage / bare:.3f}x wall, {min(stage_cpu) / min(bare_cpu):.3f}x CPU time "
          f"(best rounds); wall rounds: stage " + ", ".join(f"{t:.2f}" for t in stage_times)
          + "; bare " + ", ".join(f"{t:.2f}" for t in bare_times))


if __name__ == "__main__":
    main()
