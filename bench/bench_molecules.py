"""Labelling throughput: configurations per second per core of `eqscale molecules` vs a bare tblite loop.

    .venv/bin/python bench/bench_molecules.py                  # 12 molecules, 2 temperatures, 5 rounds
    .venv/bin/python bench/bench_molecules.py --molecules 24 --rounds 3

The stage's loop (`label_shard`: RDKit conformers, BFGS relaxation and ASE Langevin MD under
tblite's ASE calculator, HDF5 write) labels one shard; every geometry it computed a single point at
is recorded in an untimed run. The bare loop replays exactly those geometries through tblite's own
Python API (`tblite.interface.Calculator`: update positions, single point restarted from the
previous wavefunction, as the ASE calculator does), one calculator per relaxation and per MD run,
nothing else. Both run on one thread (OpenMP pinned to 1), alternating; configurations/s =
configurations the shard keeps / seconds, the bare loop credited with the same configurations.

Both loops do the same SCF work (their labels are bit-identical), yet on a shared machine the time
inside tblite drifts by 10-40% between rounds. So the time inside tblite's single point is measured
too, and besides the wall-time ratio of the best rounds the script prints the ratio at equal tblite
time: (T + stage's time outside tblite) / (T + bare loop's time outside tblite), T the least time
inside tblite of any round, outside times the medians.
"""

from __future__ import annotations

import argparse
import datetime
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from eqscale.forcefield.config import validate_forcefield_config
from eqscale.forcefield.labels import LabelSettings, single_thread_openmp
from eqscale.forcefield.molecules_cli import label_shard
from eqscale.forcefield.shard_format import read_shard
from eqscale.io_utils import package_versions

_inside = [0.0]  # seconds spent in tblite's single point since the last reset


def _time_single_points() -> None:
    """Accumulate the time of every tblite single point (both loops call tblite.library.get_singlepoint)."""
    from tblite import library

    inner = library.get_singlepoint

    def timed(*args):
        start = time.perf_counter()
        try:
            return inner(*args)
        finally:
            _inside[0] += time.perf_counter() - start

    library.get_singlepoint = timed


def bare_loop(trace: list, settings: LabelSettings) -> tuple[float, list[list[tuple[float, np.ndarray]]]]:
    """Seconds to label every traced geometry with tblite's API alone; per run (energy eV, forces eV/A)."""
    from ase.units import Bohr, Hartree, kB
    from tblite.interface import Calculator

    results = []
    start = time.perf_counter()
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
    return time.perf_counter() - start, results


def main() -> None:
    """Time both loops and print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--molecules", type=int, default=12, help="molecules labelled (seeded draw from the list)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    single_thread_openmp()
    _time_single_points()
    config = validate_forcefield_config({"seed": args.seed, "molecules": {
        "num_molecules": args.molecules, "num_shards": 1, "temperatures": [300, 1000], "equilibration_steps": 20,
        "sample_interval": 10, "configurations_per_run": 5}})
    settings = LabelSettings.from_config(config)
    wall: dict[str, list[float]] = {"stage": [], "bare": []}
    inside: dict[str, list[float]] = {"stage": [], "bare": []}
    with tempfile.TemporaryDirectory() as tmp:
        trace: list = []
        label_shard(config, 0, Path(tmp) / "trace.h5", progress=False, trace=trace)
        data = read_shard(Path(tmp) / "trace.h5")
        for round_ in range(args.rounds):
            _inside[0] = 0.0
            start = time.perf_counter()
            label_shard(config, 0, Path(tmp) / f"shard-{round_}.h5", progress=False)
            wall["stage"].append(time.perf_counter() - start)
            inside["stage"].append(_inside[0])
            _inside[0] = 0.0
            seconds, results = bare_loop(trace, settings)
            wall["bare"].append(seconds)
            inside["bare"].append(_inside[0])
        same = (Path(tmp) / "shard-0.h5").read_bytes() == (Path(tmp) / "trace.h5").read_bytes()
    configurations = len(data.configurations)
    single_points = sum(len(g) for _, _, g in trace)
    relaxation = sum(len(g) for kind, _, g in trace if kind == "relax")
    # the bare loop's labels at the kept configurations against the shard's (MD runs in shard order)
    md_runs = [run for run, (kind, _, _) in zip(results, trace) if kind == "md"]
    steps = data.configurations["step"].reshape(len(md_runs), -1)
    bare_energies = np.array([[run[s][0] for s in row] for run, row in zip(md_runs, steps)]).ravel()
    bare_forces = np.concatenate([run[s][1] for run, row in zip(md_runs, steps) for s in row])
    gap = max(np.abs(bare_energies - data.configurations["energy"]).max(), np.abs(bare_forces - data.forces).max())
    outside = {k: statistics.median(w - i for w, i in zip(wall[k], inside[k])) for k in wall}
    floor = min(inside["stage"] + inside["bare"])
    versions = package_versions("tblite", "ase", "rdkit", "h5py")
    print(f"{datetime.date.today()}, {platform.processor() or platform.machine()}, one thread, "
          + ", ".join(f"{k} {v}" for k, v in versions.items()))
    print(f"{args.molecules} molecules (mean {data.configurations['num_atoms'].mean():.1f} atoms), 2 temperatures, "
          f"{configurations} configurations kept, {single_points} single points ({relaxation} relaxing); "
          f"{args.rounds} rounds; stage shard identical to the traced one: {same}; the bare loop's labels differ "
          f"from the shard's by at most {gap:.1e} (eV, eV/A)")
    print()
    print("| loop | best s | configurations/s/core | s inside tblite (best) | ms / single point outside tblite "
          "(median) |")
    print("|---|---:|---:|---:|---:|")
    for key, name in (("stage", "`eqscale molecules` (label_shard)"), ("bare", "bare tblite loop, same geometries")):
        print(f"| {name} | {min(wall[key]):.2f} | {configurations / min(wall[key]):.1f} | {min(inside[key]):.2f} | "
              f"{1e3 * outside[key] / single_points:.2f} |")
    print()
    print(f"ratio stage / bare: {(floor + outside['stage']) / (floor + outside['bare']):.3f}x at equal tblite time, "
          f"{min(wall['stage']) / min(wall['bare']):.3f}x best wall rounds")
    for key in wall:
        print(f"  {key} rounds, wall (inside tblite): "
              + ", ".join(f"{w:.2f} ({i:.2f})" for w, i in zip(wall[key], inside[key])))


if __name__ == "__main__":
    main()
