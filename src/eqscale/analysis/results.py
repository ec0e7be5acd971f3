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


# ---------------------------------------------------------------- compute and noise


@dataclass(frozen=True)
class SizeCompute:
    """One size of a family: parameters, FLOPs per step, and where the FLOPs of its cells went."""

    size: str
    params: int
    flops_per_step: float
    flops_per_param_step: float
    attention_share: float | None  # of the cells' recorded FLOPs (None: not recorded)
    padding_share: float | None
    n_cells: int


@dataclass(frozen=True)
class FamilyCompute:
    """A model family's FLOPs per step F(N): per size, the power law F = k*N^p and the compute split."""

    family: str
    sizes: list[SizeCompute]
    method: str
    source: str
    power_k: float
    power_p: float
    attention_share: float | None
    padding_share: float | None
    total_flops: float


@dataclass(frozen=True)
class SeedSpread:
    """Seed-to-seed spread of the test loss: pooled standard deviation of ln(test MSE) within configs."""

    sigma: float | None  # ~ relative spread; None without replicated configs
    dof: int
    n_configs: int  # configs with two or more seeds


@dataclass(frozen=True)
class NoiseEstimate:
    """Training (seed-to-seed) noise of a cell's ln loss, as the comparisons of single cells use it."""

    sigma: float | None
    dof: int
    source: str
    seeds: dict[str, SeedSpread]  # per arm, and "all"
    residual_sigma: float | None = None  # from the joint fits' residuals, net of the evaluation error


@dataclass(frozen=True)
class EvaluationSummary:
    """How the evaluation error entered the fits, and how large it was."""

    method: str
    n_paired: int
    n_parametric: int
    median_rel_se: float | None
    max_rel_se: float | None
    target_rel_se: float | None
    n_above_target: int | None
    eval_share_of_wall_time: float | None


# ---------------------------------------------------------------- per-arm fits


@dataclass(frozen=True)
class OptimalPoint:
    """The compute-optimal allocation at one budget, and whether N* lies within the sampled sizes."""

    budget: float
    N: Estimate
    S: Estimate
    loss: Estimate
    within_sizes: bool


@dataclass(frozen=True)
class JointArm:
    """Joint-law fit of one arm with its compute-optimal allocation along the family's real IsoFLOP curves."""

    fit: LawResult
    family: str
    compute: str  # how C relates to N and S
    exponents: dict[str, Estimate]  # a, b (slopes of N*, S* vs C), gamma (of L* - E), a_minus_b
    optimal: list[OptimalPoint]
    curves: dict[str, Curve]  # N_opt, S_opt, loss_opt vs C
    compute_range: list[float]
    sizes_range: list[float]
    edge_fraction: float  # share of (resample, C) where the optimum sat at the end of the search range
    n_budgets: int
    n_cells: int
    status: str = OK
    samples: dict[str, np.ndarray] | None = no_json()  # a, b, gamma, a_minus_b per refitted resample


@dataclass(frozen=True)
class ParabolaFit:
    """loss = c2*x^2 + c1*x + c0 with x = ln N, fitted to the sizes from n_min to n_max."""

    c2: float
    c1: float
    c0: float
    n_min: float
    n_max: float
    x: str = "ln N"


@dataclass(frozen=True)
class IsoflopBudget:
    """One budget line: its parabola and minimum, whether the sizes bracket it, or why there is none."""

    budget: float
    n_cells: int
    sizes: list[int]
    status: str
    reason: str | None
    bracketing: str  # "bracketed", "below the smallest size", "above the largest size", "no minimum"
    parabola: ParabolaFit | None = optional()
    N_opt: Estimate | None = optional()
    S_opt: Estimate | None = optional()
    loss_opt: float | None = optional()


@dataclass(frozen=True)
class IsoflopArm:
    """IsoFLOP analysis of one arm: per-budget parabolas and the power laws N*(C) = G*C^a, S*(C) ~ C^b."""

    budgets: list[IsoflopBudget]
    exponents: dict[str, Estimate]  # a, b, a_minus_b: slopes over the bracketed budgets (compute_range)
    compute_range: list[float]
    G: Estimate
    n_points: int
    r2_log: float | None
    bootstrap: BootstrapInfo
    curves: dict[str, Curve]  # N_opt and S_opt vs C
    n_cells: int
    status: str = OK
    samples: dict[str, np.ndarray] | None = no_json()


