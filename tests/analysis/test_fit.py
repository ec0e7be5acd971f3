"""Scaling-law fits: recovery of known laws under the study's own FLOP counting, degenerate inputs, output."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pandas as pd
import pytest

from eqscale.analysis.data_efficiency import fit_data_efficiency
from eqscale.analysis.errors import FitError
from eqscale.analysis.fit import fit_all, settings_from_config
from eqscale.analysis.frontier import budget_points, fit_envelope, lower_envelope, power_law_check
from eqscale.analysis.isoflop import fit_isoflop, isoflop_parabola
from eqscale.analysis.joint import fit_joint
from eqscale.analysis.powerlaw import FRONTIER, FrontierParams
from eqscale.analysis.results import Estimate, Skipped
from eqscale.analysis.store import FIT_FILES, fits_to_json, read_fits, write_fits
from eqscale.analysis.synthetic import (
    DEFAULT_FAMILIES,
    DEFAULT_TRUTH,
    compute_model,
    grid_table,
    synthetic_frontier_summary,
    synthetic_study,
    synthetic_summary,
    true_exponents,
)
from eqscale.analysis.table import read_table

RESAMPLES = 100


def _inside(est: Estimate, truth: float) -> bool:
    return est.lo is not None and est.hi is not None and est.lo <= truth <= est.hi


def _scaling(summary: pd.DataFrame, arm: str) -> pd.DataFrame:
    return read_table(summary).scaling(arm).reset_index(drop=True)


@pytest.mark.parametrize("rng_seed", [1, 2])
def test_joint_fit_recovers_the_allocation_on_the_real_compute(rng_seed):
    summary = synthetic_summary(noise=0.02, rng_seed=rng_seed)
    for arm in ("gatr", "transformer"):
        cells = _scaling(summary, arm)
        res = fit_joint(cells, compute_model(DEFAULT_FAMILIES[arm]), n_resamples=RESAMPLES, seed=rng_seed)
        assert res.fit.bootstrap.ok >= 0.95 * RESAMPLES
        truth = true_exponents(DEFAULT_TRUTH[arm], DEFAULT_FAMILIES[arm], sorted(cells["budget"].unique()),
                               (cells["params"].min(), cells["params"].max()))
        for name in ("a", "b", "gamma"):
            assert _inside(res.exponents[name], truth[name]), (arm, name, res.exponents[name], truth[name])
        # F grows slower than N (p < 1), so a + b > 1: C is not k*N*S
        assert res.exponents["a"].value + res.exponents["b"].value > 1.05
        assert res.curves["loss_opt"].x.size == res.curves["N_opt"].x.size > 10
        assert all(p.within_sizes for p in res.optimal)


@pytest.mark.parametrize("rng_seed", [0, 1])
def test_envelope_fit_recovers_gamma(rng_seed):
    truth = FrontierParams(E=2e-3, A=40.0, gamma=0.25)
    summary = synthetic_frontier_summary(law=truth, rng_seed=rng_seed)
    variants = fit_envelope(_scaling(summary, "gatr"), n_resamples=RESAMPLES, seed=rng_seed)
    sat = variants["saturating"]
    assert _inside(sat.params["gamma"], truth.gamma), sat.params["gamma"]
    curve = sat.curve
    assert np.all(curve.lo <= curve.value * (1 + 1e-9)) and np.all(curve.value <= curve.hi * (1 + 1e-9))
    mid = curve.x.size // 2
    assert curve.lo[mid] <= FRONTIER(truth, curve.x[mid]) <= curve.hi[mid]


def test_isoflop_recovers_the_allocation_exponent_and_says_what_is_bracketed():
    summary = synthetic_frontier_summary(a=0.45, rng_seed=0)
    cells = _scaling(summary, "gatr")
    model = compute_model(_family_of(cells))
    res = fit_isoflop(cells, model, n_resamples=RESAMPLES, seed=0)
    assert res.n_points == 5 and all(b.bracketing == "bracketed" for b in res.budgets)
    assert _inside(res.exponents["a"], 0.45), res.exponents["a"]
    assert res.exponents["b"].value == pytest.approx(1 - res.exponents["a"].value, abs=0.02)  # F = k*N here


def _family_of(cells: pd.DataFrame):
    from eqscale.analysis.synthetic import Family

    sizes = cells.drop_duplicates("size")
    return Family("gatr", dict(zip(sizes["size"], sizes["params"], strict=True)),
                  dict(zip(sizes["size"], sizes["flops_per_step_nominal"], strict=True)))


def test_isoflop_parabola_uses_the_valley_and_names_the_side_of_an_unbracketed_minimum():
    n = np.exp(np.arange(8.0, 14.0))
    u = np.log(n)
    p = isoflop_parabola(n, 0.5 * (u - 10.4) ** 2 + 1.0)
    assert math.log(p.n_opt) == pytest.approx(10.4) and p.loss_opt == pytest.approx(1.0) and p.bracketed
    assert isoflop_parabola(n, np.exp(-0.5 * u)).bracketing == "above the largest size"
    assert isoflop_parabola(n, np.exp(0.5 * u)).bracketing == "below the smallest size"
    with pytest.raises(FitError, match="needs at least 3 distinct model sizes, got 2"):
        isoflop_parabola(n[:2], np.array([1.0, 2.0]))


def test_lower_envelope_and_the_budgets_left_off_it():
    flops = np.array([1.0, 1.0, 3.0, 3.0, 10.0, 10.0])
    loss = np.array([5.0, 6.0, 4.0, 7.0, 4.2, 3.0])
    budget = np.array([1.0, 1.0, 3.0, 3.0, 10.0, 10.0])
    config = np.array([0, 1, 2, 3, 4, 4])  # two seeds of config 4: geometric mean sqrt(4.2*3)
    env = lower_envelope(flops, loss, budget, config)
    assert env[0].tolist() == [1.0, 3.0, 10.0]
    assert env[1] == pytest.approx([5.0, 4.0, math.sqrt(4.2 * 3.0)])
    cells = pd.DataFrame({"budget": [1e12, 1e12, 3e12, 1e13, 1e13], "size": ["a", "b", "a", "a", "b"],
                          "flops": [1e12, 1e12, 3e12, 1e13, 1e13], "params": [1, 2, 1, 1, 2],
                          "test_mse": [0.5, 0.4, 0.45, np.nan, np.nan], "cell": list("vwxyz"),
                          "status": ["ok", "ok", "ok", "diverged", "diverged"],
                          "status_reason": [None, None, None, "test MSE is nan", "test MSE is nan"]})
    points = budget_points(cells)
    assert [p.status for p in points] == ["on envelope", "dropped", "no usable cells"]
    assert "not below 0.4 at the cheaper budget 1e+12" in points[1].reason
    assert points[2].diverged == ["y", "z"] and "test MSE is nan" in points[2].reason


def test_power_law_check_bends_up_for_a_floor_and_down_for_a_straight_line_in_log_c():
    c = np.geomspace(1e12, 1e15, 7)
    sigma = np.full(c.size, 0.01)
    pure = power_law_check(c, 3.0 * c ** -0.2, sigma, 0.95)
    assert pure.bend.value == pytest.approx(0.0, abs=1e-9) and pure.decades == pytest.approx(3.0)
    floor = power_law_check(c, 0.05 + 3.0 * c ** -0.2, sigma, 0.95)
    assert floor.bend.lo > 0
    straight = power_law_check(c, 0.4 - 0.05 * np.log(c / 1e12), sigma, 0.95)
    assert straight.bend.hi < -0.05
    assert isinstance(power_law_check(c[:2], c[:2] ** -0.2, sigma[:2], 0.95), Skipped)


def test_data_efficiency_points_carry_epochs_and_the_law_falls_back_with_three_sizes():
    summary = synthetic_summary(scaling_arms=(), data_arms=("gatr",), fractions=(0.25, 0.5, 1.0), rng_seed=0)
    cells = read_table(summary).data_efficiency("gatr").reset_index(drop=True)
    res = fit_data_efficiency(cells, n_resamples=20)
    assert [p.D for p in res.points] == [500.0, 1000.0, 2000.0]
    assert res.points[0].epochs > res.points[-1].epochs and res.points[0].stopped_early == 1.0
    assert res.fit.law == "power_law" and set(res.fit.params) == {"A", "delta"}
    assert "3 distinct training-set sizes are too few for L(D) = E + A*D^-delta" in res.fit.note
    with pytest.raises(FitError, match="most: 1"):
        fit_data_efficiency(cells[cells["data_fraction"] == 1.0], n_resamples=5)


# ---------------------------------------------------------------- degenerate inputs and options


def _quiet_fit(summary: pd.DataFrame, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return fit_all(summary, **kwargs)


def test_all_losses_equal_is_refused_with_the_reason():
    summary = synthetic_summary(rng_seed=0)
    summary["test_mse"] = 0.05
    fits = _quiet_fit(summary, n_resamples=10)
    for kind in ("joint", "isoflop"):
        res = getattr(fits, kind).arms["gatr"]
        assert isinstance(res, Skipped) and "losses are equal" in res.reason


def test_one_budget_only_skips_isoflop_and_joint_with_reasons():
    summary = synthetic_summary(budgets=(1e13,), data_arms=(), rng_seed=0)
    fits = _quiet_fit(summary, n_resamples=10)
    iso = fits.isoflop.arms["gatr"]
    assert iso.reason == "IsoFLOP of gatr: needs at least 2 budgets (IsoFLOP lines) to fit N*(C), got 1 (1e+13 FLOPs)"
    joint = fits.joint.arms["transformer"]
    assert "one IsoFLOP line (budget 1e+13 FLOPs)" in joint.reason and "cannot be separated" in joint.reason
    assert all(f.verdict == "inconclusive" for f in fits.findings.findings)


def test_diverged_cells_are_counted_not_dropped():
    summary = synthetic_summary(data_arms=(), rng_seed=0)
    summary.loc[[0, 5, 7], "test_mse"] = np.nan
    fits = _quiet_fit(summary, n_resamples=10)
    assert fits.joint.n_diverged == 3 and fits.joint.n_usable == len(summary) - 3
    assert not isinstance(fits.joint.arms["gatr"], Skipped)
    listed = [c for arm in fits.frontier.arms.values() for b in arm.budgets for c in b.diverged]
    assert sorted(listed) == sorted(summary.loc[[0, 5, 7], "cell"])


def test_single_arm_fits_but_findings_that_compare_arms_cannot_be_judged():
    summary = synthetic_summary(scaling_arms=("gatr",), data_arms=("gatr",), rng_seed=0)
    fits = _quiet_fit(summary, n_resamples=20)
    assert not isinstance(fits.joint.arms["gatr"], Skipped)
    assert fits.frontier.comparisons == {} and fits.data_efficiency.comparisons == {}
    assert [f.verdict for f in fits.findings.findings] == ["inconclusive"] * 3


def test_missing_columns_and_bad_options_raise():
    with pytest.raises(FitError, match="lacks column"):
        fit_all(pd.DataFrame({"arm": ["gatr"]}))
    with pytest.raises(FitError, match="confidence"):
        fit_all(synthetic_summary(), confidence=1.5)


def test_settings_come_from_the_config_sections():
    s = settings_from_config({"analysis": {"bootstrap": 7, "equivalence_margin": 0.2, "unknown": 1},
                              "evaluation": {"target_rel_se": 0.02, "max_samples": 10}})
    assert s.bootstrap == 7 and s.equivalence_margin == 0.2 and s.target_rel_se == 0.02 and s.min_frontier_points == 4


# ---------------------------------------------------------------- output


def test_fit_files_are_strict_json_and_read_back_as_the_same_records(study_fits, tmp_path):
    docs = fits_to_json(study_fits)
    assert set(docs) == set(FIT_FILES)
    for kind, doc in docs.items():
        json.dumps(doc, allow_nan=False)  # no NaN or inf anywhere
        assert doc["kind"] == kind and doc["bootstrap"]["resamples"] == 60
        assert doc["arms_present"] == ["gatr", "transformer", "transformer+aug"]
    joint = docs["joint"]["arms"]["gatr"]
    assert set(joint["exponents"]) == {"a", "b", "gamma", "a_minus_b"}
    assert set(joint["fit"]["params"]) == {"E", "A", "alpha", "B", "beta"}
    assert joint["compute"].startswith("C = S*F(N)")
    assert {f["number"] for f in docs["findings"]["findings"]} == {1, 2, 3}
    write_fits(study_fits, tmp_path)
    back = read_fits(tmp_path)
    assert json.dumps(fits_to_json(back), sort_keys=True) == json.dumps(docs, sort_keys=True)


def test_results_do_not_depend_on_jobs():
    study = synthetic_study(grid_table(budgets=(1e12, 1e13, 1e14)), n_test_samples=64, rng_seed=0)
    one = fits_to_json(_quiet_fit(study.summary, samples=study.sample_losses, n_resamples=20, seed=3, jobs=1))
    two = fits_to_json(_quiet_fit(study.summary, samples=study.sample_losses, n_resamples=20, seed=3, jobs=2))
    assert json.dumps(one, sort_keys=True) == json.dumps(two, sort_keys=True)
