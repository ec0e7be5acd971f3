"""Scaling-law fits with bootstrap intervals: pure functions over the summary table.

Laws (test loss L is vertex MSE in m^2, fitted per arm):

* frontier  L(C) = E + A*C^-gamma over the lower envelope of loss vs training FLOPs C, and the pure
            power law L(C) = A*C^-gamma (E = 0);
* joint     L(N, S) = E + A*N^-alpha + B*S^-beta (N parameters, S optimizer steps). With
            C = k*N*S (k FLOPs per parameter per step, the median of the arm's cells) the compute-optimal
            N*(C) ~ C^a and S*(C) ~ C^b with a = beta/(alpha+beta), b = alpha/(alpha+beta);
* IsoFLOP   per budget a parabola of loss vs ln N; its vertex is N*(C); then N*(C) = G*C^a;
* data      L(D) = E + A*D^-delta over training-set size D (trajectories) at fixed compute.

Every power law here is a floor plus a sum of power-law terms, fitted in log space as
log L = logsumexp(log E, log A_t - p_t*log x_t) with a Huber loss on the log residuals, L-BFGS-B from a
grid of starts, best kept (Hoffmann et al. 2022; Besiroglu et al. 2024). The bootstrap resamples cells
with replacement and refits from the point fit's parameters (warm starts); it is kept apart from the
point fit, which never depends on it.
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
ARM_ORDER = ("gatr", "transformer", "transformer+aug", "gatr+aug")
SUMMARY_COLUMNS = ("arm", "size", "params", "steps", "flops", "budget", "data_fraction",
                   "num_train_trajectories", "test_mse")


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
        rows.append(np.concatenate([_param_vector(law, params), extra]))
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
    curve: Curve
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
                     params=_estimates(law.param_names, _param_vector(law, point.params), psamples, confidence),
                     n_points=point.n_points, n_rows=point.n_rows, n_params=law.n_params,
                     rmse_log=point.rmse_log, r2_log=point.r2_log, bootstrap=boot.info(confidence),
                     curve=_curve(grid, law(point.params, grid), csamples, confidence), note=note,
                     point=point, samples=psamples)


def _param_vector(law: Law, params: Any) -> np.ndarray:
    p = np.asarray(tuple(params), dtype=float)
    return p if law.floor else p[1:]


def _params_from_vector(law: Law, vector: np.ndarray) -> Any:
    v = list(vector)
    return law.params_type(*(v if law.floor else [0.0] + v))


# ---------------------------------------------------------------- the summary table


def prepare_summary(summary: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Rows usable for fitting and how many were dropped (missing or non-positive loss, FLOPs, size, steps)."""
    missing = [c for c in SUMMARY_COLUMNS if c not in summary.columns]
    if missing:
        raise FitError(f"the summary lacks column(s) {', '.join(missing)} (expected the output of eqscale collect)")
    df = summary.copy()
    for col in ("params", "steps", "flops", "budget", "data_fraction", "num_train_trajectories", "test_mse"):
        df[col] = pd.to_numeric(df[col], errors="coerce")
    needed = df[["params", "steps", "flops", "test_mse"]].to_numpy(dtype=float)
    ok = np.all(np.isfinite(needed) & (needed > 0), axis=1)
    n_dropped = int((~ok).sum())
    if n_dropped:
        warnings.warn(f"summary: dropped {n_dropped} of {len(df)} rows with missing or non-positive "
                      "params/steps/flops/test_mse", stacklevel=2)
    return df[ok].reset_index(drop=True), n_dropped


def arms_of(df: pd.DataFrame) -> list[str]:
    """Arms in the table, known ones first in a fixed order."""
    present = list(dict.fromkeys(df["arm"].astype(str)))
    return [a for a in ARM_ORDER if a in present] + sorted(a for a in present if a not in ARM_ORDER)


def scaling_cells(df: pd.DataFrame, arm: str) -> pd.DataFrame:
    """An arm's cells trained on its full training set (the scaling grid's cells)."""
    cells = df[df["arm"] == arm]
    if cells.empty:
        return cells
    full = np.isclose(cells["data_fraction"].to_numpy(float), np.nanmax(cells["data_fraction"].to_numpy(float)))
    return cells[full].reset_index(drop=True)


def _check_not_constant(loss: np.ndarray, what: str) -> None:
    loss = np.asarray(loss, float)
    if loss.size >= 2 and np.ptp(np.log(loss)) < 1e-12:
        raise FitError(f"{what}: all {loss.size} test losses are equal ({loss[0]:.4g} m^2): a power law cannot "
                       "be fitted to a constant")


# ---------------------------------------------------------------- compute frontier


