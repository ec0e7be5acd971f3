"""Evaluation error: per-sample losses, paired resampling of the test samples, and the training noise."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from eqscale.analysis.compare import ratio_samples
from eqscale.analysis.evaluation import SampleLossError, SampleLosses, evaluation_resamples
from eqscale.analysis.noise import estimate_noise, seed_spread, unshared_eval_var
from eqscale.analysis.synthetic import synthetic_study


def _losses(n_cells: int = 2, n_samples: int = 400, shared: float = 1.0, own: float = 0.05,
            seed: int = 0) -> SampleLosses:
    rng = np.random.default_rng(seed)
    n_values = 3 * rng.integers(50, 500, n_samples)
    difficulty = np.exp(shared * rng.standard_normal(n_samples))
    sq = np.array([(1 + 0.1 * c) * n_values * difficulty * np.exp(own * rng.standard_normal(n_samples))
                   for c in range(n_cells)])
    return SampleLosses(cells=np.array([f"c{c}" for c in range(n_cells)]), sample=np.arange(n_samples),
                        sq_error=sq, n_values=n_values, cv_sq_error=2 * n_values * difficulty,
                        in_contact=rng.random(n_samples) < 0.3)


def test_cell_statistics_follow_the_contract(tmp_path):
    s = _losses()
    s.sq_error[1, 300:] = np.nan  # cell 1 evaluated on a shorter prefix
    stats = s.cell_statistics(1)
    ok = slice(0, 300)
    assert stats["test_mse"] == pytest.approx(s.sq_error[1, ok].sum() / s.n_values[ok].sum())
    assert stats["n_test_samples"] == 300
    contact = s.in_contact[ok]
    assert stats["test_mse_contact"] == pytest.approx(s.sq_error[1, ok][contact].sum() / s.n_values[ok][contact].sum())
    assert stats["test_mse_lo"] < stats["test_mse"] < stats["test_mse_hi"]
    # the delta-method standard error agrees with resampling the samples
    boot = s.resampled_mse(np.array([0]), 2000, seed=1)[:, 0]
    assert boot.std() == pytest.approx(s.mse_se(0), rel=0.1)
    s.save(tmp_path / "samples.npz")
    back = SampleLosses.load(tmp_path / "samples.npz")
    assert back.cells.tolist() == ["c0", "c1"] and np.allclose(back.sq_error, s.sq_error, equal_nan=True)


def test_bad_sample_files_name_the_problem(tmp_path):
    np.savez(tmp_path / "a.npz", cells=np.array(["x"]), sample=np.arange(3))
    with pytest.raises(SampleLossError, match=r"a\.npz lacks sq_error, n_values, cv_sq_error, in_contact"):
        SampleLosses.load(tmp_path / "a.npz")
    np.savez(tmp_path / "b.npz", cells=np.array(["x"]), sample=np.arange(3), sq_error=np.ones((2, 3)),
             n_values=np.ones(3), cv_sq_error=np.ones(3), in_contact=np.zeros(3, bool))
    with pytest.raises(SampleLossError, match=r"b\.npz: sq_error has shape \(2, 3\), expected \(1, 3\)"):
        SampleLosses.load(tmp_path / "b.npz")
    (tmp_path / "c.npz").write_text("not a zip")
    with pytest.raises(SampleLossError, match="not a readable npz"):
        SampleLosses.load(tmp_path / "c.npz")


def test_joint_resampling_pairs_cells_so_shared_noise_cancels():
    # two cells whose per-sample errors share a heavy-tailed difficulty: each test MSE is uncertain (~5%), their
    # ratio barely (the shared part cancels); unpaired draws would put the ratio's error at ~7%
    s = _losses(shared=1.0, own=0.05)
    table = pd.DataFrame({"cell": s.cells, "test_mse": [s.mse(0), s.mse(1)],
                          "test_mse_se": [s.mse_se(0), s.mse_se(1)]})
    paired = evaluation_resamples(table, s, 1000, seed=0)
    assert paired.paired.all() and "paired" in paired.method
    rel_se = np.log(paired.loss).std(axis=0)
    ratio_se = np.log(paired.loss[:, 1] / paired.loss[:, 0]).std()
    assert rel_se.min() > 0.04 and ratio_se < 0.2 * rel_se.min()
    unpaired = evaluation_resamples(table, None, 1000, seed=0)  # test_mse_se only: independent lognormal draws
    assert unpaired.parametric.all() and "unpaired" in unpaired.method
    assert np.log(unpaired.loss[:, 1] / unpaired.loss[:, 0]).std() > 5 * ratio_se
    none = evaluation_resamples(table.drop(columns=["test_mse_se"]), None, 10, seed=0)
    assert np.all(none.loss == table["test_mse"].to_numpy()) and "no evaluation error" in none.method


def test_cells_closer_than_their_evaluation_error_get_an_interval_that_says_so():
    # two cells 1% apart with 5% evaluation error each and unpaired errors: the ratio's interval holds 1
    s = _losses(shared=0.0, own=1.0, n_samples=400)
    s.sq_error[1] = s.sq_error[0] * 1.01 * np.exp(0.02 * np.random.default_rng(5).standard_normal(400))
    s.sq_error[1, :] = s.sq_error[1, np.random.default_rng(6).permutation(400)]  # break the pairing
    table = pd.DataFrame({"cell": s.cells, "test_mse": [s.mse(0), s.mse(1)]})
    evals = evaluation_resamples(table, s, 1000, seed=0)
    r = ratio_samples([1], [0], table, evals, sigma=0.0, rng=np.random.default_rng(0))
    lo, hi = np.percentile(r.samples, [2.5, 97.5])
    assert lo < 1.0 < hi
    assert ratio_samples([1], [0], table, evals, sigma=None, rng=np.random.default_rng(0)).samples is None


def test_training_noise_from_seeds_and_from_residuals():
    study = synthetic_study(noise=0.05, n_test_samples=None, rng_seed=0)
    rows = study.summary.assign(seed=0)
    jitter = np.exp(0.05 * np.random.default_rng(1).standard_normal(len(rows)))
    twin = rows.assign(seed=1, test_mse=rows["test_mse"] * jitter)
    both = pd.concat([rows, twin], ignore_index=True)
    spread = seed_spread(both)
    assert spread.n_configs == len(rows) and spread.dof == len(rows)
    assert spread.sigma == pytest.approx(0.05 / np.sqrt(2), rel=0.25)  # two seeds 5% apart (sd) per config
    noise = estimate_noise(both, [], 5, eval_var=0.0, min_dof=3)
    assert noise.sigma == spread.sigma and "seed-to-seed" in noise.source
    resid = [np.random.default_rng(2).normal(0, 0.05, 60)]
    from_fits = estimate_noise(rows, resid, 5, eval_var=0.03 ** 2, min_dof=3)
    assert from_fits.sigma == pytest.approx(0.04, rel=0.25) and "residuals" in from_fits.source
    assert estimate_noise(rows, [], 5, eval_var=0.0, min_dof=3).sigma is None


def test_unshared_evaluation_variance_ignores_what_all_cells_share():
    rng = np.random.default_rng(0)
    common = rng.normal(0, 0.1, (500, 1))
    own = rng.normal(0, 0.02, (500, 8))
    assert unshared_eval_var(common + own) == pytest.approx(0.02 ** 2 * 7 / 8, rel=0.15)
