"""Batched L-BFGS with box bounds: many small independent problems minimised in lock-step in numpy.

The bootstrap refits one law to a thousand resamples. Each problem has 2-5 parameters and a few
hundred points, so scipy's per-iteration Python overhead, not arithmetic, would dominate; stepping
all resamples together turns a thousand optimiser loops into one loop over (resample, point)
arrays. The algorithm is the textbook one (Nocedal & Wright, Alg. 7.4/7.5) with a backtracking
Armijo line search on the projected step; bounds are handled by projection and by dropping the
direction components that push an at-bound variable outwards (adequate here: bounds are rarely
active at the optimum). Problems converge and freeze independently.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

# fun(x of shape (b, p), rows: indices of those b problems) -> (values (b,), gradients (b, p))
BatchedFunction = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class BatchedResult:
    """Solutions, objective values, and which problems met a convergence test."""

    x: np.ndarray
    fun: np.ndarray
    converged: np.ndarray
    iterations: int


def batched_lbfgs(fun: BatchedFunction, x0: np.ndarray, lower: np.ndarray, upper: np.ndarray, *,
                  max_iter: int = 500, memory: int = 10, ftol: float = 1e-11, gtol: float = 1e-9,
                  max_backtracks: int = 40) -> BatchedResult:
    """Minimise B independent problems from x0 (B, p) within [lower, upper] (each (p,), +-inf allowed)."""
    x = np.clip(np.array(x0, dtype=float), lower, upper)
    b, p = x.shape
    everyone = np.arange(b)
    f, g = fun(x, everyone)
    s_hist = np.zeros((b, memory, p))
    y_hist = np.zeros((b, memory, p))
    rho = np.zeros((b, memory))
    # first step: a plain gradient step of length at most 0.1 in parameter space
    gamma = np.minimum(1.0, 0.1 / np.maximum(np.linalg.norm(g, axis=1), 1e-300))
    active = np.isfinite(f) & np.all(np.isfinite(g), axis=1)
    converged = np.zeros(b, dtype=bool)
    it = 0
    for it in range(max_iter):
        idx = np.flatnonzero(active)
        if idx.size == 0:
            break
        xi, gi = x[idx], g[idx]
        d = -_two_loop(gi, s_hist[idx], y_hist[idx], rho[idx], gamma[idx], it, memory)
        d = _feasible_direction(d, xi, lower, upper)
        slope = np.sum(gi * d, axis=1)
        # not a descent direction (curvature pairs gone stale): restart from the scaled gradient
        bad = ~(slope < 0)
        if bad.any():
            rho[idx[bad]] = 0.0
            d[bad] = _feasible_direction(-gi[bad] * gamma[idx[bad], None], xi[bad], lower, upper)
            slope[bad] = np.sum(gi[bad] * d[bad], axis=1)
        stuck = ~(slope < 0)  # the projected gradient is zero: a (bounded) stationary point
        converged[idx[stuck]] = True
        active[idx[stuck]] = False
        keep = ~stuck
        idx, xi, gi, d = idx[keep], xi[keep], gi[keep], d[keep]
        if idx.size == 0:
            continue
        x_new, f_new, g_new, found = _backtrack(fun, idx, xi, f[idx], gi, d, lower, upper, max_backtracks)
        # no acceptable step: the problem is at its optimum to machine precision
        converged[idx[~found]] = True
        active[idx[~found]] = False
        idx, xi, gi, x_new, f_new, g_new = idx[found], xi[found], gi[found], x_new[found], f_new[found], g_new[found]
        s = x_new - xi
        y = g_new - gi
        sy = np.sum(s * y, axis=1)
        yy = np.sum(y * y, axis=1)
        slot = it % memory
        good = sy > 1e-12 * np.maximum(yy, 1e-300)
        s_hist[idx, slot] = np.where(good[:, None], s, 0.0)
        y_hist[idx, slot] = np.where(good[:, None], y, 0.0)
        rho[idx, slot] = np.where(good, 1.0 / np.where(good, sy, 1.0), 0.0)
        gamma[idx] = np.where(good, sy / np.where(good & (yy > 0), yy, 1.0), gamma[idx])
        small_change = (f[idx] - f_new) <= ftol * np.maximum(np.maximum(np.abs(f[idx]), np.abs(f_new)), 1.0)
        small_grad = np.max(np.abs(_projected_gradient(g_new, x_new, lower, upper)), axis=1) <= gtol
        x[idx], f[idx], g[idx] = x_new, f_new, g_new
        done = small_change | small_grad
        converged[idx[done]] = True
        active[idx[done]] = False
    return BatchedResult(x=x, fun=f, converged=converged, iterations=it + 1)


def _two_loop(g: np.ndarray, s_hist: np.ndarray, y_hist: np.ndarray, rho: np.ndarray, gamma: np.ndarray,
              it: int, memory: int) -> np.ndarray:
    """H*g by the L-BFGS two-loop recursion over the stored pairs (pairs with rho = 0 are inert)."""
    q = g.copy()
    order = [(it - 1 - j) % memory for j in range(min(it, memory))]  # newest first
    alphas = []
    for slot in order:
        a = rho[:, slot] * np.sum(s_hist[:, slot] * q, axis=1)
        q -= a[:, None] * y_hist[:, slot]
        alphas.append(a)
    r = gamma[:, None] * q
    for slot, a in zip(reversed(order), reversed(alphas), strict=True):
        beta = rho[:, slot] * np.sum(y_hist[:, slot] * r, axis=1)
        r += s_hist[:, slot] * (a - beta)[:, None]
    return r


def _feasible_direction(d: np.ndarray, x: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    out = d.copy()
    out[(x <= lower) & (out < 0)] = 0.0
    out[(x >= upper) & (out > 0)] = 0.0
    return out


def _projected_gradient(g: np.ndarray, x: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    out = g.copy()
    out[(x <= lower) & (g > 0)] = 0.0
    out[(x >= upper) & (g < 0)] = 0.0
    return out


def _backtrack(fun: BatchedFunction, idx: np.ndarray, x: np.ndarray, f: np.ndarray, g: np.ndarray, d: np.ndarray,
               lower: np.ndarray, upper: np.ndarray,
               max_backtracks: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Armijo backtracking from step 1 on the projected path, all problems at once.

    A rejected step shrinks to the minimum of the quadratic through f(0), the slope and f(step), kept
    within [0.1, 0.5] of the step (Nocedal & Wright 3.5): on the near-L1 Huber objectives here far fewer
    rounds than halving, and every round is one call over all pending problems.
    """
    n = idx.size
    x_new, f_new, g_new = x.copy(), f.copy(), np.zeros_like(g)
    found = np.zeros(n, dtype=bool)
    step = np.ones(n)
    pending = np.arange(n)
    for _ in range(max_backtracks):
        trial = np.clip(x[pending] + step[pending, None] * d[pending], lower, upper)
        ft, gt = fun(trial, idx[pending])
        decrease = np.sum(g[pending] * (trial - x[pending]), axis=1)
        ok = np.isfinite(ft) & np.all(np.isfinite(gt), axis=1) & (ft <= f[pending] + 1e-4 * decrease) & (decrease < 0)
        accepted = pending[ok]
        x_new[accepted], f_new[accepted], g_new[accepted] = trial[ok], ft[ok], gt[ok]
        found[accepted] = True
        rejected = ~ok
        pending, t = pending[rejected], step[pending][rejected]
        if pending.size == 0:
            break
        # decrease is the directional derivative times the step taken (projection aside)
        slope_t = decrease[rejected]
        excess = ft[rejected] - f[pending] - slope_t
        with np.errstate(invalid="ignore", divide="ignore"):
            shrink = np.where(np.isfinite(excess) & (excess > 0), -slope_t / (2 * excess), 0.5)
        step[pending] = t * np.clip(np.nan_to_num(shrink, nan=0.5), 0.1, 0.5)
    return x_new, f_new, g_new, found