def lower_envelope(flops: np.ndarray, loss: np.ndarray, budget: np.ndarray,
                   config: np.ndarray) -> np.ndarray:
    """Indices (into the unique configs) on the lower envelope of loss vs FLOPs, plus their (C, L, budget).

    Seeds of one config (same size and steps) are averaged first (geometric mean of the loss). On a
    budget line the configs differ in FLOPs only by rounding, so each budget contributes its best
    config; configs without a budget compete on their own. Then a point stays only if no cheaper
    point has a lower loss.
    """
    _, inv = np.unique(config, return_inverse=True)
    counts = np.bincount(inv)
    c = np.bincount(inv, flops) / counts
    log_l = np.bincount(inv, np.log(loss)) / counts
    b = np.bincount(inv, budget) / counts  # NaN budget stays NaN
    has_budget = np.isfinite(b)
    order = np.lexsort((log_l, b))
    sorted_b = b[order]
    first = np.ones(order.size, dtype=bool)
    first[1:] = sorted_b[1:] != sorted_b[:-1]
    candidates = np.concatenate([order[first & np.isfinite(sorted_b)], np.flatnonzero(~has_budget)])
    candidates = candidates[np.argsort(c[candidates], kind="stable")]
    keep, best = [], math.inf
    for i in candidates:
        if log_l[i] < best:
            keep.append(i)
            best = log_l[i]
    keep = np.array(keep, dtype=int)
    return np.vstack([c[keep], np.exp(log_l[keep]), b[keep]])


@dataclass(frozen=True)
class FrontierArm:
    """Frontier fits of one arm: the envelope points and each law variant (or why it was skipped)."""

    points: dict[str, list[float | None]]
    primary: str
    variants: dict[str, LawResult | Skipped]
    n_cells: int
    status: str = "ok"


def _config_codes(cells: pd.DataFrame) -> np.ndarray:
    key = cells["size"].astype(str) + "|" + cells["steps"].astype(str)
    return pd.factorize(key)[0]


