"""Scaling-law fits: recovery of known laws, the optimiser, degenerate inputs, JSON output."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pandas as pd
import pytest

from eqscale.analysis.bootstrap import bootstrap, resample_index_sets
from eqscale.analysis.data_efficiency import fit_data_efficiency
from eqscale.analysis.errors import FitError
from eqscale.analysis.fit import fit_all
from eqscale.analysis.frontier import fit_frontier, lower_envelope
from eqscale.analysis.isoflop import fit_isoflop, isoflop_parabola
from eqscale.analysis.joint import allocation_exponents, compute_optimal, fit_joint
from eqscale.analysis.powerlaw import (
    CURVE_POINTS,
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
from eqscale.analysis.results import Estimate
from eqscale.analysis.store import fits_to_json
from eqscale.analysis.table import scaling_cells
from eqscale.analysis.synthetic import DEFAULT_TRUTH, synthetic_frontier_summary, synthetic_summary

RESAMPLES = 150


def _inside(est: Estimate, truth: float) -> bool:
    return est.lo is not None and est.hi is not None and est.lo <= truth <= est.hi


# ---------------------------------------------------------------- laws and objective


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
    cells = scaling_cells(synthetic_summary(rng_seed=1), "transformer")
    n, s, loss = (cells[c].to_numpy(float) for c in ("params", "steps", "test_mse"))
    point = fit_law(JOINT, [n, s], loss)
    sets = resample_index_sets(loss.size, n_resamples=12, seed=4)
    thetas = refit_batch(JOINT, [([n[i], s[i]], loss[i]) for i in sets], point.theta[None])
    for idx, theta in zip(sets, thetas, strict=True):
        logx, logy = np.log(np.vstack([n[idx], s[idx]])), np.log(loss[idx])
        _, scipy_value = _minimize(JOINT, point.theta, logx, logy, HUBER_DELTA)
        batched_value = huber_objective(theta, JOINT, logx, logy)[0]
        assert batched_value <= scipy_value + 1e-6 * max(1.0, scipy_value)


# ---------------------------------------------------------------- recovery of known laws


@pytest.mark.parametrize("rng_seed", [1, 2, 3])
def test_joint_fit_recovers_exponents_within_intervals(rng_seed):
    # 95% intervals miss about 1 check in 20 by design (rng_seed=0 misses the transformer's alpha)
    summary = synthetic_summary(rng_seed=rng_seed)
    for arm in ("gatr", "transformer"):
        truth = DEFAULT_TRUTH[arm].law
        res = fit_joint(scaling_cells(summary, arm), n_resamples=RESAMPLES, seed=rng_seed)
        assert res.fit.bootstrap.ok >= 0.95 * RESAMPLES
        for name in ("alpha", "beta"):
            assert _inside(res.fit.params[name], getattr(truth, name)), (arm, name, res.fit.params[name])
        assert _inside(res.exponents["a"], truth.beta / (truth.alpha + truth.beta)), (arm, res.exponents["a"])
        assert res.exponents["a"].value + res.exponents["b"].value == pytest.approx(1.0)
        assert res.flops_per_param_step == pytest.approx(DEFAULT_TRUTH[arm].flops_per_param_step, rel=1e-3)


def test_joint_fit_separates_the_two_arms_allocation():
    # at 1% noise the 25-cell grids are enough to tell a = 0.6 (GATr) from a = 0.4 (transformer) apart from 0.5
    summary = synthetic_summary(rng_seed=2, noise=0.01)
    a = {arm: fit_joint(scaling_cells(summary, arm), n_resamples=RESAMPLES, seed=0).exponents["a"]
         for arm in ("gatr", "transformer")}
    assert a["gatr"].lo > 0.5 > a["transformer"].hi


@pytest.mark.parametrize("rng_seed", [0, 1, 2])
def test_frontier_fit_recovers_gamma_within_interval(rng_seed):
    truth = FrontierParams(E=2e-3, A=40.0, gamma=0.25)
    res = fit_frontier(synthetic_frontier_summary(law=truth, rng_seed=rng_seed), n_resamples=RESAMPLES,
                         seed=rng_seed)
    assert res.primary == "saturating"
    sat = res.variants["saturating"]
    assert _inside(sat.params["gamma"], truth.gamma), sat.params["gamma"]
    assert len(res.points.flops) == 5  # one frontier point per budget
    # the band contains the curve's point estimate everywhere and the true law in the middle of the range
    curve = sat.curve
    assert np.all(curve.lo <= curve.value * (1 + 1e-9)) and np.all(curve.value <= curve.hi * (1 + 1e-9))
    mid = curve.x.size // 2
    assert curve.lo[mid] <= FRONTIER(truth, curve.x[mid]) <= curve.hi[mid]


@pytest.mark.parametrize("rng_seed", [0, 1])
def test_isoflop_recovers_allocation_exponent(rng_seed):
    res = fit_isoflop(synthetic_frontier_summary(a=0.45, rng_seed=rng_seed), n_resamples=RESAMPLES, seed=0)
    assert res.n_points == 5 and all(b.bracketed for b in res.budgets)
    assert _inside(res.exponents["a"], 0.45), res.exponents["a"]
    assert res.exponents["b_implied"].value == pytest.approx(1 - res.exponents["a"].value)


@pytest.mark.parametrize("rng_seed", [0, 2, 3])
def test_data_efficiency_recovers_delta(rng_seed):
    summary = synthetic_summary(scaling_arms=(), seeds=(0, 1, 2), fractions=(1 / 32, 1 / 16, 1 / 8, 1 / 4, 1 / 2, 1.0),
                                full_trajectories=4000, noise=0.02, rng_seed=rng_seed)
    res = fit_data_efficiency(summary[summary["arm"] == "transformer"], n_resamples=RESAMPLES, seed=0)
    assert res.fit.law == "saturating" and res.x == "num_train_trajectories"
    assert res.fit.bootstrap.stratified_by == "num_train_trajectories"  # replicates: resampled within sizes
    assert _inside(res.fit.params["delta"], DEFAULT_TRUTH["transformer"].data_delta), res.fit.params["delta"]


# ---------------------------------------------------------------- pieces


def test_compute_optimal_satisfies_budget_and_minimises_loss():
    params = DEFAULT_TRUTH["gatr"].law
    k, c = 1.5e5, 3e13
    n_opt, s_opt, l_opt = compute_optimal(params, k, c)
    assert k * n_opt * s_opt == pytest.approx(c)
    n_grid = n_opt * np.exp(np.linspace(-1, 1, 201))
    losses = JOINT(params, n_grid, c / (k * n_grid))
    assert l_opt == pytest.approx(losses.min(), rel=1e-6)
    assert n_grid[np.argmin(losses)] == pytest.approx(n_opt, rel=0.02)
    a, b, gamma = allocation_exponents(params)
    assert (a, b) == pytest.approx((0.6, 0.4)) and gamma == pytest.approx(0.3 * 0.45 / 0.75)


def test_lower_envelope_keeps_best_config_per_budget_and_drops_dominated():
    flops = np.array([1.0, 0.99, 3.0, 2.9, 10.0, 10.0])
    loss = np.array([5.0, 6.0, 4.0, 4.5, 4.2, 3.0])
    budget = np.array([1.0, 1.0, 3.0, 3.0, 10.0, 10.0])
    config = np.array([0, 1, 2, 3, 4, 4])  # two seeds of config 4: geometric mean sqrt(4.2*3)
    env = lower_envelope(flops, loss, budget, config)
    assert env[0].tolist() == [1.0, 3.0, 10.0]
    assert env[1] == pytest.approx([5.0, 4.0, math.sqrt(4.2 * 3.0)])
    # a cheaper budget's better point dominates a costlier, worse one
    env2 = lower_envelope(np.array([1.0, 3.0]), np.array([2.0, 2.5]), np.array([1.0, 3.0]), np.array([0, 1]))
    assert env2[0].tolist() == [1.0]


def test_isoflop_parabola_vertex_and_refusals():
    n = np.exp(np.array([9.0, 10.0, 11.0, 12.0]))
    u = np.log(n)
    p = isoflop_parabola(n, 0.5 * (u - 10.4) ** 2 + 1.0)
    assert math.log(p.n_opt) == pytest.approx(10.4) and p.loss_opt == pytest.approx(1.0) and p.bracketed
    with pytest.raises(FitError, match="needs at least 3 distinct model sizes, got 2"):
        isoflop_parabola(n[:2], np.array([1.0, 2.0]))
    with pytest.raises(FitError, match="opens downward"):
        isoflop_parabola(n, -(u - 10.4) ** 2)


def test_bootstrap_is_deterministic_and_counts_failures():
    def statistic(idx: np.ndarray) -> np.ndarray:
        if np.unique(idx).size < 3:
            raise FitError("too few")
        return np.array([idx.mean()])

    a = bootstrap(statistic, 4, n_resamples=200, seed=5)
    b = bootstrap(statistic, 4, n_resamples=200, seed=5)
    assert np.array_equal(a.samples, b.samples) and a.n_failed == b.n_failed
    assert 0 < a.n_failed < 200 and a.samples.shape[0] == 200 - a.n_failed
    strata = np.array([0, 0, 1, 1, 1])
    for idx in resample_index_sets(5, n_resamples=20, seed=1, strata=strata):
        assert np.isin(idx[:2], [0, 1]).all() and np.isin(idx[2:], [2, 3, 4]).all()


# ---------------------------------------------------------------- degenerate inputs


def test_fewer_points_than_parameters_says_how_many():
    n = np.array([1e4, 1e5, 1e6, 1e4])
    s = np.array([100.0, 100.0, 1000.0, 1000.0])
    with pytest.raises(FitError, match=r"has 5 parameters and needs at least 6 distinct points, but 4 were given"):
        fit_law(JOINT, [n, s], np.array([0.1, 0.05, 0.01, 0.07]))


def test_all_losses_equal_is_refused():
    summary = synthetic_summary(rng_seed=0)
    summary["test_mse"] = 0.05
    with pytest.raises(FitError, match=r"all \d+ test losses are equal \(0.05 m\^2\)"):
        fit_joint(scaling_cells(summary, "gatr"), n_resamples=10)
    fits = fits_to_json(fit_all(summary, n_resamples=10))
    for kind in ("frontier", "joint", "isoflop", "data_efficiency"):
        res = fits[kind]["arms"]["gatr"]
        assert res["status"] == "skipped" and "losses are equal" in res["reason"]


def test_one_budget_only_skips_isoflop_and_joint_with_reasons():
    summary = synthetic_summary(budgets=(1e13,), data_arms=(), rng_seed=0)
    fits = fits_to_json(fit_all(summary, n_resamples=10))
    iso = fits["isoflop"]["arms"]["gatr"]
    assert iso == {"reason": "IsoFLOP of gatr: needs at least 2 budgets (IsoFLOP lines) to fit N*(C), got 1 "
                             "(1e+13 FLOPs)", "status": "skipped"}
    joint = fits["joint"]["arms"]["transformer"]
    assert joint["status"] == "skipped" and "one IsoFLOP line (budget 1e+13 FLOPs)" in joint["reason"]
    assert "alpha and beta cannot be separated" in joint["reason"]
    front = fits["frontier"]["arms"]["gatr"]
    assert front["status"] == "skipped" and "but 1 were given" in front["reason"]


def test_nan_rows_are_dropped_and_counted():
    summary = synthetic_summary(data_arms=(), rng_seed=0)
    summary.loc[[0, 5, 7], "test_mse"] = np.nan
    with pytest.warns(UserWarning, match="dropped 3 of"):
        fits = fits_to_json(fit_all(summary, n_resamples=10))
    assert fits["joint"]["n_dropped"] == 3 and fits["joint"]["n_cells"] == len(summary) - 3
    assert "dropped_reason" in fits["joint"]
    assert fits["joint"]["arms"]["gatr"]["status"] == "ok"
    # the low-level fit drops them too, and says how many
    with pytest.warns(UserWarning, match="dropped 1 of 6 rows"):
        res = fit_law(FRONTIER_POWER, [np.array([1.0, 2, 4, 8, 16, 32])],
                        np.array([1.0, 0.8, np.nan, 0.55, 0.45, 0.37]))
    assert res.n_dropped == 1 and res.n_rows == 5


def test_single_model_fits_but_comparisons_are_skipped():
    summary = synthetic_summary(scaling_arms=("gatr",), data_arms=("gatr",), rng_seed=0)
    fits = fits_to_json(fit_all(summary, n_resamples=20))
    assert fits["joint"]["arms"]["gatr"]["status"] == "ok"
    for kind in ("frontier", "joint", "isoflop", "data_efficiency"):
        assert fits[kind]["comparisons"] == {
            "status": "skipped", "reason": "comparisons need gatr and another arm; the summary has only: gatr"}


def test_data_efficiency_falls_back_to_pure_power_law_with_three_sizes():
    summary = synthetic_summary(scaling_arms=(), data_arms=("gatr",), fractions=(0.25, 0.5, 1.0), rng_seed=0)
    res = fit_data_efficiency(summary, n_resamples=20)
    assert res.fit.law == "power_law" and set(res.fit.params) == {"A", "delta"}
    assert "3 distinct training-set sizes are too few for L(D) = E + A*D^-delta" in res.fit.note
    with pytest.raises(FitError, match="most: 1"):
        fit_data_efficiency(summary[summary["data_fraction"] == 1.0], n_resamples=5)


def test_missing_columns_and_bad_options_raise():
    with pytest.raises(FitError, match="lacks column"):
        fit_all(pd.DataFrame({"arm": ["gatr"]}))
    with pytest.raises(FitError, match="confidence"):
        fit_all(synthetic_summary(), confidence=1.5)


# ---------------------------------------------------------------- output


def test_fit_all_output_is_strict_json_with_documented_shape(study_fits):
    study_fits = fits_to_json(study_fits)
    for kind, doc in study_fits.items():
        json.dumps(doc, allow_nan=False)  # no NaN or inf anywhere
        assert doc["kind"] == kind and doc["bootstrap"]["resamples"] == 100
        assert set(doc["arms"]) == {"gatr", "transformer", "transformer+aug"}
    joint = study_fits["joint"]["arms"]["gatr"]
    assert set(joint["fit"]["params"]) == {"E", "A", "alpha", "B", "beta"}
    assert set(joint["fit"]["params"]["alpha"]) == {"value", "lo", "hi"}
    assert {"n_points", "rmse_log", "r2_log", "bootstrap", "n_params"} <= set(joint["fit"])
    assert len(joint["optimal"]) == 5 and set(joint["optimal"][0]) == {"budget", "N", "S", "loss"}
    front = study_fits["frontier"]["arms"]["gatr"]
    assert set(front["variants"]) == {"saturating", "power_law"}
    curve = front["variants"][front["primary"]]["curve"]
    assert len(curve["x"]) == len(curve["value"]) == len(curve["lo"]) == len(curve["hi"]) == CURVE_POINTS
    comp = study_fits["frontier"]["comparisons"]["transformer/gatr"]
    assert len(comp["at_budget"]) == 5 and comp["gamma_difference"]["lo"] is not None
    de = study_fits["data_efficiency"]["comparisons"]["transformer/gatr"]
    assert de["degradation_ratio"]["lo"] > 1  # GATr loses less from a small training set
    assert study_fits["isoflop"]["arms"]["transformer+aug"]["status"] == "skipped"


def test_results_do_not_depend_on_jobs():
    summary = synthetic_summary(data_arms=(), budgets=(1e12, 1e13, 1e14), rng_seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        one = fits_to_json(fit_all(summary, n_resamples=20, seed=3, jobs=1))
        two = fits_to_json(fit_all(summary, n_resamples=20, seed=3, jobs=2))
    assert json.dumps(one, sort_keys=True) == json.dumps(two, sort_keys=True)
