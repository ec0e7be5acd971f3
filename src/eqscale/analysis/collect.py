"""`eqscale collect`: every trained and evaluated cell -> one row of results/summary.csv.

A cell directory holds run.json (written last by `eqscale train`) and eval.json (`eqscale
evaluate`); both are read through `eqscale.records`, which refuses a record that is malformed,
non-finite where a number is required, of another cell than its directory, or an eval.json of other
weights than run.json trained. Collect fails on the first such cell, naming it: a summary is either
every planned cell, checked, or nothing. A diverged cell is a row with diverged = True and no test
metrics (it counts against its family in the analysis), never a dropped row.

Beside the summary, results/sample_losses.npz stacks every cell's per-sample test losses (its
eval_samples.npz) into one matrix over the study's shared evaluation order, checked: each cell's
samples must be a prefix of that order with the same vertex counts and constant-velocity errors,
and sum to the test MSE its eval.json states. The analysis pairs cells and resamples test samples
with it.

Cells come either from the grid (what Snakemake passes: `--cells-json` with each cell's directory
and the designs that planned it) or from scanning a runs directory (`--runs`; designs are then
inferred: full-data cells are scaling cells, and every cell may serve the data-efficiency fits).
"""

from __future__ import annotations

import argparse
import io
import json
import math
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from eqscale.io_utils import atomic_write_bytes, atomic_write_text
from eqscale.records import EVAL_NAME, RUN_NAME, EvalRecord, RecordError, RunRecord, read_cell_results

SUMMARY_FORMAT_VERSION = 2
COLUMNS = ("cell", "run_dir", "model", "arm", "size", "params", "seed", "augment", "in_scaling",
           "in_data_efficiency", "budget", "steps", "flops", "flops_attention", "flops_per_step_nominal", "tokens",
           "data_fraction", "num_train_trajectories", "epochs", "best_step", "stopped_early", "lr", "batch_size",
           "diverged", "test_mse", "test_mse_se", "test_mse_lo", "test_mse_hi", "n_test_samples",
           "const_velocity_mse", "cv_ratio", "test_mse_contact", "test_mse_free", "cv_ratio_contact",
           "cv_ratio_free", "equivariance_error", "wall_time_s", "eval_wall_time_s", "device", "symmetry_loss",
           "energy_mae", "force_mae", "force_l2")
SCALING, DATA_EFFICIENCY = "scaling", "data_efficiency"


class CollectError(RuntimeError):
    """A cell cannot be collected; the message names the file and what is wrong with it."""


def _ratio(a: float, b: float) -> float:
    return a / b if b > 0 and math.isfinite(a) and math.isfinite(b) else math.nan


def summary_row(run: RunRecord, ev: EvalRecord, run_dir: str, designs: Iterable[str]) -> dict[str, Any]:
    """One summary row from a cell's checked records."""
    cell = run.cell
    designs = set(designs)
    return {
        "cell": cell.id, "run_dir": run_dir, "model": cell.model, "arm": cell.arm, "size": cell.size,
        "params": run.params, "seed": cell.seed, "augment": cell.augment,
        "in_scaling": SCALING in designs, "in_data_efficiency": DATA_EFFICIENCY in designs,
        "budget": cell.budget, "steps": run.steps, "flops": run.total_flops,
        "flops_attention": math.nan if run.flops_attention is None else run.flops_attention,
        "flops_per_step_nominal": run.flops_per_step_nominal, "tokens": run.train_tokens,
        "data_fraction": cell.data_fraction, "num_train_trajectories": run.num_train_trajectories,
        "epochs": run.epochs, "best_step": run.steps if run.best_step is None else run.best_step,
        "stopped_early": run.stopped_early, "lr": run.lr, "batch_size": run.batch_size,
        "diverged": run.diverged,
        "test_mse": ev.test_mse, "test_mse_se": ev.test_mse_se, "test_mse_lo": ev.test_mse_lo,
        "test_mse_hi": ev.test_mse_hi, "n_test_samples": ev.n_test_samples,
        "const_velocity_mse": ev.const_velocity_mse, "cv_ratio": _ratio(ev.test_mse, ev.const_velocity_mse),
        "test_mse_contact": ev.test_mse_contact, "test_mse_free": ev.test_mse_free,
        "cv_ratio_contact": _ratio(ev.test_mse_contact, ev.const_velocity_mse_contact),
        "cv_ratio_free": _ratio(ev.test_mse_free, ev.const_velocity_mse_free),
        "equivariance_error": ev.equivariance_error, "wall_time_s": run.wall_time_s,
        "eval_wall_time_s": ev.wall_time_s, "device": run.device, "symmetry_loss": cell.symmetry_loss,
        "energy_mae": ev.energy_mae, "force_mae": ev.force_mae, "force_l2": ev.force_l2,
    }