def fit_frontier(cells: pd.DataFrame, *, n_resamples: int = DEFAULT_RESAMPLES, seed: int = 0,
                 confidence: float = DEFAULT_CONFIDENCE, what: str = "frontier") -> FrontierArm:
    """Fit L(C) = E + A*C^-gamma and L(C) = A*C^-gamma to one arm's lower envelope, with bootstrap."""
    flops = cells["flops"].to_numpy(float)
    loss = cells["test_mse"].to_numpy(float)
    budget = cells["budget"].to_numpy(float)
    config = _config_codes(cells)
    _check_not_constant(loss, what)
    env = lower_envelope(flops, loss, budget, config)
    has_budget = np.isfinite(budget)
    strata = np.where(has_budget, budget, -1.0) if has_budget.any() else None
    grid = log_grid(env[0].min(), env[0].max()) if env.shape[1] >= 2 else log_grid(flops.min(), flops.max())

    def resample(idx: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
        e = lower_envelope(flops[idx], loss[idx], budget[idx], config[idx])
        return [e[0]], e[1]

    variants: dict[str, LawResult | Skipped] = {}
    for law in (FRONTIER, FRONTIER_POWER):
        try:
            variants[law.name] = fit_with_bootstrap(
                law, [env[0]], env[1], grid=grid, n_resamples=n_resamples, seed=seed, confidence=confidence,
                resample=resample, n_rows=flops.size, strata=strata,
                stratified_by="budget" if strata is not None else None,
                what=f"{what} ({law.formula}, {env.shape[1]} envelope points of {flops.size} cells)")
        except FitError as err:
            variants[law.name] = Skipped(str(err))
    ok = [name for name, v in variants.items() if isinstance(v, LawResult)]
    if not ok:
        raise FitError("; ".join(v.reason for v in variants.values() if isinstance(v, Skipped)))
    points = {"flops": env[0].tolist(), "test_mse": env[1].tolist(),
              "budget": [b if math.isfinite(b) else None for b in env[2]]}
    return FrontierArm(points=points, primary=ok[0], variants=variants, n_cells=int(flops.size))


# ---------------------------------------------------------------- joint law and compute-optimal allocation


def compute_optimal(params: JointParams, flops_per_param_step: float,
                    compute: np.ndarray | float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """N*(C), S*(C) and L(N*, S*) minimising L(N, S) subject to k*N*S = C."""
    e, a_, alpha, b_, beta = params
    c = np.asarray(compute, dtype=float) / flops_per_param_step
    if alpha <= 0 or beta <= 0:
        nan = np.full(np.shape(c), np.nan)
        return nan, nan, nan
    # setting dL/dN = 0 on N*S = c: alpha*A*N^-alpha = beta*B*S^-beta
    g = (alpha * a_ / (beta * b_)) ** (1.0 / (alpha + beta))
    n_opt = g * c ** (beta / (alpha + beta))
    s_opt = c / n_opt
    return n_opt, s_opt, JOINT(params, n_opt, s_opt)


def allocation_exponents(params: JointParams) -> tuple[float, float, float]:
    """(a, b, gamma): N* ~ C^a, S* ~ C^b and the implied frontier L* - E ~ C^-gamma."""
    alpha, beta = params.alpha, params.beta
    if alpha + beta <= 0:
        return math.nan, math.nan, math.nan
    return beta / (alpha + beta), alpha / (alpha + beta), alpha * beta / (alpha + beta)


@dataclass(frozen=True)
class JointArm:
    """Joint-law fit of one arm with its compute-optimal allocation."""

    fit: LawResult
    flops_per_param_step: float
    exponents: dict[str, Estimate]  # a, b, gamma_implied
    optimal: list[dict[str, Any]]  # per budget: budget, N, S, loss
    curves: dict[str, Curve]  # N_opt, S_opt, loss_opt vs C
    n_budgets: int
    n_cells: int
    status: str = "ok"


def fit_joint(cells: pd.DataFrame, *, n_resamples: int = DEFAULT_RESAMPLES, seed: int = 0,
              confidence: float = DEFAULT_CONFIDENCE, what: str = "joint") -> JointArm:
    """Fit L(N, S) = E + A*N^-alpha + B*S^-beta to one arm's cells; derive N*(C), S*(C) with bootstrap."""
    n = cells["params"].to_numpy(float)
    s = cells["steps"].to_numpy(float)
    loss = cells["test_mse"].to_numpy(float)
    flops = cells["flops"].to_numpy(float)
    budget = cells["budget"].to_numpy(float)
    _check_not_constant(loss, what)
    budgets = np.unique(budget[np.isfinite(budget)])
    if budgets.size == 1 and np.isfinite(budget).all():
        raise FitError(f"{what}: all {loss.size} cells lie on one IsoFLOP line (budget {budgets[0]:.3g} FLOPs), where "
                       "N and S are tied (N*S = const): alpha and beta cannot be separated; add budgets")
    logns = np.vstack([np.log(n), np.log(s)])
    centred = logns - logns.mean(axis=1, keepdims=True)
    sv = np.linalg.svd(centred, compute_uv=False) if loss.size >= 2 else np.zeros(2)
    if loss.size >= 2 and sv[0] > 0 and sv[1] / sv[0] < 1e-6:
        raise FitError(f"{what}: log N and log S are collinear over the {loss.size} cells: alpha and beta cannot "
                       "be separated; vary size and steps independently (several budgets)")
    k = float(np.median(flops / (n * s)))
    point = fit_law(JOINT, [n, s], loss, what=what)
    cgrid = log_grid(flops.min(), flops.max())
    at = budgets if budgets.size else np.quantile(flops, [0.0, 0.5, 1.0])
    strata = np.where(np.isfinite(budget), budget, -1.0)

    def derived(params: JointParams) -> np.ndarray:
        a, b, g = allocation_exponents(params)
        n_g, s_g, l_g = compute_optimal(params, k, cgrid)
        n_b, s_b, l_b = compute_optimal(params, k, at)
        return np.concatenate([[a, b, g], np.log(n_g), np.log(s_g), np.log(l_g), np.log(n_b), np.log(s_b),
                               np.log(l_b)])

    boot = bootstrap_law(JOINT, point, lambda idx: ([n[idx], s[idx]], loss[idx]), loss.size,
                         n_resamples=n_resamples, seed=seed, strata=strata, stratified_by="budget", derived=derived)
    width = 5 + 3 + 3 * cgrid.size + 3 * at.size
    samples = boot.samples if boot.samples.size else np.empty((0, width))
    point_vec = np.concatenate([np.asarray(point.params, float), derived(point.params)])
    lo, hi = percentile_interval(samples, confidence) if samples.shape[0] else (np.full(width, np.nan),) * 2
    # log-space columns come back as natural values
    log_cols = slice(8, width)
    point_nat = point_vec.copy()
    point_nat[log_cols] = np.exp(point_vec[log_cols])
    lo_nat, hi_nat = lo.copy(), hi.copy()
    lo_nat[log_cols], hi_nat[log_cols] = np.exp(lo[log_cols]), np.exp(hi[log_cols])

    def est(i: int) -> Estimate:
        return Estimate.of(point_nat[i], lo_nat[i], hi_nat[i])

    params = {name: est(i) for i, name in enumerate(JOINT.param_names)}
    notes = [f"exponent {name} is at its bound 0: the optimum sits at the edge of the grid"
             for name in ("alpha", "beta") if getattr(point.params, name) <= 1e-6]
    result = LawResult(law=JOINT.name, formula=JOINT.formula, params=params, n_points=point.n_points,
                       n_rows=point.n_rows, n_params=JOINT.n_params, rmse_log=point.rmse_log, r2_log=point.r2_log,
                       bootstrap=boot.info(confidence),
                       curve=Curve(np.array([]), np.array([]), np.array([]), np.array([])),
                       note="; ".join(notes) or None, point=point, samples=samples[:, :5])
    g0 = 8
    m = cgrid.size

    def curve(j: int) -> Curve:
        sl = slice(g0 + j * m, g0 + (j + 1) * m)
        return Curve(cgrid, point_nat[sl], lo_nat[sl], hi_nat[sl])

    b0 = g0 + 3 * m
    optimal = [{"budget": float(c), "N": est(b0 + i), "S": est(b0 + at.size + i), "loss": est(b0 + 2 * at.size + i)}
               for i, c in enumerate(at)]
    return JointArm(fit=result, flops_per_param_step=k,
                    exponents={"a": est(5), "b": est(6), "gamma_implied": est(7)}, optimal=optimal,
                    curves={"N_opt": curve(0), "S_opt": curve(1), "loss_opt": curve(2)},
                    n_budgets=int(budgets.size), n_cells=int(loss.size))


# ---------------------------------------------------------------- IsoFLOP parabolas


class Parabola(NamedTuple):
    """loss = c2*u^2 + c1*u + c0 with u = ln N, and its vertex."""

    c2: float
    c1: float
    c0: float
    n_opt: float
    loss_opt: float
    bracketed: bool  # vertex inside the sampled range of N


def isoflop_parabola(n: np.ndarray, loss: np.ndarray, what: str = "IsoFLOP") -> Parabola:
    """Quadratic fit of loss vs ln N on one budget line and its minimum."""
    u = np.log(np.asarray(n, float))
    loss = np.asarray(loss, float)
    distinct = np.unique(u).size
    if distinct < 3:
        raise FitError(f"{what}: a parabola needs at least 3 distinct model sizes, got {distinct}")
    c2, c1, c0 = np.polyfit(u, loss, 2)
    if not c2 > 0:
        raise FitError(f"{what}: the parabola opens downward (curvature {c2:.3g}): no minimum on this budget")
    u_opt = -c1 / (2 * c2)
    return Parabola(float(c2), float(c1), float(c0), float(math.exp(u_opt)), float(c0 - c1 * c1 / (4 * c2)),
                    bool(u.min() <= u_opt <= u.max()))


@dataclass(frozen=True)
class IsoflopArm:
    """IsoFLOP analysis of one arm: per-budget parabolas and the power law N*(C) = G*C^a."""

    budgets: list[dict[str, Any]]
    exponents: dict[str, Estimate]  # a, b_implied (= 1 - a, since S* = C/(k*N*))
    G: Estimate
    n_points: int
    r2_log: float | None
    bootstrap: dict[str, Any]
    curves: dict[str, Curve]  # N_opt and S_opt vs C
    flops_per_param_step: float
    n_cells: int
    status: str = "ok"
    samples_a: np.ndarray | None = field(default=None, metadata={"json": False})  # bootstrap samples of a


def _isoflop_minima(n: np.ndarray, loss: np.ndarray, budget: np.ndarray,
                    budgets: np.ndarray) -> tuple[list[Parabola | str], np.ndarray, np.ndarray]:
    """Per budget a Parabola or the reason it failed; then (C, N*) of the bracketed minima."""
    out: list[Parabola | str] = []
    cs, ns = [], []
    for c in budgets:
        sel = budget == c
        try:
            p = isoflop_parabola(n[sel], loss[sel], what=f"budget {c:.3g}")
        except FitError as err:
            out.append(str(err))
            continue
        out.append(p)
        if p.bracketed:
            cs.append(c)
            ns.append(p.n_opt)
    return out, np.array(cs), np.array(ns)


def fit_isoflop(cells: pd.DataFrame, *, n_resamples: int = DEFAULT_RESAMPLES, seed: int = 0,
                confidence: float = DEFAULT_CONFIDENCE, what: str = "IsoFLOP") -> IsoflopArm:
    """Per budget the vertex of a parabola of loss vs ln N; then N*(C) = G*C^a by least squares in log space."""
    budget = cells["budget"].to_numpy(float)
    keep = np.isfinite(budget)
    n = cells["params"].to_numpy(float)[keep]
    loss = cells["test_mse"].to_numpy(float)[keep]
    flops = cells["flops"].to_numpy(float)[keep]
    steps = cells["steps"].to_numpy(float)[keep]
    budget = budget[keep]
    budgets = np.unique(budget)
    if budgets.size < 2:
        raise FitError(f"{what}: needs at least 2 budgets (IsoFLOP lines) to fit N*(C), got {budgets.size}"
                       + (f" ({budgets[0]:.3g} FLOPs)" if budgets.size else "")
                       + (f"; {int((~keep).sum())} cells have no budget" if (~keep).any() else ""))
    _check_not_constant(loss, what)
    k = float(np.median(flops / (n * steps)))
    parabolas, cs, ns = _isoflop_minima(n, loss, budget, budgets)
    if cs.size < 2:
        reasons = [f"{c:.3g}: {p if isinstance(p, str) else 'minimum outside the sampled sizes'}"
                   for c, p in zip(budgets, parabolas, strict=True) if isinstance(p, str) or not p.bracketed]
        raise FitError(f"{what}: needs the minimum bracketed on at least 2 budgets, got {cs.size} of "
                       f"{budgets.size} ({'; '.join(reasons)})")
    a, log_g = np.polyfit(np.log(cs), np.log(ns), 1)
    resid = log_g + a * np.log(cs) - np.log(ns)
    ss_tot = float(((np.log(ns) - np.log(ns).mean()) ** 2).sum())
    r2 = 1.0 - float((resid ** 2).sum()) / ss_tot if cs.size > 2 and ss_tot > 0 else None
    cgrid = log_grid(budgets.min(), budgets.max())

    def statistic(idx: np.ndarray) -> np.ndarray:
        pars, c_ok, n_ok = _isoflop_minima(n[idx], loss[idx], budget[idx], budgets)
        if c_ok.size < 2:
            raise FitError("resample: fewer than 2 bracketed minima")
        a_r, lg_r = np.polyfit(np.log(c_ok), np.log(n_ok), 1)
        per_budget = [math.log(p.n_opt) if isinstance(p, Parabola) and p.bracketed else math.nan for p in pars]
        return np.concatenate([[a_r, lg_r], lg_r + a_r * np.log(cgrid), per_budget])

    boot = bootstrap(statistic, loss.size, n_resamples=n_resamples, seed=seed, strata=budget,
                     stratified_by="budget")
    width = 2 + cgrid.size + budgets.size
    samples = boot.samples if boot.samples.size else np.empty((0, width))
    lo, hi = percentile_interval(samples, confidence) if samples.shape[0] else (np.full(width, np.nan),) * 2
    n_curve = Curve(cgrid, np.exp(log_g + a * np.log(cgrid)), np.exp(lo[2:2 + cgrid.size]),
                    np.exp(hi[2:2 + cgrid.size]))
    s_curve = Curve(cgrid, cgrid / (k * n_curve.value), cgrid / (k * n_curve.hi), cgrid / (k * n_curve.lo))
    rows = []
    for i, (c, p) in enumerate(zip(budgets, parabolas, strict=True)):
        sel = budget == c
        row: dict[str, Any] = {"budget": float(c), "n_cells": int(sel.sum()),
                               "sizes": sorted(set(n[sel].astype(int).tolist()))}
        if isinstance(p, str):
            row.update(status="skipped", reason=p)
        else:
            j = 2 + cgrid.size + i
            n_est = Estimate.of(p.n_opt, math.exp(lo[j]), math.exp(hi[j]))
            row.update(status="ok" if p.bracketed else "skipped",
                       reason=None if p.bracketed else "minimum outside the sampled sizes (not used in the fit)",
                       parabola={"c2": p.c2, "c1": p.c1, "c0": p.c0, "x": "ln N"}, N_opt=n_est,
                       S_opt=Estimate.of(c / (k * p.n_opt), c / (k * n_est.hi) if n_est.hi else math.nan,
                                         c / (k * n_est.lo) if n_est.lo else math.nan),
                       loss_opt=p.loss_opt, bracketed=p.bracketed)
        rows.append(row)
    a_est = Estimate.of(a, lo[0], hi[0])
    return IsoflopArm(budgets=rows,
                      exponents={"a": a_est, "b_implied": Estimate.of(1 - a, 1 - hi[0], 1 - lo[0])},
                      G=Estimate.of(math.exp(log_g), math.exp(lo[1]), math.exp(hi[1])), n_points=int(cs.size),
                      r2_log=r2, bootstrap=boot.info(confidence), curves={"N_opt": n_curve, "S_opt": s_curve},
                      flops_per_param_step=k, n_cells=int(loss.size), samples_a=samples[:, 0])


# ---------------------------------------------------------------- data efficiency


@dataclass(frozen=True)
class DataEfficiencyArm:
    """Test loss vs training-set size at fixed model and steps (fixed compute) for one arm."""

    fit: LawResult
    size: str
    steps: int
    budget: float | None
    x: str  # the column used as D
    points: dict[str, list[float]]
    n_cells: int
    status: str = "ok"


def data_efficiency_cells(cells: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """The arm's (size, steps) group with the most distinct training-set sizes, and the column used as D."""
    x_col = "num_train_trajectories"
    if cells[x_col].isna().all():
        x_col = "data_fraction"  # older run records without trajectory counts: fractions of one training set
    best, best_count = None, 0
    for _, group in cells.groupby(["size", "steps"], sort=True):
        count = group[x_col].dropna().nunique()
        if count > best_count:
            best, best_count = group, count
    if best is None or best_count < 2:
        raise FitError(f"data efficiency: no (size, steps) group of this arm has 2 or more training-set sizes "
                       f"(most: {best_count})")
    return best.reset_index(drop=True), x_col


def fit_data_efficiency(cells: pd.DataFrame, *, n_resamples: int = DEFAULT_RESAMPLES, seed: int = 0,
                        confidence: float = DEFAULT_CONFIDENCE, what: str = "data efficiency",
                        grid: np.ndarray | None = None) -> DataEfficiencyArm:
    """Fit L(D) = E + A*D^-delta; with fewer than 4 distinct D, the pure power law L = A*D^-delta (noted)."""
    group, x_col = data_efficiency_cells(cells)
    d = group[x_col].to_numpy(float)
    loss = group["test_mse"].to_numpy(float)
    _check_not_constant(loss, what)
    distinct = np.unique(d[np.isfinite(d)]).size
    law, note = DATA, None
    if distinct < DATA.n_params + 1:
        law = DATA_POWER
        note = (f"{distinct} distinct training-set sizes are too few for {DATA.formula} (needs "
                f"{DATA.n_params + 1}); fitted {DATA_POWER.formula} instead")
    grid = log_grid(np.nanmin(d), np.nanmax(d)) if grid is None else grid
    # with replicates (seeds) at every size, resample within each size so every resample keeps the
    # design; with one run per size that would return the same data every time, so resample freely
    _, counts = np.unique(d, return_counts=True)
    replicated = bool(counts.min() >= 2)
    result = fit_with_bootstrap(law, [d], loss, grid=grid, n_resamples=n_resamples, seed=seed,
                                confidence=confidence, what=f"{what} ({distinct} training-set sizes)", note=note,
                                strata=d if replicated else None, n_rows=d.size,
                                stratified_by=x_col if replicated else None)
    budgets = group["budget"].dropna().unique()
    return DataEfficiencyArm(fit=result, size=str(group["size"].iloc[0]), steps=int(group["steps"].iloc[0]),
                             budget=float(budgets[0]) if budgets.size else None, x=x_col,
                             points={"D": d.tolist(), "test_mse": loss.tolist()}, n_cells=int(loss.size))


# ---------------------------------------------------------------- comparisons between arms


def _curve_samples(law: Law, result: LawResult, x: np.ndarray, m: int) -> np.ndarray:
    """The law of each of the first m bootstrap parameter samples, evaluated at x: shape (m, len(x))."""
    return np.array([law(_params_from_vector(law, v), x) for v in result.samples[:m]])


def paired_ratio(law_a: Law, result_a: LawResult, law_b: Law, result_b: LawResult, x: float,
                 confidence: float) -> Estimate:
    """L_a(x) / L_b(x) with an interval from pairing the arms' (independent) bootstrap resamples."""
    value = float(law_a(result_a.point.params, x) / law_b(result_b.point.params, x))
    m = min(result_a.samples.shape[0], result_b.samples.shape[0])
    if m < 2:
        return Estimate.of(value)
    xs = np.array([x], dtype=float)
    ratio = _curve_samples(law_a, result_a, xs, m) / _curve_samples(law_b, result_b, xs, m)
    lo, hi = percentile_interval(ratio, confidence)
    return Estimate.of(value, lo[0], hi[0])


def paired_degradation_ratio(law_a: Law, result_a: LawResult, law_b: Law, result_b: LawResult, small: float,
                             large: float, confidence: float) -> Estimate:
    """[L_a(small)/L_a(large)] / [L_b(small)/L_b(large)]: how much more arm a suffers from less data than b."""
    xs = np.array([small, large], dtype=float)

    def degradation(law: Law, params: Any) -> float:
        lo_d, hi_d = law(params, xs)
        return float(lo_d / hi_d)

    value = degradation(law_a, result_a.point.params) / degradation(law_b, result_b.point.params)
    m = min(result_a.samples.shape[0], result_b.samples.shape[0])
    if m < 2:
        return Estimate.of(value)
    ca, cb = _curve_samples(law_a, result_a, xs, m), _curve_samples(law_b, result_b, xs, m)
    lo, hi = percentile_interval(((ca[:, 0] / ca[:, 1]) / (cb[:, 0] / cb[:, 1]))[:, None], confidence)
    return Estimate.of(value, lo[0], hi[0])


def paired_difference(value_a: float, samples_a: np.ndarray, value_b: float, samples_b: np.ndarray,
                      confidence: float) -> Estimate:
    """a - b with an interval from pairing independent bootstrap samples."""
    m = min(samples_a.size, samples_b.size)
    if m < 2:
        return Estimate.of(value_a - value_b)
    lo, hi = percentile_interval((samples_a[:m] - samples_b[:m])[:, None], confidence)
    return Estimate.of(value_a - value_b, lo[0], hi[0])


LAWS_BY_NAME = {("frontier", FRONTIER.name): FRONTIER, ("frontier", FRONTIER_POWER.name): FRONTIER_POWER,
                ("data", DATA.name): DATA, ("data", DATA_POWER.name): DATA_POWER}


def compare_frontiers(arms: dict[str, FrontierArm | Skipped], budgets: np.ndarray,
                      confidence: float) -> dict[str, Any]:
    """Per other arm vs GATr: loss ratio at each shared budget (primary laws) and gamma difference (power laws)."""
    out: dict[str, Any] = {}
    ref = arms.get("gatr")
    for arm, res in arms.items():
        if arm == "gatr":
            continue
        key = f"{arm}/gatr"
        if not isinstance(ref, FrontierArm) or not isinstance(res, FrontierArm):
            missing = [a for a, r in (("gatr", ref), (arm, res)) if not isinstance(r, FrontierArm)]
            out[key] = Skipped(f"no frontier fit for {', '.join(missing)}")
            continue
        lo = max(min(ref.points["flops"]), min(res.points["flops"]))
        hi = min(max(ref.points["flops"]), max(res.points["flops"]))
        shared = [float(b) for b in budgets if lo * 0.9 <= b <= hi * 1.1]  # budget lines sit a step below budget
        ra, rb = res.variants[res.primary], ref.variants[ref.primary]
        ratios = [{"budget": b, "ratio": paired_ratio(LAWS_BY_NAME["frontier", res.primary], ra,
                                                      LAWS_BY_NAME["frontier", ref.primary], rb, b, confidence)}
                  for b in shared]
        entry: dict[str, Any] = {"status": "ok", "ratio_law": f"{res.primary}/{ref.primary}", "at_budget": ratios}
        pa, pb = res.variants.get("power_law"), ref.variants.get("power_law")
        if isinstance(pa, LawResult) and isinstance(pb, LawResult):
            entry["gamma_difference"] = paired_difference(pa.point.params.gamma, pa.samples[:, -1],
                                                          pb.point.params.gamma, pb.samples[:, -1], confidence)
        else:
            entry["gamma_difference"] = None
        if not shared:
            entry["note"] = "the arms' frontiers share no budget"
        out[key] = entry
    return out


def compare_exponent(arms: dict[str, Any], get: Callable[[Any], tuple[float, np.ndarray]],
                     confidence: float, name: str) -> dict[str, Any]:
    """Per other arm: (its exponent) - (GATr's), paired bootstrap interval."""
    out: dict[str, Any] = {}
    ref = arms.get("gatr")
    for arm, res in arms.items():
        if arm == "gatr":
            continue
        key = f"{arm}-gatr"
        if isinstance(ref, Skipped) or ref is None or isinstance(res, Skipped):
            out[key] = Skipped(f"needs {name} fits for both gatr and {arm}")
            continue
        va, sa = get(res)
        vb, sb = get(ref)
        out[key] = {"status": "ok", f"{name}_difference": paired_difference(va, sa, vb, sb, confidence)}
    return out


DATA_PAIRS = (("transformer", "gatr"), ("transformer+aug", "gatr"), ("transformer", "transformer+aug"))


def compare_data_efficiency(arms: dict[str, DataEfficiencyArm | Skipped], confidence: float) -> dict[str, Any]:
    """Per pair of arms: loss ratios at the smallest and largest shared training-set size, and the
    degradation ratio (how much more the first arm's loss grows from the largest to the smallest size).

    The degradation ratio separates data efficiency from an overall offset: an arm that is worse by
    the same factor at every size is not less data-efficient.
    """
    out: dict[str, Any] = {}
    for a, b in DATA_PAIRS:
        key = f"{a}/{b}"
        ra, rb = arms.get(a), arms.get(b)
        if not isinstance(ra, DataEfficiencyArm) or not isinstance(rb, DataEfficiencyArm):
            missing = [x for x, r in ((a, ra), (b, rb)) if not isinstance(r, DataEfficiencyArm)]
            out[key] = Skipped(f"no data-efficiency fit for {', '.join(missing)}")
            continue
        if ra.x != rb.x:
            out[key] = Skipped(f"{a} is measured in {ra.x} but {b} in {rb.x}")
            continue
        small = max(min(ra.points["D"]), min(rb.points["D"]))
        large = min(max(ra.points["D"]), max(rb.points["D"]))
        if not small < large:
            out[key] = Skipped("the arms share no range of training-set sizes")
            continue
        la, lb = LAWS_BY_NAME["data", ra.fit.law], LAWS_BY_NAME["data", rb.fit.law]
        out[key] = {"status": "ok", "D_small": float(small), "D_large": float(large),
                    "ratio_at_small": paired_ratio(la, ra.fit, lb, rb.fit, small, confidence),
                    "ratio_at_large": paired_ratio(la, ra.fit, lb, rb.fit, large, confidence),
                    "degradation_ratio": paired_degradation_ratio(la, ra.fit, lb, rb.fit, small, large, confidence)}
    return out


# ---------------------------------------------------------------- everything, per arm


FITTERS: dict[str, Callable[..., Any]] = {"frontier": fit_frontier, "joint": fit_joint, "isoflop": fit_isoflop,
                                          "data_efficiency": fit_data_efficiency}
WHAT = {"frontier": "frontier", "joint": "joint fit", "isoflop": "IsoFLOP", "data_efficiency": "data efficiency"}


def _run(task: tuple[str, str, pd.DataFrame, dict[str, Any]]) -> Any:
    """One (fit, arm): its result, or Skipped with the FitError's message."""
    kind, arm, cells, opts = task
    try:
        return FITTERS[kind](cells, what=f"{WHAT[kind]} of {arm}", **opts)
    except FitError as err:
        return Skipped(str(err))


def fit_all(summary: pd.DataFrame, *, n_resamples: int = DEFAULT_RESAMPLES, seed: int = 0,
            confidence: float = DEFAULT_CONFIDENCE, jobs: int = 1) -> dict[str, dict[str, Any]]:
    """Every fit of every arm, JSON-ready: {"frontier": ..., "joint": ..., "isoflop": ..., "data_efficiency": ...}.

    A fit that cannot be done is recorded as {"status": "skipped", "reason": ...}; only a summary
    without the needed columns raises FitError. `jobs` > 1 runs the (fit, arm) pairs in that many
    processes; every pair has its own seed, so the numbers do not depend on `jobs`.
    """
    if not 0 < confidence < 1:
        raise FitError(f"confidence must be in (0, 1), got {confidence}")
    if n_resamples < 0:
        raise FitError(f"the number of bootstrap resamples must be >= 0, got {n_resamples}")
    df, n_dropped = prepare_summary(summary)
    arms = arms_of(df)
    header = {"n_cells": int(len(df)), "n_dropped": n_dropped, "arms_present": arms,
              "bootstrap": {"resamples": n_resamples, "seed": seed, "confidence": confidence,
                            "method": "cells resampled with replacement (within budget lines where noted); "
                                      "refits warm-started from the point fit; percentile intervals"}}
    if n_dropped:
        header["dropped_reason"] = "missing or non-positive params/steps/flops/test_mse (e.g. a failed run)"
    tasks = []
    for kind in FITTERS:
        for arm in arms:
            cells = df[df["arm"] == arm].reset_index(drop=True) if kind == "data_efficiency" else scaling_cells(df, arm)
            opts = {"n_resamples": n_resamples, "confidence": confidence, "seed": arm_seed(seed, kind, arm)}
            tasks.append((kind, arm, cells, opts))
    if jobs > 1 and len(tasks) > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=min(jobs, len(tasks))) as pool:
            results = list(pool.map(_run, tasks))
    else:
        results = [_run(t) for t in tasks]
    by_kind: dict[str, dict[str, Any]] = {kind: {} for kind in FITTERS}
    for (kind, arm, _, _), res in zip(tasks, results, strict=True):
        by_kind[kind][arm] = res
    frontier, joint, isoflop, data = (by_kind[k] for k in FITTERS)

    budgets = np.unique(df["budget"].to_numpy(float)[np.isfinite(df["budget"].to_numpy(float))])
    single = None if "gatr" in arms and len(arms) > 1 else (
        f"comparisons need gatr and another arm; the summary has only: {', '.join(arms) or 'nothing'}")

    def compared(make: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        return {"status": "skipped", "reason": single} if single else make()

    out = {
        "frontier": {"kind": "frontier", "laws": [FRONTIER.formula, FRONTIER_POWER.formula], **header,
                     "arms": frontier, "comparisons": compared(lambda: compare_frontiers(frontier, budgets,
                                                                                         confidence))},
        "joint": {"kind": "joint", "law": JOINT.formula,
                  "compute": "C = k*N*S, k = median FLOPs/(params*steps) of the arm", **header, "arms": joint,
                  "comparisons": compared(lambda: compare_exponent(
                      joint, lambda r: (r.exponents["a"].value, _joint_a(r)), confidence, "a"))},
        "isoflop": {"kind": "isoflop", "law": "per budget loss = c2*(ln N)^2 + c1*ln N + c0; N*(C) = G*C^a",
                    **header, "arms": isoflop,
                    "comparisons": compared(lambda: compare_exponent(
                        isoflop, lambda r: (r.exponents["a"].value, r.samples_a), confidence, "a"))},
        "data_efficiency": {"kind": "data_efficiency", "laws": [DATA.formula, DATA_POWER.formula],
                            "fallback": "the pure power law when an arm has fewer than 4 distinct training-set sizes",
                            **header, "arms": data,
                            "comparisons": compared(lambda: compare_data_efficiency(data, confidence))},
    }
    return {k: to_jsonable(v) for k, v in out.items()}


def _joint_a(res: JointArm) -> np.ndarray:
    s = res.fit.samples
    return s[:, 4] / (s[:, 2] + s[:, 4]) if s is not None and s.size else np.empty(0)
