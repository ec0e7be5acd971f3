"""Power laws fitted in log space with a Huber loss, and their bootstrap: the machinery under fit.py.

Every law here is a floor E >= 0 (or none) plus one power-law term per input,
L(x) = E + sum_t A_t*x_t^-p_t, fitted as log L = logsumexp(log E, log A_t - p_t*log x_t) with a Huber
loss on the log residuals and L-BFGS-B from a grid of starts, best kept (Hoffmann et al. 2022;
Besiroglu et al. 2024). The bootstrap refits resampled data warm-started from the point fit, all
resamples at once (optim.batched_lbfgs); it is kept apart from the point fit, which never depends on it.
Parameters come back as typed tuples (FrontierParams, JointParams, DataParams); results as dataclasses
that `to_jsonable` turns into plain JSON (NaN -> null).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import warnings
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from scipy.optimize import minimize

from eqscale.analysis.optim import batched_lbfgs, single_threaded_blas

HUBER_DELTA = 1e-3  # on natural-log residuals, as in the Chinchilla replications
DEFAULT_RESAMPLES = 1000
DEFAULT_CONFIDENCE = 0.95
CURVE_POINTS = 60


class FitError(ValueError):
    """A fit cannot be done; the message says why and what it would need."""


# ---------------------------------------------------------------- laws and their parameter tuples


class FrontierParams(NamedTuple):
    """L(C) = E + A*C^-gamma (C in FLOPs)."""

    E: float
    A: float
    gamma: float


class JointParams(NamedTuple):
    """L(N, S) = E + A*N^-alpha + B*S^-beta (N parameters, S optimizer steps)."""

    E: float
    A: float
    alpha: float
    B: float
    beta: float


class DataParams(NamedTuple):
    """L(D) = E + A*D^-delta (D training trajectories)."""

    E: float
    A: float
    delta: float


@dataclass(frozen=True)
class Law:
    """A floor E >= 0 (or none) plus one power-law term A_t*x_t^-p_t per input."""

    name: str
    formula: str
    params_type: type
    inputs: tuple[str, ...]
    floor: bool = True

    @property
    def param_names(self) -> tuple[str, ...]:
        """Names of the fitted parameters (E is left out when the law has no floor)."""
        names = self.params_type._fields
        return names if self.floor else names[1:]

    @property
    def n_params(self) -> int:
        """Number of fitted parameters."""
        return 2 * len(self.inputs) + int(self.floor)

    def params(self, theta: np.ndarray) -> Any:
        """Natural parameters from the log-space vector theta = [log E], (log A_t, p_t)..."""
        theta = np.asarray(theta, dtype=float)
        values = [math.exp(theta[0]) if self.floor else 0.0]
        rest = theta[1:] if self.floor else theta
        for t in range(len(self.inputs)):
            values += [math.exp(rest[2 * t]), float(rest[2 * t + 1])]
        return self.params_type(*values)

    def theta(self, params: Sequence[float]) -> np.ndarray:
        """Inverse of `params`."""
        p = list(params)
        head = [math.log(p[0])] if self.floor else []
        body = [v for t in range(len(self.inputs)) for v in (math.log(p[1 + 2 * t]), p[2 + 2 * t])]
        return np.array(head + body, dtype=float)

    def __call__(self, params: Sequence[float], *xs: np.ndarray | float) -> np.ndarray:
        """The law itself, in natural units."""
        p = list(params)
        out = np.asarray(p[0], dtype=float) if self.floor else np.asarray(0.0)
        for t, x in enumerate(xs):
            out = out + p[1 + 2 * t] * np.asarray(x, dtype=float) ** -p[2 + 2 * t]
        return out


FRONTIER = Law("saturating", "L(C) = E + A*C^-gamma", FrontierParams, ("C",))
FRONTIER_POWER = Law("power_law", "L(C) = A*C^-gamma", FrontierParams, ("C",), floor=False)
JOINT = Law("joint", "L(N, S) = E + A*N^-alpha + B*S^-beta", JointParams, ("N", "S"))
DATA = Law("saturating", "L(D) = E + A*D^-delta", DataParams, ("D",))
DATA_POWER = Law("power_law", "L(D) = A*D^-delta", DataParams, ("D",), floor=False)

EXPONENT_BOUNDS = (0.0, 5.0)


def _bounds(law: Law) -> list[tuple[float | None, float | None]]:
    # exponents are kept non-negative (a loss that grows with compute is not a scaling law) and
    # finite; log-coefficients are free
    head = [(None, None)] if law.floor else []
    return head + [b for _ in law.inputs for b in ((None, None), EXPONENT_BOUNDS)]


# ---------------------------------------------------------------- objective (vectorised, analytic gradient)


def _log_predict(law: Law, theta: np.ndarray, logx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """log L and the softmax weight of each term (rows: floor first, then one per input)."""
    rows = []
    if law.floor:
        rows.append(np.full(logx.shape[1], theta[0]))
    off = int(law.floor)
    for t in range(len(law.inputs)):
        rows.append(theta[off + 2 * t] - theta[off + 2 * t + 1] * logx[t])
    z = np.vstack(rows)
    zmax = z.max(axis=0)
    w = np.exp(z - zmax)
    s = w.sum(axis=0)
    return zmax + np.log(s), w / s


def huber_objective(theta: np.ndarray, law: Law, logx: np.ndarray, logy: np.ndarray,
                    delta: float = HUBER_DELTA) -> tuple[float, np.ndarray]:
    """Sum of Huber losses of log residuals divided by delta, and its gradient in theta."""
    pred, w = _log_predict(law, theta, logx)
    r = pred - logy
    absr = np.abs(r)
    # divided by delta so the value is O(|r|) whatever delta is: L-BFGS-B's tolerances are absolute
    value = float(np.where(absr > delta, absr - 0.5 * delta, 0.5 * r * r / delta).sum())
    g = np.clip(r, -delta, delta) / delta
    grad = np.empty_like(theta)
    off = int(law.floor)
    if law.floor:
        grad[0] = g @ w[0]
    for t in range(len(law.inputs)):
        gw = g * w[off + t]
        grad[off + 2 * t] = gw.sum()
        grad[off + 2 * t + 1] = -(gw @ logx[t])
    return value, grad


def _shift_theta(law: Law, theta: np.ndarray, centre: np.ndarray, sign: float) -> np.ndarray:
    """log A_t -> log A_t + sign*p_t*centre_t: the coefficient of (log x - centre) instead of log x."""
    out = np.array(theta, dtype=float)
    off = int(law.floor)
    for t in range(len(law.inputs)):
        out[off + 2 * t] += sign * out[off + 2 * t + 1] * centre[t]
    return out


def _minimize(law: Law, theta0: np.ndarray, logx: np.ndarray, logy: np.ndarray,
              delta: float) -> tuple[np.ndarray, float]:
    # optimise in centred inputs: log A and p are then nearly uncorrelated (log x is ~10-30 far from 0
    # otherwise), which cuts L-BFGS-B's iterations several-fold
    centre = np.median(logx, axis=1)
    with single_threaded_blas():  # scipy's L-BFGS-B calls BLAS on tiny vectors; threads only slow it down
        res = minimize(huber_objective, _shift_theta(law, theta0, centre, -1.0),
                       args=(law, logx - centre[:, None], logy, delta), jac=True, method="L-BFGS-B",
                       bounds=_bounds(law), options={"maxiter": 500, "maxfun": 2000, "ftol": 1e-11, "gtol": 1e-9})
    return _shift_theta(law, res.x, centre, 1.0), float(res.fun)


# ---------------------------------------------------------------- point fit


@dataclass(frozen=True)
class LawFit:
    """A point fit of one law: parameters, data size and goodness of fit in log space."""

    law: Law
    params: Any
    theta: np.ndarray
    n_points: int  # distinct design points (replicates of a point count once)
    n_rows: int  # rows used
    n_dropped: int  # rows dropped for missing or non-positive values
    rmse_log: float
    r2_log: float
    objective: float
    n_starts: int


def _prepare(law: Law, xs: Sequence[np.ndarray], loss: np.ndarray, min_points: int,
             what: str) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Validated (log x, log L, distinct points, rows dropped); FitError says what is wrong."""
    if len(xs) != len(law.inputs):
        raise FitError(f"{what}: the law {law.formula} takes {len(law.inputs)} inputs, got {len(xs)}")
    x = np.vstack([np.asarray(v, dtype=float).ravel() for v in xs]) if xs else np.empty((0, 0))
    y = np.asarray(loss, dtype=float).ravel()
    if x.shape[1] != y.size:
        raise FitError(f"{what}: inputs have {x.shape[1]} rows but the loss has {y.size}")
    ok = np.isfinite(y) & (y > 0) & np.all(np.isfinite(x) & (x > 0), axis=0)
    n_dropped = int((~ok).sum())
    if n_dropped:
        warnings.warn(f"{what}: dropped {n_dropped} of {y.size} rows with missing or non-positive values",
                      stacklevel=3)
    x, y = x[:, ok], y[ok]
    n_points = int(np.unique(x.T, axis=0).shape[0]) if y.size else 0
    if n_points < min_points:
        raise FitError(f"{what}: {law.formula} has {law.n_params} parameters and needs at least {min_points} "
                       f"distinct points, but {n_points} were given")
    if np.ptp(np.log(y)) < 1e-12:
        raise FitError(f"{what}: all {y.size} losses are equal ({y[0]:.4g}): a power law cannot be fitted to a "
                       "constant")
    for name, row in zip(law.inputs, x, strict=True):
        if np.ptp(row) == 0:
            raise FitError(f"{what}: every point has the same {name} ({row[0]:.4g}); the exponent of {name} "
                           "cannot be fitted")
    return np.log(x), np.log(y), n_points, n_dropped


