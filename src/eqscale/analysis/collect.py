"""`eqscale collect`: every trained and evaluated cell -> one row of results/summary.csv.

A cell directory holds run.json (written last by `eqscale train`) and eval.json (`eqscale evaluate`).
Cells come either from scanning a runs directory for run.json files or from an explicit list of
cell directories (what Snakemake passes, so the summary holds exactly the rule's inputs).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from eqscale.io_utils import atomic_write_text

COLUMNS = ("model", "arm", "size", "params", "steps", "tokens", "flops", "budget", "data_fraction",
           "num_train_trajectories", "augment", "seed", "test_mse", "const_velocity_mse", "equivariance_error",
           "wall_time_s", "device", "run_dir")
RUN_KEYS = ("cell", "params", "total_flops", "train_tokens", "num_train_trajectories", "wall_time_s", "device")
CELL_KEYS = ("model", "size", "steps", "data_fraction", "augment", "seed")
EVAL_KEYS = ("test_mse", "const_velocity_mse", "equivariance_error")


class CollectError(RuntimeError):
    """A cell cannot be collected; the message names the file and what is wrong with it."""


def _read_json(path: Path, hint: str) -> dict[str, Any]:
    if not path.is_file():
        raise CollectError(f"{path} is missing: {hint}")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise CollectError(f"{path} is not valid JSON ({err.msg} at line {err.lineno}, column {err.colno})") from None
    if not isinstance(data, dict):
        raise CollectError(f"{path} holds a {type(data).__name__}, expected a JSON object")
    return data


def _require(data: dict[str, Any], keys: Iterable[str], path: Path, where: str = "") -> None:
    missing = [k for k in keys if k not in data]
    if missing:
        raise CollectError(f"{path} lacks key(s) {', '.join(repr(where + k) for k in missing)}")


def collect_cell(cell_dir: str | Path) -> dict[str, Any]:
    """One summary row from a cell directory's run.json and eval.json."""
    cell_dir = Path(cell_dir)
    run_path, eval_path = cell_dir / "run.json", cell_dir / "eval.json"
    run = _read_json(run_path, f"the cell at {cell_dir} was not trained to the end "
                               f"(eqscale train --cell-dir {cell_dir})")
    _require(run, RUN_KEYS, run_path)
    cell = run["cell"]
    if not isinstance(cell, dict):
        raise CollectError(f"{run_path}: 'cell' is a {type(cell).__name__}, expected an object")
    _require(cell, CELL_KEYS, run_path, "cell.")
    ev = _read_json(eval_path, f"the cell at {cell_dir} was trained but not evaluated "
                               f"(eqscale evaluate --cell-dir {cell_dir})")
    _require(ev, EVAL_KEYS, eval_path)
    augment = bool(cell["augment"])
    return {
        "model": cell["model"],
        "arm": cell["model"] + ("+aug" if augment else ""),
        "size": str(cell["size"]),
        "params": run["params"],
        "steps": cell["steps"],
        "tokens": run["train_tokens"],
        "flops": run["total_flops"],
        "budget": cell.get("budget"),
        "data_fraction": cell["data_fraction"],
        "num_train_trajectories": run["num_train_trajectories"],
        "augment": augment,
        "seed": cell["seed"],
        "test_mse": ev["test_mse"],
        "const_velocity_mse": ev["const_velocity_mse"],
        "equivariance_error": ev["equivariance_error"],
        "wall_time_s": run["wall_time_s"],
        "device": run["device"],
        "run_dir": str(cell_dir),
    }


def find_cells(runs_dir: str | Path) -> list[Path]:
    """Every directory under runs_dir holding a run.json, sorted."""
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        raise CollectError(f"{runs_dir} is not a directory (expected results/runs with one directory per cell)")
    return sorted(p.parent for p in runs_dir.rglob("run.json"))


def collect_runs(runs_dir: str | Path | None = None, run_dirs: Iterable[str | Path] | None = None) -> pd.DataFrame:
    """The summary table: one row per cell, from a runs directory scan or an explicit list of cell directories."""
    if (runs_dir is None) == (run_dirs is None):
        raise CollectError("give either a runs directory or a list of run directories")
    dirs = find_cells(runs_dir) if runs_dir is not None else list(dict.fromkeys(Path(d) for d in run_dirs))
    if not dirs:
        raise CollectError(f"no cells found{f' under {runs_dir} (no run.json files)' if runs_dir else ''}")
    rows = [collect_cell(d) for d in dirs]
    return pd.DataFrame(rows, columns=list(COLUMNS)).sort_values(
        ["arm", "budget", "params", "steps", "data_fraction", "seed"], na_position="last").reset_index(drop=True)


def write_summary(summary: pd.DataFrame, out: str | Path) -> None:
    """Write the summary CSV atomically (temp file + rename)."""
    atomic_write_text(out, summary.to_csv(index=False))


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, collect the cells, write the summary."""
    parser = argparse.ArgumentParser(prog="eqscale collect", description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--runs", type=Path, help="scan this directory for cells (run.json files)")
    source.add_argument("--run-dirs", nargs="+", type=Path, metavar="DIR", help="exactly these cell directories")
    parser.add_argument("--out", type=Path, default=Path("results/summary.csv"), help="summary CSV to write")
    args = parser.parse_args(argv)
    try:
        summary = collect_runs(args.runs, args.run_dirs)
    except CollectError as err:
        print(f"eqscale collect: error: {err}", file=sys.stderr)
        return 1
    write_summary(summary, args.out)
    counts = ", ".join(f"{arm} {n}" for arm, n in summary["arm"].value_counts().sort_index().items())
    print(f"collected {len(summary)} cells ({counts}) -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