@contextlib.contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Run the block with every loaded OpenBLAS on one thread, restoring the previous counts after.

    Why: scipy's L-BFGS-B calls BLAS on vectors of 2-5 numbers, and OpenBLAS waking its thread pool
    for each call made every iteration ~70x slower (5.8 ms instead of 85 us) on a busy 2-core machine.
    This does what threadpoolctl does for OpenBLAS (found via /proc/self/maps, so Linux only), without
    the dependency; anywhere it cannot, it does nothing.
    """
    restore: list[tuple[Callable[[int], None], int]] = []
    for setter, getter in _openblas_thread_controls():
        try:
            before = int(getter())
            setter(1)
            restore.append((setter, before))
        except (OSError, ValueError):  # pragma: no cover - defensive: never fail a fit over threads
            continue
    try:
        yield
    finally:
        for setter, before in restore:
            setter(before)


@functools.lru_cache(maxsize=1)
def _openblas_thread_controls() -> tuple[tuple[Callable[[int], None], Callable[[], int]], ...]:
    """(set, get) thread-count functions of every OpenBLAS loaded in this process (numpy's and scipy's)."""
    if not sys.platform.startswith("linux"):
        return ()
    try:
        with open("/proc/self/maps") as maps:
            paths = {parts[-1] for parts in (line.split() for line in maps)
                     if len(parts) >= 6 and "openblas" in parts[-1].lower() and ".so" in parts[-1]}
    except OSError:
        return ()
    controls = []
    for path in sorted(paths):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix in ("scipy_", ""):
            for suffix in ("64_", ""):
                setter = getattr(lib, f"{prefix}openblas_set_num_threads{suffix}", None)
                getter = getattr(lib, f"{prefix}openblas_get_num_threads{suffix}", None)
                if setter is not None and getter is not None:
                    setter.argtypes, setter.restype, getter.restype = [ctypes.c_int], None, ctypes.c_int
                    controls.append((setter, getter))
    return tuple(controls)
