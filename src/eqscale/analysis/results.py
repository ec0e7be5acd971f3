"""The analysis's result records and their JSON: what `eqscale fit` writes and plots and report read.

Every result is a frozen dataclass. `to_json` turns a record into plain JSON values (NaN and inf
become null; fields marked `json=False` stay in memory only; fields marked `omit_none=True` are left
out when None); `from_json(Type, data)` rebuilds the record from its type hints, so a reader gets
typed objects back and never navigates dicts by string keys. A union of a record and `Skipped` is
told apart by the "status" field. This module imports numpy only.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Union

import numpy as np

OK, SKIPPED = "ok", "skipped"


def no_json(default: Any = None) -> Any:
    """A dataclass field kept in memory (bootstrap samples, point fits) but never written to JSON."""
    return field(default=default, metadata={"json": False}, compare=False, repr=False)


def optional(default: Any = None) -> Any:
    """A field left out of the JSON when it is None."""
    return field(default=default, metadata={"omit_none": True})


# ---------------------------------------------------------------- small records


@dataclass(frozen=True)
class Estimate:
    """A point value and its bootstrap percentile interval (None where no interval could be formed)."""

    value: float
    lo: float | None = None
    hi: float | None = None

    @classmethod
    def of(cls, value: float, lo: float = math.nan, hi: float = math.nan) -> Estimate:
        """An Estimate with NaN bounds turned into None."""
        return cls(float(value), _finite_or_none(lo), _finite_or_none(hi))

    @property
    def has_interval(self) -> bool:
        """Whether both bounds exist."""
        return self.lo is not None and self.hi is not None

    def excludes(self, reference: float) -> bool | None:
        """True if the interval lies wholly on one side of `reference`; None without an interval."""
        if not self.has_interval:
            return None
        return self.lo > reference or self.hi < reference

    def map(self, fn: Any, *, decreasing: bool = False) -> Estimate:
        """The estimate of fn(x) for a monotone fn (bounds swapped when fn decreases)."""
        lo = fn(self.lo) if self.lo is not None else math.nan
        hi = fn(self.hi) if self.hi is not None else math.nan
        return Estimate.of(fn(self.value), hi if decreasing else lo, lo if decreasing else hi)


def _finite_or_none(v: float | None) -> float | None:
    return float(v) if v is not None and math.isfinite(v) else None


@dataclass(frozen=True)
class Curve:
    """A fitted curve on a grid of x, with its pointwise bootstrap band."""

    x: np.ndarray
    value: np.ndarray
    lo: np.ndarray
    hi: np.ndarray


@dataclass(frozen=True)
class Skipped:
    """A fit or comparison that could not be done, and why."""

    reason: str
    status: str = SKIPPED


@dataclass(frozen=True)
class BootstrapInfo:
    """How a bootstrap went: resamples drawn, refitted (ok) and failed."""

    resamples: int
    ok: int
    failed: int
    seed: int
    confidence: float
    stratified_by: str | None = None

    @property
    def ok_fraction(self) -> float | None:
        """Share of resamples that refitted; None without resamples."""
        return self.ok / self.resamples if self.resamples else None


@dataclass(frozen=True)
class LawResult:
    """One law fitted to one arm, with intervals on every parameter and a band on its curve."""

    law: str
    formula: str
    params: dict[str, Estimate]
    n_points: int
    n_rows: int
    n_params: int
    rmse_log: float
    r2_log: float
    bootstrap: BootstrapInfo
    curve: Curve | None  # None where the law has several inputs (the joint law's curves are N*, S*, L* vs C)
    note: str | None = None
    status: str = OK
    point: Any = no_json()  # the powerlaw.LawFit behind it
    samples: np.ndarray | None = no_json()  # bootstrap parameters, (n_ok, n_params)


# ---------------------------------------------------------------- per-arm fits


@dataclass(frozen=True)
class FrontierPoints:
    """The lower envelope of loss vs compute: one point per config on it."""

    flops: list[float]
    test_mse: list[float]
    budget: list[float | None]


@dataclass(frozen=True)
class FrontierArm:
    """Frontier fits of one arm: the envelope points and each law variant (or why it was skipped)."""

    points: FrontierPoints
    primary: str
    variants: dict[str, Union[LawResult, Skipped]]
    n_cells: int
    status: str = OK


@dataclass(frozen=True)
class OptimalPoint:
    """The compute-optimal allocation at one budget."""

    budget: float
    N: Estimate
    S: Estimate
    loss: Estimate


@dataclass(frozen=True)
class JointArm:
    """Joint-law fit of one arm with its compute-optimal allocation."""

    fit: LawResult
    flops_per_param_step: float
    exponents: dict[str, Estimate]  # a, b, gamma_implied
    optimal: list[OptimalPoint]
    curves: dict[str, Curve]  # N_opt, S_opt, loss_opt vs C
    n_budgets: int
    n_cells: int
    status: str = OK


@dataclass(frozen=True)
class ParabolaFit:
    """loss = c2*x^2 + c1*x + c0 with x = ln N."""

    c2: float
    c1: float
    c0: float
    x: str = "ln N"


@dataclass(frozen=True)
class IsoflopBudget:
    """One budget line of the IsoFLOP analysis: its parabola and minimum, or why there is none."""

    budget: float
    n_cells: int
    sizes: list[int]
    status: str
    reason: str | None
    parabola: ParabolaFit | None = optional()
    N_opt: Estimate | None = optional()
    S_opt: Estimate | None = optional()
    loss_opt: float | None = optional()
    bracketed: bool | None = optional()


@dataclass(frozen=True)
class IsoflopArm:
    """IsoFLOP analysis of one arm: per-budget parabolas and the power law N*(C) = G*C^a."""

    budgets: list[IsoflopBudget]
    exponents: dict[str, Estimate]  # a, b_implied
    G: Estimate
    n_points: int
    r2_log: float | None
    bootstrap: BootstrapInfo
    curves: dict[str, Curve]  # N_opt and S_opt vs C
    flops_per_param_step: float
    n_cells: int
    status: str = OK
    samples_a: np.ndarray | None = no_json()  # bootstrap samples of a


@dataclass(frozen=True)
class DataPoints:
    """Training-set sizes and test losses of a data-efficiency fit."""

    D: list[float]
    test_mse: list[float]


@dataclass(frozen=True)
class DataEfficiencyArm:
    """Test loss vs training-set size at fixed model and steps (fixed compute) for one arm."""

    fit: LawResult
    size: str
    steps: int
    budget: float | None
    x: str  # the summary column used as D
    points: DataPoints
    n_cells: int
    status: str = OK


# ---------------------------------------------------------------- comparisons between arms


@dataclass(frozen=True)
class BudgetRatio:
    """Loss ratio of two arms at one budget."""

    budget: float
    ratio: Estimate


@dataclass(frozen=True)
class FrontierComparison:
    """An arm's frontier against the reference arm's."""

    ratio_law: str
    at_budget: list[BudgetRatio]
    gamma_difference: Estimate | None
    status: str = OK
    note: str | None = optional()


@dataclass(frozen=True)
class ExponentComparison:
    """An exponent of an arm minus the reference arm's."""

    a_difference: Estimate
    status: str = OK