@dataclass(frozen=True)
class FrontierBudget:
    """One budget of an arm's frontier: its best config (seed mean), and whether it is on the envelope."""

    budget: float
    status: str  # "on envelope", "dropped", "no usable cells"
    reason: str | None
    size: str | None
    flops: float | None
    test_mse: float | None
    n_seeds: int
    cells: list[str]
    diverged: list[str]  # diverged cells on this budget (they count against the arm here)


@dataclass(frozen=True)
class PowerLawCheck:
    """Is the measured frontier a power law? Points, span and bend (a power law is straight in log-log)."""

    n_points: int
    decades: float
    bend: Estimate  # mid-range deviation of ln L from the chord of a quadratic fit in ln C: c2*W^2/4
    quadratic: list[float]  # c0, c1, c2 of ln L vs centred ln C
    method: str


@dataclass(frozen=True)
class FrontierArm:
    """The frontier of one arm: L*(C) from the joint law (primary), the measured envelope and its fits."""

    primary: str
    curve: Curve | None  # L*(C) of the joint law with its band (None without a joint fit)
    gamma: Estimate | None  # of L*(C) - E
    budgets: list[FrontierBudget]
    envelope: dict[str, Union[LawResult, Skipped]]  # cross-check: laws fitted to the envelope points
    power_law: Union[PowerLawCheck, Skipped]
    n_cells: int
    status: str = OK


@dataclass(frozen=True)
class DataPoint:
    """One training-set size of an arm's data-efficiency cells: seed-mean loss and the epochs reached."""

    D: float
    data_fraction: float
    test_mse: float
    cv_ratio: float | None
    n_seeds: int
    epochs: float | None
    best_step: float | None
    stopped_early: float | None  # share of seeds stopped by early stopping
    cells: list[str]


@dataclass(frozen=True)
class DataEfficiencyArm:
    """Converged test loss vs training-set size for one arm, with the law L(D) fitted to it (context)."""

    points: list[DataPoint]
    size: str
    budget: float | None
    x: str  # the summary column used as D
    fit: Union[LawResult, Skipped]
    n_cells: int
    status: str = OK


# ---------------------------------------------------------------- comparisons between cells and arms


@dataclass(frozen=True)
class CellRatio:
    """Test-loss ratio of two arms' cells at one point (a budget or a training-set size), paired resampling."""

    x: float
    ratio: Estimate
    cells_a: list[str]
    cells_b: list[str]
    n_seeds: list[int]
    note: str | None = optional()


@dataclass(frozen=True)
class DivergedAt:
    """Diverged cells of one arm at one point of a comparison: the arm loses there."""

    x: float
    arm: str
    cells: list[str]
    usable_left: bool  # whether the arm still has usable cells at this point


@dataclass(frozen=True)
class BudgetComparison:
    """An arm against the reference arm at every budget where both have cells, and the drift of the ratio."""

    at_budget: list[CellRatio]
    not_compared: list[str]  # budgets with cells of one arm only, and why
    diverged: list[DivergedAt]  # an arm with a diverged cell at a budget loses there
    drift: Estimate | None  # ratio at the largest budget over the smallest, from a fit of ln ratio vs ln C
    law_ratio: list[Estimate]  # L*_a(C)/L*_b(C) of the joint laws at each compared budget (context)
    gamma_difference: Estimate | None
    status: str = OK


@dataclass(frozen=True)
class ExponentComparison:
    """Exponents of an arm minus the reference arm's (paired resamples)."""

    a_difference: Estimate
    a_minus_b_difference: Estimate | None = None
    status: str = OK


@dataclass(frozen=True)
class DataComparison:
    """Two arms' converged losses at every shared training-set size (paired resampling)."""

    at_size: list[CellRatio]
    not_compared: list[str]
    diverged: list[DivergedAt]
    status: str = OK