def default_starts(law: Law, logx: np.ndarray, logy: np.ndarray) -> list[np.ndarray]:
    """A grid of starts scaled to the data: exponents x floor share x term shares."""
    exponents = (0.1, 0.3, 0.7, 1.5)
    floor_fracs = (0.05, 0.5, 0.9) if law.floor else (0.0,)
    k = len(law.inputs)
    shares = [(1.0,)] if k == 1 else [(0.25, 0.75), (0.75, 0.25)]
    lmin, lmed = math.exp(logy.min()), math.exp(float(np.median(logy)))
    med_logx = np.median(logx, axis=1)
    starts = []
    for ps, f, share in itertools.product(itertools.product(exponents, repeat=k), floor_fracs, shares):
        e0 = f * lmin
        rest = max(lmed - e0, 1e-3 * lmed)  # what the power-law terms must explain at the median point
        head = [math.log(e0)] if law.floor else []
        body = [v for t in range(k) for v in (math.log(share[t] * rest) + ps[t] * med_logx[t], ps[t])]
        starts.append(np.array(head + body))
    return starts


POLISHED_STARTS = 3  # best grid results refined by scipy's L-BFGS-B


def fit_law(law: Law, xs: Sequence[np.ndarray], loss: np.ndarray, *, delta: float = HUBER_DELTA,
            starts: Sequence[np.ndarray] | None = None, min_points: int | None = None,
            what: str = "fit") -> LawFit:
    """Fit `law` to (xs, loss) from a grid of starts; keep the lowest Huber objective.

    Every start is run by the batched L-BFGS (all at once, cheap); the best few results are then
    refined by scipy's L-BFGS-B and the best of those kept. Needs n_params + 1 distinct points by
    default, so a residual remains to judge the fit by.
    """
    need = law.n_params + 1 if min_points is None else min_points
    logx, logy, n_points, n_dropped = _prepare(law, xs, loss, need, what)
    starts = np.atleast_2d(default_starts(law, logx, logy) if starts is None else np.asarray(starts, dtype=float))
    grid_theta, grid_value = _batched_minimize(law, [(logx, logy)], starts, delta)
    order = np.argsort(np.where(np.isfinite(grid_value), grid_value, np.inf))[:POLISHED_STARTS]
    best: tuple[np.ndarray, float] | None = None
    for theta0 in grid_theta[order]:
        if not np.all(np.isfinite(theta0)):
            continue
        theta, value = _minimize(law, theta0, logx, logy, delta)
        if np.all(np.isfinite(theta)) and math.isfinite(value) and (best is None or value < best[1]):
            best = (theta, value)
    if best is None:
        raise FitError(f"{what}: {law.formula} did not converge from any of {len(starts)} starts")
    theta, value = best
    pred, _ = _log_predict(law, theta, logx)
    resid = pred - logy
    ss_tot = float(((logy - logy.mean()) ** 2).sum())
    return LawFit(law=law, params=law.params(theta), theta=theta, n_points=n_points, n_rows=int(logy.size),
                  n_dropped=n_dropped, rmse_log=float(np.sqrt(np.mean(resid ** 2))),
                  r2_log=1.0 - float((resid ** 2).sum()) / ss_tot, objective=value, n_starts=len(starts))