@dataclass(frozen=True)
class DataComparison:
    """Two arms' data-efficiency laws compared at the smallest and largest shared training-set size."""

    D_small: float
    D_large: float
    ratio_at_small: Estimate
    ratio_at_large: Estimate
    degradation_ratio: Estimate
    status: str = OK


# ---------------------------------------------------------------- the fit files


@dataclass(frozen=True)
class BootstrapSettings:
    """The bootstrap every fit of a file used."""

    resamples: int
    seed: int
    confidence: float
    method: str


@dataclass(frozen=True)
class FitFile:
    """What every fit file records besides its fits: the cells it saw and the bootstrap."""

    kind: str
    n_cells: int
    n_dropped: int
    arms_present: list[str]
    bootstrap: BootstrapSettings
    dropped_reason: str | None = optional()


@dataclass(frozen=True)
class FrontierFile(FitFile):
    """results/fits/frontier.json."""

    laws: list[str] = field(default_factory=list)
    arms: dict[str, Union[FrontierArm, Skipped]] = field(default_factory=dict)
    comparisons: Union[dict[str, Union[FrontierComparison, Skipped]], Skipped] = field(default_factory=dict)


@dataclass(frozen=True)
class JointFile(FitFile):
    """results/fits/joint.json."""

    law: str = ""
    compute: str = ""
    arms: dict[str, Union[JointArm, Skipped]] = field(default_factory=dict)
    comparisons: Union[dict[str, Union[ExponentComparison, Skipped]], Skipped] = field(default_factory=dict)


@dataclass(frozen=True)
class IsoflopFile(FitFile):
    """results/fits/isoflop.json."""

    law: str = ""
    arms: dict[str, Union[IsoflopArm, Skipped]] = field(default_factory=dict)
    comparisons: Union[dict[str, Union[ExponentComparison, Skipped]], Skipped] = field(default_factory=dict)