# ---------------------------------------------------------------- verdicts


@dataclass(frozen=True)
class Check:
    """One row of a finding: a quantity, what the claim needs of it, the rule, our estimate and the verdict.

    `verdict` is "supported", "not supported" or "inconclusive", or None for a context row.
    """

    quantity: str
    claim: str
    rule: str
    estimate: Estimate | None
    verdict: str | None
    reason: str | None = None
    margin: float | None = None
    refit_share: float | None = None
    seed_spread: float | None = None


@dataclass(frozen=True)
class Finding:
    """One finding of the paper: the claim, the checks that test it and the verdict they give."""

    number: int
    title: str
    claim: str
    rule: str
    checks: list[Check]
    verdict: str
    reason: str
    figures: list[str]


@dataclass(frozen=True)
class AnalysisSettings:
    """The settings the fit used (config section `analysis`, plus evaluation.target_rel_se)."""

    bootstrap: int = 1000
    seed: int = 0
    confidence: float = 0.95
    equivalence_margin: float = 0.1
    min_frontier_points: int = 4
    min_frontier_decades: float = 1.0
    power_law_margin: float = 0.05
    min_refit_share: float = 0.8
    diverged_cv_ratio: float = 1.0
    min_seed_dof: int = 3
    target_rel_se: float | None = None


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
    n_usable: int
    n_diverged: int
    n_unusable: int
    arms_present: list[str]
    bootstrap: BootstrapSettings | None
    missing_columns: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ComputeFile(FitFile):
    """results/fits/compute.json: F(N) per family and the split of its FLOPs."""

    families: dict[str, Union[FamilyCompute, Skipped]] = field(default_factory=dict)


@dataclass(frozen=True)
class FrontierFile(FitFile):
    """results/fits/frontier.json."""

    laws: list[str] = field(default_factory=list)
    arms: dict[str, Union[FrontierArm, Skipped]] = field(default_factory=dict)
    comparisons: dict[str, Union[BudgetComparison, Skipped]] = field(default_factory=dict)


@dataclass(frozen=True)
class JointFile(FitFile):
    """results/fits/joint.json."""

    law: str = ""
    arms: dict[str, Union[JointArm, Skipped]] = field(default_factory=dict)
    comparisons: dict[str, Union[ExponentComparison, Skipped]] = field(default_factory=dict)


@dataclass(frozen=True)
class IsoflopFile(FitFile):
    """results/fits/isoflop.json."""

    law: str = ""
    arms: dict[str, Union[IsoflopArm, Skipped]] = field(default_factory=dict)
    comparisons: dict[str, Union[ExponentComparison, Skipped]] = field(default_factory=dict)


@dataclass(frozen=True)
class DataEfficiencyFile(FitFile):
    """results/fits/data_efficiency.json."""

    laws: list[str] = field(default_factory=list)
    arms: dict[str, Union[DataEfficiencyArm, Skipped]] = field(default_factory=dict)
    comparisons: dict[str, Union[DataComparison, Skipped]] = field(default_factory=dict)


@dataclass(frozen=True)
class FindingsFile(FitFile):
    """results/fits/findings.json: each finding's checks and verdict, the noise and the settings behind them."""

    study: str = ""
    settings: AnalysisSettings = field(default_factory=AnalysisSettings)
    noise: NoiseEstimate | None = None
    evaluation: EvaluationSummary | None = None
    findings: list[Finding] = field(default_factory=list)


@dataclass(frozen=True)
class Fits:
    """Every fit file of a study (None where a file is absent)."""

    compute: ComputeFile | None = None
    frontier: FrontierFile | None = None
    joint: JointFile | None = None
    isoflop: IsoflopFile | None = None
    data_efficiency: DataEfficiencyFile | None = None
    findings: FindingsFile | None = None


FILE_TYPES: dict[str, type] = {"compute": ComputeFile, "frontier": FrontierFile, "joint": JointFile,
                               "isoflop": IsoflopFile, "data_efficiency": DataEfficiencyFile,
                               "findings": FindingsFile}


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
