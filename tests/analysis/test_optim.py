"""The batched L-BFGS: many problems at once, bounds respected, same optimum as scipy."""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize

from eqscale.analysis.optim import _openblas_thread_controls, batched_lbfgs, single_threaded_blas


def _rosenbrock(x: np.ndarray, rows: np.ndarray, shift: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a = shift[rows]
    f = (a - x[:, 0]) ** 2 + 100 * (x[:, 1] - x[:, 0] ** 2) ** 2
    g = np.stack([-2 * (a - x[:, 0]) - 400 * x[:, 0] * (x[:, 1] - x[:, 0] ** 2), 200 * (x[:, 1] - x[:, 0] ** 2)],
                 axis=1)
    return f, g


def test_batched_lbfgs_solves_independent_problems():
    shift = np.array([1.0, 0.5, -0.7, 2.0])  # minimum of problem i at (a_i, a_i^2)
    x0 = np.tile([-1.2, 1.0], (4, 1))
    res = batched_lbfgs(lambda x, r: _rosenbrock(x, r, shift), x0, np.array([-np.inf] * 2), np.array([np.inf] * 2))
    assert res.converged.all()
    assert np.allclose(res.x, np.stack([shift, shift ** 2], axis=1), atol=1e-4)


def test_batched_lbfgs_respects_bounds_like_scipy():
    shift = np.array([1.0, 2.0])
    lower, upper = np.array([-2.0, -1.0]), np.array([1.5, 1.5])  # problem 1's optimum (2, 4) is outside
    res = batched_lbfgs(lambda x, r: _rosenbrock(x, r, shift), np.tile([0.0, 0.0], (2, 1)), lower, upper)
    assert np.all(res.x >= lower) and np.all(res.x <= upper)
    for i in range(2):
        ref = minimize(lambda x: _rosenbrock(x[None], np.array([i]), shift)[0][0], np.zeros(2),
                       jac=lambda x: _rosenbrock(x[None], np.array([i]), shift)[1][0], method="L-BFGS-B",
                       bounds=list(zip(lower, upper, strict=True)))
        assert res.fun[i] <= ref.fun + 1e-8


def test_single_threaded_blas_restores_thread_counts():
    controls = _openblas_thread_controls()
    before = [get() for _, get in controls]
    with single_threaded_blas():
        assert all(get() == 1 for _, get in controls)
    assert [get() for _, get in controls] == before