@dataclass(frozen=True)
class DataEfficiencyFile(FitFile):
    """results/fits/data_efficiency.json."""

    laws: list[str] = field(default_factory=list)
    fallback: str = ""
    arms: dict[str, Union[DataEfficiencyArm, Skipped]] = field(default_factory=dict)
    comparisons: Union[dict[str, Union[DataComparison, Skipped]], Skipped] = field(default_factory=dict)


@dataclass(frozen=True)
class Fits:
    """Every fit file of a study (None where a file is absent)."""

    frontier: FrontierFile | None = None
    joint: JointFile | None = None
    isoflop: IsoflopFile | None = None
    data_efficiency: DataEfficiencyFile | None = None


FILE_TYPES: dict[str, type] = {"frontier": FrontierFile, "joint": JointFile, "isoflop": IsoflopFile,
                               "data_efficiency": DataEfficiencyFile}


def ok(result: Any) -> bool:
    """Whether a result exists and is not Skipped."""
    return result is not None and not isinstance(result, Skipped)


# ---------------------------------------------------------------- JSON


class RecordError(ValueError):
    """JSON that does not match the record type it is read as; the message names the path."""


def to_json(obj: Any) -> Any:
    """Plain JSON values: records to dicts (json=False fields left out), NaN and inf to None."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        out = {}
        for f in dataclasses.fields(obj):
            if not f.metadata.get("json", True):
                continue
            value = getattr(obj, f.name)
            if value is None and f.metadata.get("omit_none"):
                continue
            out[f.name] = to_json(value)
        return out
    if isinstance(obj, tuple) and hasattr(obj, "_asdict"):
        return {k: to_json(v) for k, v in obj._asdict().items()}
    if isinstance(obj, dict):
        return {str(k): to_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_json(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return [to_json(v) for v in obj.tolist()]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    return obj


def from_json(tp: Any, data: Any, path: str = "$") -> Any:
    """Rebuild a value of type `tp` (a record, list, dict, union, ...) from its JSON; RecordError on mismatch."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return data
    if origin in (Union, types.UnionType):
        return _from_union(typing.get_args(tp), data, path)
    if data is None:
        if tp is float:
            return math.nan  # to_json wrote a NaN as null
        raise RecordError(f"{path}: null where a {getattr(tp, '__name__', tp)} was expected")
    if dataclasses.is_dataclass(tp):
        return _from_record(tp, data, path)
    if origin in (list, tuple):
        if not isinstance(data, list):
            raise RecordError(f"{path}: expected a list, got {type(data).__name__}")
        (item,) = typing.get_args(tp)[:1] or (Any,)
        return [from_json(item, v, f"{path}[{i}]") for i, v in enumerate(data)]
    if origin is dict:
        if not isinstance(data, dict):
            raise RecordError(f"{path}: expected an object, got {type(data).__name__}")
        _, item = typing.get_args(tp) or (str, Any)
        return {k: from_json(item, v, f"{path}.{k}") for k, v in data.items()}
    if tp is np.ndarray:
        return np.array([math.nan if v is None else v for v in data], dtype=float)
    if tp is float:
        if not isinstance(data, (int, float)) or isinstance(data, bool):
            raise RecordError(f"{path}: expected a number, got {data!r}")
        return float(data)
    if tp is int:
        if not isinstance(data, int) or isinstance(data, bool):
            raise RecordError(f"{path}: expected an integer, got {data!r}")
        return data
    if tp in (str, bool):
        if not isinstance(data, tp):
            raise RecordError(f"{path}: expected a {tp.__name__}, got {data!r}")
        return data
    return data


def _from_union(options: tuple, data: Any, path: str) -> Any:
    if data is None and type(None) in options:
        return None
    rest = [o for o in options if o is not type(None)]
    if Skipped in rest and isinstance(data, dict) and data.get("status") == SKIPPED and set(data) <= {"status",
                                                                                                       "reason"}:
        return from_json(Skipped, data, path)
    rest = [o for o in rest if o is not Skipped]
    errors = []
    for option in rest:
        try:
            return from_json(option, data, path)
        except RecordError as err:
            errors.append(str(err))
    raise RecordError("; ".join(errors) or f"{path}: no type fits {data!r}")


@typing.no_type_check
def _from_record(cls: type, data: Any, path: str) -> Any:
    if not isinstance(data, dict):
        raise RecordError(f"{path}: expected an object for {cls.__name__}, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for f in dataclasses.fields(cls):
        if not f.metadata.get("json", True):
            continue
        if f.name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise RecordError(f"{path}: {cls.__name__} lacks {f.name!r}")
            continue
        kwargs[f.name] = from_json(hints[f.name], data[f.name], f"{path}.{f.name}")
    return cls(**kwargs)