def batched_huber_objective(theta: np.ndarray, law: Law, logx: np.ndarray, logy: np.ndarray, weight: np.ndarray,
                            delta: float = HUBER_DELTA) -> tuple[np.ndarray, np.ndarray]:
    """`huber_objective` of many problems at once: theta (b, p), logx (b, k, n), logy and weight (b, n)."""
    off = int(law.floor)
    k = len(law.inputs)
    z = np.empty((theta.shape[0], off + k, logy.shape[1]))
    if law.floor:
        z[:, 0, :] = theta[:, :1]
    for t in range(k):
        z[:, off + t, :] = theta[:, off + 2 * t, None] - theta[:, off + 2 * t + 1, None] * logx[:, t, :]
    zmax = z.max(axis=1)
    w = np.exp(z - zmax[:, None, :])
    total = w.sum(axis=1)
    w /= total[:, None, :]
    r = zmax + np.log(total) - logy
    absr = np.abs(r)
    value = (weight * np.where(absr > delta, absr - 0.5 * delta, 0.5 * r * r / delta)).sum(axis=1)
    g = weight * np.clip(r, -delta, delta) / delta
    grad = np.empty_like(theta)
    if law.floor:
        grad[:, 0] = (g * w[:, 0]).sum(axis=1)
    for t in range(k):
        gw = g * w[:, off + t]
        grad[:, off + 2 * t] = gw.sum(axis=1)
        grad[:, off + 2 * t + 1] = -(gw * logx[:, t]).sum(axis=1)
    return value, grad


