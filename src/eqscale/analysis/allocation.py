"""Compute-optimal allocation of a joint law along a family's real IsoFLOP curves.

For a budget C the family can train N parameters for S = C / F(N) steps (F: FLOPs per step, from
compute.py), so the compute-optimal size minimises L(N, C / F(N)) over N. This is found on a fine
grid of ln N (vectorised over many parameter sets and budgets at once, for the bootstrap), refined
by a parabola through the best grid point and its neighbours. With F = k*N it reproduces the
textbook N* ~ C^(beta/(alpha+beta)); with attention F grows slower than N and the exponents move.

The exponents a, b (N* ~ C^a, S* ~ C^b) and the frontier exponent gamma (L* - E ~ C^-gamma) are the
least-squares slopes of ln N*, ln S* and ln(L* - E) against ln C over the studied range of budgets.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from eqscale.analysis.compute import ComputeModel

GRID_POINTS = 241  # ln N grid points over the search range
EXTEND = 10.0  # the search range reaches this factor beyond the smallest and largest sampled sizes
CHUNK = 128  # parameter sets per vectorised block


@dataclass(frozen=True)
class Allocation:
    """N*(C), S*(C), L*(C) for each parameter set (rows) and budget (columns); natural logs."""

    log_n: np.ndarray
    log_s: np.ndarray
    log_loss: np.ndarray
    at_edge: np.ndarray  # the minimum sits at the end of the search range (no interior optimum)


def optimal_allocation(params: np.ndarray, model: ComputeModel, compute: np.ndarray,
                       n_range: tuple[float, float] | None = None) -> Allocation:
    """Minimise L(N, C/F(N)) over N for every parameter set (rows of (E, A, alpha, B, beta)) and budget C."""
    params = np.atleast_2d(np.asarray(params, dtype=float))
    log_c = np.log(np.asarray(compute, dtype=float))
    lo, hi = n_range if n_range is not None else (model.params.min(), model.params.max())
    u = np.linspace(np.log(lo / EXTEND), np.log(hi * EXTEND), GRID_POINTS)
    log_f = model.log_F(u)
    r, m = params.shape[0], log_c.size
    out = {k: np.full((r, m), np.nan) for k in ("log_n", "log_s", "log_loss")}
    edge = np.ones((r, m), bool)
    for start in range(0, r, CHUNK):
        p = params[start:start + CHUNK]
        e, a, alpha, b, beta = (p[:, i, None, None] for i in range(5))
        log_s = log_c[None, :, None] - log_f[None, None, :]  # (1, m, G)
        with np.errstate(over="ignore", invalid="ignore"):
            loss = e + a * np.exp(-alpha * u[None, None, :]) + b * np.exp(-beta * log_s)  # (k, m, G)
        loss = np.where(np.isfinite(loss), loss, np.inf)
        j = np.argmin(loss, axis=2)
        interior = (j > 0) & (j < GRID_POINTS - 1)
        jc = np.clip(j, 1, GRID_POINTS - 2)
        y0, y1, y2 = (np.take_along_axis(loss, (jc + d)[..., None], axis=2)[..., 0] for d in (-1, 0, 1))
        step = u[1] - u[0]
        curvature = y0 - 2 * y1 + y2
        with np.errstate(invalid="ignore", divide="ignore"):
            shift = np.where(interior & (curvature > 0), 0.5 * (y0 - y2) / curvature, 0.0)
        u_opt = np.where(interior, u[jc] + np.clip(shift, -1, 1) * step, u[j])
        log_s_opt = log_c[None, :] - model.log_F(u_opt)
        with np.errstate(over="ignore", invalid="ignore"):
            l_opt = (e[..., 0] + a[..., 0] * np.exp(-alpha[..., 0] * u_opt)
                     + b[..., 0] * np.exp(-beta[..., 0] * log_s_opt))
        valid = np.isfinite(l_opt) & (l_opt > 0)
        sl = slice(start, start + p.shape[0])
        out["log_n"][sl] = np.where(valid, u_opt, np.nan)
        out["log_s"][sl] = np.where(valid, log_s_opt, np.nan)
        with np.errstate(invalid="ignore", divide="ignore"):
            out["log_loss"][sl] = np.where(valid, np.log(l_opt), np.nan)
        edge[sl] = ~interior | ~valid
    return Allocation(out["log_n"], out["log_s"], out["log_loss"], edge)


def slopes(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Least-squares slope of each row of y against x (NaN where a row has a NaN)."""
    xc = x - x.mean()
    yc = y - y.mean(axis=-1, keepdims=True)
    return (yc @ xc) / float(xc @ xc)


def exponents(alloc: Allocation, compute: np.ndarray, floor: np.ndarray) -> dict[str, np.ndarray]:
    """a, b and gamma per parameter set: slopes of ln N*, ln S*, -ln(L* - E) against ln C over `compute`."""
    x = np.log(np.asarray(compute, dtype=float))
    with np.errstate(invalid="ignore", divide="ignore"):
        excess = np.log(np.exp(alloc.log_loss) - np.asarray(floor, dtype=float)[:, None])
    return {"a": slopes(x, alloc.log_n), "b": slopes(x, alloc.log_s), "gamma": -slopes(x, excess)}
