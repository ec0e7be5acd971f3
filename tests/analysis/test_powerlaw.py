"""The fitting machinery: laws, the Huber objective, batched refits, the bootstrap's bookkeeping."""

from __future__ import annotations

import numpy as np
import pytest

from eqscale.analysis.bootstrap import Segments, bootstrap, resample_index_sets
from eqscale.analysis.errors import FitError
from eqscale.analysis.powerlaw import (
    FRONTIER,
    FRONTIER_POWER,
    HUBER_DELTA,
    JOINT,
    FrontierParams,
    JointParams,
    _minimize,
    batched_huber_objective,
    fit_law,
    huber_objective,
    refit_batch,
)
from eqscale.analysis.synthetic import synthetic_summary


def test_law_params_roundtrip_and_value():
    params = JointParams(E=1e-3, A=2.0, alpha=0.3, B=0.6, beta=0.45)
    theta = JOINT.theta(params)
    assert np.allclose(tuple(JOINT.params(theta)), tuple(params))
    n, s = np.array([1e4, 1e5]), np.array([100.0, 1000.0])
    assert np.allclose(JOINT(params, n, s), 1e-3 + 2.0 * n ** -0.3 + 0.6 * s ** -0.45)
    pure = FrontierParams(E=0.0, A=3.0, gamma=0.2)
    assert FRONTIER_POWER.param_names == ("A", "gamma")
    assert np.allclose(FRONTIER_POWER.params(FRONTIER_POWER.theta(pure)), pure)


@pytest.mark.parametrize("law", [JOINT, FRONTIER, FRONTIER_POWER])
def test_huber_gradient_matches_finite_differences(law):
    rng = np.random.default_rng(0)
    logx = rng.uniform(5, 12, size=(len(law.inputs), 30))
    # residuals of both signs and sizes, so both Huber branches are exercised
    logy = rng.normal(-3, 0.5, size=30)
    theta = rng.normal(0, 0.5, size=law.n_params)
    for t in range(len(law.inputs)):
        theta[int(law.floor) + 2 * t + 1] = 0.4
    value, grad = huber_objective(theta, law, logx, logy, delta=0.05)
    eps = 1e-6
    numeric = np.array([(huber_objective(theta + eps * e, law, logx, logy, 0.05)[0]
                         - huber_objective(theta - eps * e, law, logx, logy, 0.05)[0]) / (2 * eps)
                        for e in np.eye(law.n_params)])
    assert np.allclose(grad, numeric, rtol=1e-5, atol=1e-6)
    # the batched objective is the same function
    bv, bg = batched_huber_objective(theta[None], law, logx[None], logy[None], np.ones((1, 30)), delta=0.05)
    assert np.isclose(bv[0], value) and np.allclose(bg[0], grad)


def test_batched_refit_reaches_scipy_optimum():
    cells = synthetic_summary(rng_seed=1)
    cells = cells[(cells["arm"] == "transformer") & cells["in_scaling"]]
    n, s, loss = (cells[c].to_numpy(float) for c in ("params", "steps", "test_mse"))
    point = fit_law(JOINT, [n, s], loss)
    sets = resample_index_sets(loss.size, n_resamples=12, seed=4)
    thetas = refit_batch(JOINT, [([n[i], s[i]], loss[i]) for i in sets], point.theta[None])
    for idx, theta in zip(sets, thetas, strict=True):
        logx, logy = np.log(np.vstack([n[idx], s[idx]])), np.log(loss[idx])
        _, scipy_value = _minimize(JOINT, point.theta, logx, logy, HUBER_DELTA)
        batched_value = huber_objective(theta, JOINT, logx, logy)[0]
        assert batched_value <= scipy_value + 1e-6 * max(1.0, scipy_value)


def test_fewer_points_than_parameters_says_how_many():
    n = np.array([1e4, 1e5, 1e6, 1e4])
    s = np.array([100.0, 100.0, 1000.0, 1000.0])
    with pytest.raises(FitError, match=r"has 5 parameters and needs at least 6 distinct points, but 4 were given"):
        fit_law(JOINT, [n, s], np.array([0.1, 0.05, 0.01, 0.07]))


def test_non_positive_rows_are_dropped_and_counted():
    with pytest.warns(UserWarning, match="dropped 1 of 6 rows"):
        res = fit_law(FRONTIER_POWER, [np.array([1.0, 2, 4, 8, 16, 32])],
                      np.array([1.0, 0.8, np.nan, 0.55, 0.45, 0.37]))
    assert res.n_dropped == 1 and res.n_rows == 5


def test_bootstrap_is_deterministic_numbers_resamples_and_counts_failures():
    seen = []

    def statistic(r: int, idx: np.ndarray) -> np.ndarray:
        seen.append(r)
        if np.unique(idx).size < 3:
            raise FitError("too few")
        return np.array([idx.mean()])

    a = bootstrap(statistic, 4, n_resamples=200, seed=5)
    assert seen == list(range(200))  # r numbers the resamples, so other resamples can be paired with them
    b = bootstrap(statistic, 4, n_resamples=200, seed=5)
    assert np.array_equal(a.samples, b.samples) and a.n_failed == b.n_failed
    assert 0 < a.n_failed < 200 and a.samples.shape[0] == 200 - a.n_failed
    assert a.info(0.9).ok == 200 - a.n_failed and a.info(0.9).ok_fraction == pytest.approx(1 - a.n_failed / 200)
    strata = np.array([0, 0, 1, 1, 1])
    for idx in resample_index_sets(5, n_resamples=20, seed=1, strata=strata):
        assert np.isin(idx[:2], [0, 1]).all() and np.isin(idx[2:], [2, 3, 4]).all()


def test_segments_pack_and_unpack_by_name():
    seg = Segments(a=1, curve=3, tail=2)
    row = seg.pack(a=0.5, curve=[1, 2, 3], tail=np.array([7.0, 8.0]))
    assert seg.width == 6 and row.tolist() == [0.5, 1, 2, 3, 7, 8]
    cols = seg.unpack(np.vstack([row, 2 * row]))
    assert cols["curve"].shape == (2, 3) and cols["tail"][1].tolist() == [14.0, 16.0]
    with pytest.raises(ValueError, match="do not match"):
        seg.pack(a=1, curve=[1, 2, 3])