def bootstrap_starts(law: Law, theta: np.ndarray, loss_min: float) -> np.ndarray:
    """Starts for refitting resamples: the point fit, and (with a floor) the same with E raised to loss_min/2.

    The second start matters when the point fit's E is ~0: there the floor's gradient vanishes, and a
    resample started only from the point fit could never move E, giving a falsely narrow interval.
    """
    starts = [np.asarray(theta, dtype=float)]
    if law.floor:
        raised = starts[0].copy()
        raised[0] = max(raised[0], math.log(0.5 * loss_min))
        if raised[0] != starts[0][0]:
            starts.append(raised)
    return np.vstack(starts)


def refit_batch(law: Law, datasets: Sequence[tuple[Sequence[np.ndarray], np.ndarray] | None], starts: np.ndarray,
                delta: float = HUBER_DELTA) -> np.ndarray:
    """Refit `law` to every dataset from each start (rows of `starts`) in one batched L-BFGS run; keep the best.

    Returns one theta per dataset, NaN where it failed.

    A dataset fails (None, or a row of NaN) when it has fewer distinct points than the point fit needs
    (n_params + 1), is constant, or does not converge to finite values. An exactly determined resample
    is not fitted: it interpolates, and its curve swings wildly outside the points it happened to keep.
    """
    out = np.full((len(datasets), law.n_params), np.nan)
    prepared, rows = [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i, data in enumerate(datasets):
            if data is None:
                continue
            try:
                logx, logy, _, _ = _prepare(law, data[0], data[1], law.n_params + 1, "resample")
            except FitError:
                continue
            prepared.append((logx, logy))
            rows.append(i)
    if not rows:
        return out
    starts = np.atleast_2d(starts)
    theta, value = _batched_minimize(law, prepared, starts, delta)
    n_data = len(rows)
    best = np.argmin(value.reshape(starts.shape[0], n_data), axis=0) * n_data + np.arange(n_data)
    finite = np.isfinite(value[best])
    out[np.array(rows)[finite]] = theta[best][finite]
    return out


def _batched_minimize(law: Law, prepared: Sequence[tuple[np.ndarray, np.ndarray]], starts: np.ndarray,
                      delta: float) -> tuple[np.ndarray, np.ndarray]:
    """Minimise every (dataset, start) pair at once; problem j*D + i is dataset i from start j.

    Returns thetas (S*D, p) and objective values (inf where not finite).
    """
    k, n_max, n_data = len(law.inputs), max(ly.size for _, ly in prepared), len(prepared)
    logx_b = np.zeros((n_data, k, n_max))
    logy_b = np.zeros((n_data, n_max))
    weight = np.zeros((n_data, n_max))  # padding rows weigh nothing
    for j, (lx, ly) in enumerate(prepared):
        logx_b[j, :, :ly.size], logy_b[j, :ly.size], weight[j, :ly.size] = lx, ly, 1.0
    # centred inputs, as in _minimize: the coefficient and the exponent are then nearly uncorrelated
    centre = np.array([np.median(np.concatenate([lx[t] for lx, _ in prepared])) for t in range(k)])
    logx_b -= centre[None, :, None] * (weight[:, None, :] > 0)
    bounds = _bounds(law)
    lower = np.array([-np.inf if lo is None else lo for lo, _ in bounds])
    upper = np.array([np.inf if hi is None else hi for _, hi in bounds])
    x0 = np.repeat(np.vstack([_shift_theta(law, t, centre, -1.0) for t in starts]), n_data, axis=0)
    data_of = np.tile(np.arange(n_data), starts.shape[0])

    def fun(theta: np.ndarray, which: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        d = data_of[which]
        return batched_huber_objective(theta, law, logx_b[d], logy_b[d], weight[d], delta)

    res = batched_lbfgs(fun, x0, lower, upper)
    theta = np.vstack([_shift_theta(law, t, centre, 1.0) for t in res.x])
    ok = np.isfinite(res.fun) & np.all(np.isfinite(theta), axis=1)
    return theta, np.where(ok, res.fun, np.inf)


# ---------------------------------------------------------------- bootstrap


@dataclass(frozen=True)
class BootstrapSamples:
    """Statistics of the successful resamples (rows) and how many resamples failed."""

    samples: np.ndarray
    n_resamples: int
    n_failed: int
    seed: int
    stratified_by: str | None

    def info(self, confidence: float) -> dict[str, Any]:
        """What the JSON records about this bootstrap."""
        return {"resamples": self.n_resamples, "ok": self.n_resamples - self.n_failed, "failed": self.n_failed,
                "seed": self.seed, "confidence": confidence, "stratified_by": self.stratified_by}


def percentile_interval(samples: np.ndarray, confidence: float) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval of each column, ignoring NaN; NaN where a column has fewer than two values."""
    samples = np.atleast_2d(np.asarray(samples, dtype=float))
    width = samples.shape[1] if samples.ndim == 2 else 0
    lo, hi = np.full(width, np.nan), np.full(width, np.nan)
    if samples.shape[0] == 0:
        return lo, hi
    enough = np.sum(np.isfinite(samples), axis=0) >= 2
    if enough.any():
        q = 100 * np.array([(1 - confidence) / 2, (1 + confidence) / 2])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            lo[enough], hi[enough] = np.nanpercentile(samples[:, enough], q, axis=0)
    return lo, hi


def resample_index_sets(n_rows: int, *, n_resamples: int, seed: int,
                        strata: np.ndarray | None = None) -> list[np.ndarray]:
    """Row indices of each resample, drawn with replacement (within each stratum when strata are given)."""
    rng = np.random.default_rng(seed)
    if strata is None:
        return [rng.integers(0, n_rows, n_rows) for _ in range(n_resamples)]
    codes = pd.factorize(pd.Series(strata), use_na_sentinel=False)[0]
    members = [np.flatnonzero(codes == c) for c in range(codes.max() + 1)] if codes.size else []
    return [np.concatenate([m[rng.integers(0, m.size, m.size)] for m in members]) for _ in range(n_resamples)]


def bootstrap(statistic: Callable[[np.ndarray], np.ndarray], n_rows: int, *, n_resamples: int, seed: int,
              strata: np.ndarray | None = None, stratified_by: str | None = None) -> BootstrapSamples:
    """Apply `statistic(indices)` to resampled rows; a resample whose statistic raises FitError is counted failed."""
    rows: list[np.ndarray] = []
    failed = 0
    for idx in resample_index_sets(n_rows, n_resamples=n_resamples, seed=seed, strata=strata):
        try:
            rows.append(np.asarray(statistic(idx), dtype=float))
        except FitError:
            failed += 1
    samples = np.vstack(rows) if rows else np.empty((0, 0))
    return BootstrapSamples(samples, n_resamples, failed, seed, stratified_by)


def bootstrap_law(law: Law, point: LawFit, make_data: Callable[[np.ndarray], tuple[Sequence[np.ndarray], np.ndarray]],
                  n_rows: int, *, n_resamples: int, seed: int, strata: np.ndarray | None = None,
                  stratified_by: str | None = None,
                  derived: Callable[[Any], np.ndarray] | None = None) -> BootstrapSamples:
    """Refit `law` to `make_data(indices)` of every resample, warm-started from the point fit, in one batch.

    Each sample row is the law's parameters, followed by `derived(params)` when given; failed
    resamples are left out and counted.
    """
    datasets: list[tuple[Sequence[np.ndarray], np.ndarray] | None] = []
    for idx in resample_index_sets(n_rows, n_resamples=n_resamples, seed=seed, strata=strata):
        try:
            datasets.append(make_data(idx))
        except FitError:
            datasets.append(None)
    loss_min = min((float(np.min(d[1])) for d in datasets if d is not None and len(d[1])), default=1.0)
    thetas = refit_batch(law, datasets, bootstrap_starts(law, point.theta, loss_min))
    rows = []
    for theta in thetas:
        if not np.all(np.isfinite(theta)):
            continue
        params = law.params(theta)
        extra = derived(params) if derived is not None else np.empty(0)
        rows.append(np.concatenate([param_vector(law, params), extra]))
    samples = np.vstack(rows) if rows else np.empty((0, 0))
    return BootstrapSamples(samples, n_resamples, n_resamples - len(rows), seed, stratified_by)


def arm_seed(seed: int, kind: str, arm: str) -> int:
    """A stable per-(fit, arm) seed, so adding an arm does not change another arm's resamples."""
    return int(np.random.SeedSequence([seed, zlib.crc32(f"{kind}/{arm}".encode())]).generate_state(1)[0])


# ---------------------------------------------------------------- result records (serialise to JSON)


@dataclass(frozen=True)
class Estimate:
    """A point value and its bootstrap percentile interval (None where no interval could be formed)."""

    value: float
    lo: float | None = None
    hi: float | None = None

    @classmethod
    def of(cls, value: float, lo: float = math.nan, hi: float = math.nan) -> Estimate:
        """An Estimate with NaN bounds turned into None."""
        def clean(v: float) -> float | None:
            return float(v) if v is not None and math.isfinite(v) else None
        return cls(float(value), clean(lo), clean(hi))

    def excludes(self, reference: float) -> bool | None:
        """True if the interval lies wholly on one side of `reference`; None without an interval."""
        if self.lo is None or self.hi is None:
            return None
        return self.lo > reference or self.hi < reference


@dataclass(frozen=True)
class Curve:
    """A fitted curve on a grid of x, with its pointwise bootstrap band."""

    x: np.ndarray
    value: np.ndarray
    lo: np.ndarray
    hi: np.ndarray


@dataclass(frozen=True)
class Skipped:
    """A fit that could not be done, and why."""

    reason: str
    status: str = "skipped"


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
    bootstrap: dict[str, Any]
    curve: Curve | None  # None where the law has several inputs (the joint law's curves are N*, S*, L* vs C)
    note: str | None = None
    status: str = "ok"
    point: LawFit | None = field(default=None, metadata={"json": False})
    samples: np.ndarray | None = field(default=None, metadata={"json": False})  # bootstrap params, (n_ok, n_params)


def to_jsonable(obj: Any) -> Any:
    """Plain JSON types: dataclasses to dicts (fields marked json=False left out), NaN and inf to None."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)
                if f.metadata.get("json", True)}
    if isinstance(obj, tuple) and hasattr(obj, "_asdict"):
        return {k: to_jsonable(v) for k, v in obj._asdict().items()}
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return [to_jsonable(v) for v in obj.tolist()]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    return obj


def _estimates(names: Sequence[str], values: Sequence[float], samples: np.ndarray,
               confidence: float) -> dict[str, Estimate]:
    lo, hi = percentile_interval(samples, confidence) if samples.size else (
        np.full(len(names), np.nan), np.full(len(names), np.nan))
    return {n: Estimate.of(v, lo[i], hi[i]) for i, (n, v) in enumerate(zip(names, values, strict=True))}


def _curve(x: np.ndarray, value: np.ndarray, samples: np.ndarray, confidence: float) -> Curve:
    lo, hi = percentile_interval(samples, confidence) if samples.size else (
        np.full(x.size, np.nan), np.full(x.size, np.nan))
    return Curve(x=x, value=value, lo=lo, hi=hi)


def log_grid(lo: float, hi: float, n: int = CURVE_POINTS) -> np.ndarray:
    """n log-spaced points from lo to hi."""
    return np.geomspace(lo, hi, n)


def fit_with_bootstrap(law: Law, xs: Sequence[np.ndarray], loss: np.ndarray, *, grid: np.ndarray,
                       n_resamples: int, seed: int, confidence: float,
                       resample: Callable[[np.ndarray], tuple[Sequence[np.ndarray], np.ndarray]] | None = None,
                       n_rows: int | None = None, strata: np.ndarray | None = None,
                       stratified_by: str | None = None, what: str = "fit", note: str | None = None) -> LawResult:
    """Point fit of a one-input law plus a bootstrap of its parameters and its curve on `grid`.

    `resample(indices)` turns resampled cell indices into the (xs, loss) to refit (default: the rows of
    xs and loss themselves), so a derived point set such as the frontier is rebuilt per resample.
    """
    point = fit_law(law, xs, loss, what=what)
    if resample is None:
        def resample(idx: np.ndarray) -> tuple[Sequence[np.ndarray], np.ndarray]:
            return [np.asarray(x, float)[idx] for x in xs], np.asarray(loss, float)[idx]
        n_rows = np.asarray(loss).size
    boot = bootstrap_law(law, point, resample, int(n_rows), n_resamples=n_resamples, seed=seed, strata=strata,
                         stratified_by=stratified_by, derived=lambda p: np.log(law(p, grid)))
    k = len(law.param_names)
    psamples = boot.samples[:, :k] if boot.samples.size else np.empty((0, k))
    csamples = np.exp(boot.samples[:, k:]) if boot.samples.size else np.empty((0, grid.size))
    return LawResult(law=law.name, formula=law.formula,
                     params=_estimates(law.param_names, param_vector(law, point.params), psamples, confidence),
                     n_points=point.n_points, n_rows=point.n_rows, n_params=law.n_params,
                     rmse_log=point.rmse_log, r2_log=point.r2_log, bootstrap=boot.info(confidence),
                     curve=_curve(grid, law(point.params, grid), csamples, confidence), note=note,
                     point=point, samples=psamples)


def param_vector(law: Law, params: Any) -> np.ndarray:
    p = np.asarray(tuple(params), dtype=float)
    return p if law.floor else p[1:]


def params_from_vector(law: Law, vector: np.ndarray) -> Any:
    v = list(vector)
    return law.params_type(*(v if law.floor else [0.0] + v))
