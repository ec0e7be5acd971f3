"""Power laws fitted in log space with a Huber loss: the laws, their objective, the point fit and batched refits.

Every law here is a floor E >= 0 (or none) plus one power-law term per input,
L(x) = E + sum_t A_t*x_t^-p_t, fitted as log L = logsumexp(log E, log A_t - p_t*log x_t) with a Huber
loss on the log residuals and L-BFGS-B from a grid of starts, best kept (Hoffmann et al. 2022;
Besiroglu et al. 2024). `refit_batch` refits many data sets at once (optim.batched_lbfgs), which is
what the bootstrap (bootstrap.py) runs on; the point fit never depends on it. Parameters come back as
typed tuples (FrontierParams, JointParams, DataParams). Nothing here knows about a study.
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
from scipy.optimize import minimize

from eqscale.analysis.errors import FitError
from eqscale.analysis.optim import batched_lbfgs, single_threaded_blas

HUBER_DELTA = 1e-3  # on natural-log residuals, as in the Chinchilla replications
CURVE_POINTS = 60


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


# bootstrap refits stop here: the few stragglers past it sit on flat valleys (checked: intervals unchanged)
REFIT_MAX_ITER = 200


def refit_batch(law: Law, datasets: Sequence[tuple[Sequence[np.ndarray], np.ndarray] | None], starts: np.ndarray,
                delta: float = HUBER_DELTA, max_iter: int | None = None) -> np.ndarray:
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
    theta, value = _batched_minimize(law, prepared, starts, delta, REFIT_MAX_ITER if max_iter is None else max_iter)
    n_data = len(rows)
    best = np.argmin(value.reshape(starts.shape[0], n_data), axis=0) * n_data + np.arange(n_data)
    finite = np.isfinite(value[best])
    out[np.array(rows)[finite]] = theta[best][finite]
    return out


def _batched_minimize(law: Law, prepared: Sequence[tuple[np.ndarray, np.ndarray]], starts: np.ndarray,
                      delta: float, max_iter: int = REFIT_MAX_ITER) -> tuple[np.ndarray, np.ndarray]:
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

    res = batched_lbfgs(fun, x0, lower, upper, max_iter=max_iter)
    theta = np.vstack([_shift_theta(law, t, centre, 1.0) for t in res.x])
    ok = np.isfinite(res.fun) & np.all(np.isfinite(theta), axis=1)
    return theta, np.where(ok, res.fun, np.inf)


def param_vector(law: Law, params: Any) -> np.ndarray:
    """The fitted parameters of `params` as a vector (E left out when the law has no floor)."""
    p = np.asarray(tuple(params), dtype=float)
    return p if law.floor else p[1:]


def params_from_vector(law: Law, vector: np.ndarray) -> Any:
    """Inverse of `param_vector`."""
    v = list(vector)
    return law.params_type(*(v if law.floor else [0.0] + v))


def log_grid(lo: float, hi: float, n: int = CURVE_POINTS) -> np.ndarray:
    """n log-spaced points from lo to hi."""
    return np.geomspace(lo, hi, n)