def collect_cell(cell_dir: str | Path, designs: Iterable[str] | None = None) -> dict[str, Any]:
    """One summary row from a cell directory (CollectError names the file and the problem)."""
    try:
        run, ev = read_cell_results(cell_dir)
    except RecordError as err:
        raise CollectError(str(err)) from None
    if designs is None:
        designs = {DATA_EFFICIENCY} | ({SCALING} if run.cell.data_fraction == 1.0 else set())
    return summary_row(run, ev, str(cell_dir), designs)


def find_cells(runs_dir: str | Path) -> list[Path]:
    """Every directory under runs_dir holding a run.json or an eval.json, sorted."""
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        raise CollectError(f"{runs_dir} is not a directory (expected results/runs with one directory per cell)")
    found = {p.parent for name in (RUN_NAME, EVAL_NAME) for p in runs_dir.rglob(name)}
    return sorted(found)


def collect_runs(runs_dir: str | Path | None = None, run_dirs: Iterable[str | Path] | None = None,
                 designs: Mapping[str, Iterable[str]] | None = None) -> pd.DataFrame:
    """The summary table: one row per cell, from a runs-directory scan or an explicit list of cell directories.

    designs: cell directory -> the designs that planned it (None: inferred, see the module docstring).
    """
    if (runs_dir is None) == (run_dirs is None):
        raise CollectError("give either a runs directory or a list of run directories")
    dirs = find_cells(runs_dir) if runs_dir is not None else list(dict.fromkeys(Path(d) for d in run_dirs))
    if not dirs:
        raise CollectError(f"no cells found{f' under {runs_dir} (no run.json files)' if runs_dir else ''}")
    rows = [collect_cell(d, None if designs is None else designs.get(str(d), ())) for d in dirs]
    seen: dict[str, str] = {}
    for row in rows:
        if row["cell"] in seen:
            raise CollectError(f"{row['run_dir']} and {seen[row['cell']]} hold the same cell {row['cell']}")
        seen[row["cell"]] = row["run_dir"]
    return pd.DataFrame(rows, columns=list(COLUMNS)).sort_values(
        ["arm", "budget", "params", "steps", "data_fraction", "seed"], na_position="last").reset_index(drop=True)


def write_summary(summary: pd.DataFrame, out: str | Path) -> None:
    """Write the summary CSV atomically (temp file + rename)."""
    atomic_write_text(out, summary.to_csv(index=False))


SAMPLE_KEYS = ("sample", "sq_error", "cv_sq_error", "n_values", "in_contact")


def _cell_samples(row: dict) -> dict[str, np.ndarray] | None:
    """A cell's eval_samples.npz, checked against its eval.json (None for a diverged cell)."""
    if row["diverged"]:
        return None
    path = Path(row["run_dir"]) / "eval_samples.npz"
    try:
        with np.load(path, allow_pickle=False) as data:
            samples = {k: np.asarray(data[k]) for k in SAMPLE_KEYS}
    except FileNotFoundError:
        raise CollectError(f"{path} is missing: re-run eqscale evaluate for this cell") from None
    except (OSError, ValueError, KeyError) as err:
        raise CollectError(f"{path} is not a readable per-sample file ({err}): re-run eqscale evaluate") from None
    lengths = {k: v.shape for k, v in samples.items()}
    if len({shape for shape in lengths.values()}) != 1 or len(next(iter(lengths.values()))) != 1:
        raise CollectError(f"{path}: arrays of different shapes {lengths}")
    if samples["sample"].size != row["n_test_samples"]:
        raise CollectError(f"{path} holds {samples['sample'].size} samples, eval.json says {row['n_test_samples']}")
    total = samples["sq_error"].sum() / max(samples["n_values"].sum(), 1)
    if not np.isclose(total, row["test_mse"], rtol=1e-9, atol=0):
        raise CollectError(f"{path} sums to a test MSE of {total:.6g}, eval.json states {row['test_mse']:.6g}: "
                           "the two files are of different evaluations; re-run eqscale evaluate")
    return samples


