"""The test metric's error bars against known distributions: the standard error matches the spread of the estimate
over repeated draws, the interval covers the true ratio at its nominal rate, and the sample-size rule reaches its target."""

import numpy as np
import pytest

from eqscale.measurement import measure_ratio, ratio_se, samples_for_target


def _draw(rng, m):
    """Heavy-tailed per-sample errors (lognormal, sigma 1.2: a few collisions dominate) over uneven vertex counts."""
    counts = rng.integers(30, 300, size=m).astype(float)
    errors = counts * rng.lognormal(mean=-9.0, sigma=1.2, size=m)
    return errors, counts


TRUE_RATIO = np.exp(-9.0 + 1.2 ** 2 / 2)  # E[e/n] for independent lognormal per-coordinate error


def test_standard_error_matches_the_spread_over_repeated_draws():
    rng = np.random.default_rng(0)
    values, ses = [], []
    for _ in range(400):
        e, n = _draw(rng, 400)
        values.append(e.sum() / n.sum())
        ses.append(ratio_se(e, n))
    # the mean reported SE agrees with the actual scatter of the estimate within ~10%
    assert np.mean(ses) == pytest.approx(np.std(values), rel=0.1)
    assert np.mean(values) == pytest.approx(TRUE_RATIO, rel=0.02)


def test_interval_covers_the_truth_at_its_nominal_rate():
    rng = np.random.default_rng(1)
    hits = 0
    trials = 200
    for trial in range(trials):
        e, n = _draw(rng, 300)
        m = measure_ratio(e, n, confidence=0.9, resamples=400, seed=trial)
        hits += m.lo <= TRUE_RATIO <= m.hi
        assert m.lo < m.value < m.hi and m.n_samples == 300
    assert 0.84 <= hits / trials <= 0.96  # nominal 0.90


def test_samples_for_target_reaches_the_target():
    rng = np.random.default_rng(2)
    pilot = _draw(rng, 200)
    need = samples_for_target(*pilot, target_rel_se=0.02)
    assert need > 200
    e, n = _draw(rng, need)
    assert ratio_se(e, n) / (e.sum() / n.sum()) == pytest.approx(0.02, rel=0.25)


def test_degenerate_inputs():
    assert np.isnan(ratio_se(np.array([1.0]), np.array([3.0])))
    one = measure_ratio(np.array([1.0]), np.array([4.0]))
    assert one.value == 0.25 and np.isnan(one.lo) and np.isnan(one.se)
    with pytest.raises(ValueError, match="no samples"):
        measure_ratio(np.array([]), np.array([]))
    with pytest.raises(ValueError, match="equal-length"):
        measure_ratio(np.ones(3), np.ones(4))
