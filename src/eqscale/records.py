"""What a cell leaves behind, as typed records with one writer and one checked reader each.

* `RunRecord` (run.json, written last by `eqscale train`): the cell, what training did, on what.
* `EvalRecord` (eval.json, `eqscale evaluate`): the test metrics of the cell's final weights.

Each record names its cell. `read_run` / `read_eval` refuse, naming the file and the reason, a file
that is missing, truncated, not JSON, of another format version, missing a field, holding a value
of the wrong type or a non-finite or out-of-range number where one is required, or naming another
cell than the directory it sits in; `read_cell_results` also checks that eval.json evaluated the
weights run.json describes (the sha256 of model.pt). A diverged run is a record too: run.json
says so, and eval.json then carries no test metrics (NaN), never a made-up number.

Torch-free: collect and the analysis read these without importing the training stack.
"""

from __future__ import annotations

import json
import math
from dataclasses import MISSING, asdict, dataclass, fields
from pathlib import Path
from typing import Any

from eqscale.cells import Cell, CellError
from eqscale.io_utils import atomic_write_text

RUN_FORMAT, EVAL_FORMAT = "eqscale-run", "eqscale-eval"
RECORD_VERSION = 3  # 3: cells carry how they stop (budget or converge) and their learning rate
RUN_NAME, EVAL_NAME, MODEL_NAME = "run.json", "eval.json", "model.pt"


class RecordError(ValueError):
    """A cell's record cannot be used; the message names the file and what is wrong."""


@dataclass(frozen=True)
class RunRecord:
    """run.json: one trained cell."""

    cell: Cell
    steps: int  # optimizer steps taken
    batch_size: int
    lr: float
    params: int
    total_flops: float  # forward + backward FLOPs of every batch trained on (analytic, per real batch)
    flops_per_step_nominal: float  # the grid's planned FLOPs of one step of this size
    train_tokens: int  # real face tokens seen
    num_train_trajectories: int
    num_train_samples: int
    final_train_loss: float | None
    wall_time_s: float  # all training segments summed (a resumed run counts every segment)
    device: str
    model_sha256: str  # of model.pt
    versions: dict[str, str]
    config: dict[str, Any]
    flops_attention: float | None = None  # the attention part of total_flops, where counted
    val_loss: float | None = None  # validation MSE of the weights model.pt holds (the best ones of a converging cell)
    best_step: int | None = None  # early stopping: the step whose weights model.pt holds
    stopped_early: bool = False
    diverged: bool = False
    diverged_message: str | None = None
    resumed_from_step: int | None = None

    @property
    def epochs(self) -> float:
        """Training samples seen over the training set's size."""
        return self.steps * self.batch_size / max(1, self.num_train_samples)


@dataclass(frozen=True)
class EvalRecord:
    """eval.json: the test metrics of one cell's final weights (test_mse: the study's test loss, see below)."""

    cell: Cell
    model_sha256: str  # the weights evaluated (must equal run.json's)
    test_mse: float  # NaN for a diverged run
    const_velocity_mse: float
    equivariance_error: float
    n_test_samples: int
    wall_time_s: float
    test_mse_se: float = math.nan  # standard error over test samples
    test_mse_lo: float = math.nan  # bootstrap interval over test samples at `confidence`
    test_mse_hi: float = math.nan
    confidence: float = math.nan
    test_mse_contact: float = math.nan  # samples with object-object contact in their frames / without
    test_mse_free: float = math.nan
    const_velocity_mse_contact: float = math.nan
    const_velocity_mse_free: float = math.nan
    samples_file: str | None = None  # per-sample losses beside eval.json
    diverged: bool = False
    # the force-field study: test_mse then holds its test loss (energy error per atom + force L2 error per atom, eV)
    # and const_velocity_mse the zero predictor's; these are its parts (NaN in the rigid study)
    energy_mae: float = math.nan  # eV per atom, mean over configurations of |E - E_ref| / atoms
    force_mae: float = math.nan  # eV/A, mean over force components
    force_l2: float = math.nan  # eV/A, mean over atoms of |F - F_ref|


_TYPES = {RunRecord: (RUN_FORMAT, RUN_NAME), EvalRecord: (EVAL_FORMAT, EVAL_NAME)}
# numbers that must be finite (and >= 0) in a record that did not diverge; NaN-able ones are listed apart
_FINITE = {"steps", "batch_size", "lr", "params", "total_flops", "flops_per_step_nominal", "train_tokens",
           "num_train_trajectories", "num_train_samples", "wall_time_s", "test_mse", "const_velocity_mse",
           "n_test_samples"}
_INTS = {"steps", "batch_size", "params", "train_tokens", "num_train_trajectories", "num_train_samples",
         "n_test_samples", "best_step", "resumed_from_step"}


def _jsonable(value: Any) -> Any:
    if isinstance(value, Cell):
        return value.as_record()
    if isinstance(value, float) and not math.isfinite(value):
        return None  # strict JSON: NaN is written as null and read back as NaN
    return value


def write_record(record: RunRecord | EvalRecord, cell_dir: str | Path) -> Path:
    """Write `record` atomically as the cell's run.json or eval.json; returns the path."""
    fmt, name = _TYPES[type(record)]
    payload = {"format": fmt, "format_version": RECORD_VERSION}
    payload.update({f.name: _jsonable(getattr(record, f.name)) for f in fields(record)})
    path = Path(cell_dir) / name
    atomic_write_text(path, json.dumps(payload, indent=2, sort_keys=True, allow_nan=False) + "\n")
    return path