def stack_sample_losses(summary: pd.DataFrame) -> dict[str, np.ndarray]:
    """Every cell's per-sample losses on the study's shared evaluation order (NaN beyond a cell's prefix)."""
    per_cell = [_cell_samples(row) for row in summary.to_dict("records")]
    longest = max((s for s in per_cell if s is not None), key=lambda s: s["sample"].size, default=None)
    if longest is None:
        return {"cells": summary["cell"].to_numpy(str), "sample": np.zeros(0, np.int64),
                "sq_error": np.zeros((len(summary), 0)), "n_values": np.zeros(0, np.int64),
                "cv_sq_error": np.zeros(0), "in_contact": np.zeros(0, bool)}
    matrix = np.full((len(summary), longest["sample"].size), np.nan)
    for i, (row, samples) in enumerate(zip(summary.to_dict("records"), per_cell, strict=True)):
        if samples is None:
            continue
        m = samples["sample"].size
        for key in ("sample", "n_values", "cv_sq_error", "in_contact"):
            if not np.array_equal(samples[key], longest[key][:m]):
                raise CollectError(f"{row['run_dir']}: its test samples ({key}) are not a prefix of the other cells' "
                                   "evaluation order: cells were evaluated on different test sets; re-run eqscale "
                                   "evaluate for every cell")
        matrix[i, :m] = samples["sq_error"]
    return {"cells": summary["cell"].to_numpy(str), "sample": longest["sample"], "sq_error": matrix,
            "n_values": longest["n_values"], "cv_sq_error": longest["cv_sq_error"], "in_contact": longest["in_contact"]}


def write_sample_losses(losses: dict[str, np.ndarray], out: str | Path) -> None:
    """Write the stacked per-sample losses atomically."""
    buffer = io.BytesIO()
    np.savez(buffer, **losses)
    atomic_write_bytes(out, buffer.getvalue())


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, collect the cells, write the summary."""
    parser = argparse.ArgumentParser(prog="eqscale collect", description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--runs", type=Path, help="scan this directory for cells (run.json files)")
    source.add_argument("--run-dirs", nargs="+", type=Path, metavar="DIR", help="exactly these cell directories")
    source.add_argument("--cells-json", metavar="JSON",
                        help='the planned cells: [{"dir": ..., "designs": ["scaling", ...]}, ...] (what Snakemake passes)')
    parser.add_argument("--out", type=Path, default=Path("results/summary.csv"), help="summary CSV to write")
    parser.add_argument("--samples-out", type=Path, default=None,
                        help="stacked per-sample losses (default: sample_losses.npz beside the summary)")
    args = parser.parse_args(argv)
    try:
        if args.cells_json is not None:
            try:
                planned = json.loads(args.cells_json)
                designs = {str(Path(c["dir"])): c["designs"] for c in planned}
            except (json.JSONDecodeError, TypeError, KeyError) as err:
                raise CollectError(f"--cells-json is not a list of {{dir, designs}} objects ({err})") from None
            summary = collect_runs(run_dirs=list(designs), designs=designs)
        else:
            summary = collect_runs(args.runs, args.run_dirs)
        losses = stack_sample_losses(summary)
    except CollectError as err:
        print(f"eqscale collect: error: {err}", file=sys.stderr)
        return 1
    write_summary(summary, args.out)
    write_sample_losses(losses, args.samples_out or args.out.with_name("sample_losses.npz"))
    counts = ", ".join(f"{arm} {n}" for arm, n in summary["arm"].value_counts().sort_index().items())
    diverged = int(summary["diverged"].sum())
    print(f"collected {len(summary)} cells ({counts}{f'; {diverged} diverged' if diverged else ''}) -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