def _load_json(path: Path, hint: str) -> dict[str, Any]:
    if not path.is_file():
        raise RecordError(f"{path} is missing: {hint}")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise RecordError(f"{path} is not valid JSON ({err.msg} at line {err.lineno}, column {err.colno}): "
                          "truncated or edited by hand?") from None
    except (OSError, UnicodeDecodeError) as err:
        raise RecordError(f"{path} cannot be read ({err})") from None
    if not isinstance(data, dict):
        raise RecordError(f"{path} holds a {type(data).__name__}, expected a JSON object")
    return data


def _read(kind: type, cell_dir: str | Path, hint: str) -> RunRecord | EvalRecord:
    fmt, name = _TYPES[kind]
    path = Path(cell_dir) / name
    data = _load_json(path, hint)
    if data.get("format") != fmt or data.get("format_version") != RECORD_VERSION:
        raise RecordError(f"{path} is not an {fmt} record of version {RECORD_VERSION} (format "
                          f"{data.get('format')!r}, version {data.get('format_version')!r}): rerun that stage")
    values: dict[str, Any] = {}
    diverged = bool(data.get("diverged", False))
    for f in fields(kind):
        if f.name not in data:
            if f.default is not MISSING or f.default_factory is not MISSING:
                continue  # an optional field an older writer of this version left out
            raise RecordError(f"{path} lacks the field {f.name!r}")
        values[f.name] = _check_value(path, f.name, data[f.name], diverged)
    try:
        values["cell"] = Cell.from_record(data["cell"] if isinstance(data["cell"], dict) else {})
    except CellError as err:
        raise RecordError(f"{path}: 'cell' is not a valid cell ({err})") from None
    try:
        expected = Cell.from_dir(cell_dir)
    except CellError as err:
        raise RecordError(f"{path} does not sit in a cell directory ({err})") from None
    if values["cell"] != expected:
        raise RecordError(f"{path} names cell {values['cell'].id} but sits in the directory of {expected.id} "
                          "(copied from another cell?)")
    return kind(**values)


def _check_value(path: Path, name: str, value: Any, diverged: bool) -> Any:
    """A field's value after type and range checks (RecordError names the field)."""
    if name in ("cell", "versions", "config"):
        if not isinstance(value, dict):
            raise RecordError(f"{path}: {name!r} must be an object, got {type(value).__name__}")
        return value
    if name in _INTS:
        if value is None and name in ("best_step", "resumed_from_step"):
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise RecordError(f"{path}: {name!r} must be a non-negative integer, got {value!r}")
        return value
    if name in ("diverged", "stopped_early"):
        if not isinstance(value, bool):
            raise RecordError(f"{path}: {name!r} must be true or false, got {value!r}")
        return value
    if name in ("device", "model_sha256", "samples_file", "diverged_message"):
        if value is None and name in ("samples_file", "diverged_message"):
            return None
        if not isinstance(value, str):
            raise RecordError(f"{path}: {name!r} must be a string, got {value!r}")
        return value
    # a number: null reads back as NaN; required ones must be finite and >= 0 unless the run diverged
    if value is None:
        number = math.nan
    elif isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RecordError(f"{path}: {name!r} must be a number, got {value!r}")
    else:
        number = float(value)
    if math.isinf(number) or number < 0:
        raise RecordError(f"{path}: {name!r} is {value!r}; it must be finite and >= 0")
    metric = name.startswith(("test_mse", "final_train_loss", "equivariance_error", "val_loss", "const_velocity_mse"))
    if math.isnan(number) and name in _FINITE and not (diverged and metric):
        raise RecordError(f"{path}: {name!r} is missing or NaN" + (" (a run that did not diverge)" if metric else ""))
    if name in ("final_train_loss", "val_loss", "flops_attention") and value is None:
        return None
    return number


def read_run(cell_dir: str | Path) -> RunRecord:
    """The checked run.json of a cell directory."""
    return _read(RunRecord, cell_dir, f"the cell was not trained to the end (eqscale train --cell-dir {cell_dir})")


def read_eval(cell_dir: str | Path) -> EvalRecord:
    """The checked eval.json of a cell directory."""
    return _read(EvalRecord, cell_dir, f"the cell was not evaluated (eqscale evaluate --cell-dir {cell_dir})")


def read_cell_results(cell_dir: str | Path) -> tuple[RunRecord, EvalRecord]:
    """run.json and eval.json of a cell, checked against each other (same cell, same weights, same divergence)."""
    run, ev = read_run(cell_dir), read_eval(cell_dir)
    if ev.model_sha256 != run.model_sha256:
        raise RecordError(f"{Path(cell_dir) / EVAL_NAME} evaluated other weights (model sha256 "
                          f"{ev.model_sha256[:12]}...) than {RUN_NAME} trained ({run.model_sha256[:12]}...): "
                          "re-run eqscale evaluate for this cell")
    if ev.diverged != run.diverged:
        raise RecordError(f"{Path(cell_dir)}: run.json says diverged={run.diverged} but eval.json says "
                          f"diverged={ev.diverged}: re-run eqscale evaluate for this cell")
    return run, ev


def as_dict(record: RunRecord | EvalRecord) -> dict[str, Any]:
    """The record as a plain dict (the cell as its JSON form)."""
    out = asdict(record)
    out["cell"] = record.cell.as_record()
    return out
