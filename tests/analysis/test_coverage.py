"""Coverage: over 20 synthetic studies at 10% training noise, the intervals of a, gamma and the gap ratios
contain the truth at least 17 times in 20 (nominal 95%)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from eqscale.analysis.fit import fit_all
from eqscale.analysis.synthetic import DEFAULT_FAMILIES, DEFAULT_TRUTH, grid_table, synthetic_study, true_exponents

STUDIES = 20
RESAMPLES = 100


@pytest.mark.slow
def test_intervals_cover_the_truth_at_10_percent_noise():
    grid = grid_table(seeds=(0, 1), replicated=[("gatr", 1e13), ("transformer", 1e13)])
    truth = {}
    for arm in ("gatr", "transformer"):
        cells = grid[(grid["arm"] == arm) & grid["in_scaling"]]
        truth[arm] = true_exponents(DEFAULT_TRUTH[arm], DEFAULT_FAMILIES[arm], sorted(cells["budget"].unique()),
                                    (cells["params"].min(), cells["params"].max()))
    hits: dict[str, list[bool]] = {}

    def record(name: str, est, true: float) -> None:
        hits.setdefault(name, []).append(est is not None and est.lo is not None and est.lo <= true <= est.hi)

    for k in range(STUDIES):
        study = synthetic_study(grid, noise=0.10, n_test_samples=256, rng_seed=1000 + k)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            fits = fit_all(study.summary, samples=study.sample_losses, n_resamples=RESAMPLES, seed=k,
                           kinds=("joint", "data_efficiency"), data_law=False)
        clean = dict(zip(study.summary["cell"], np.log(study.clean_loss), strict=True))
        for arm in ("gatr", "transformer"):
            for name in ("a", "gamma"):
                record(f"{arm} {name}", fits.joint.arms[arm].exponents[name], truth[arm][name])

        def true_ratio(c) -> float:
            return float(np.exp(np.mean([clean[x] for x in c.cells_a]) - np.mean([clean[x] for x in c.cells_b])))

        # one gap per study and comparison (the largest training set; the top budget), so each is 20 draws
        for key in ("transformer/gatr", "transformer+aug/gatr"):
            gap = fits.data_efficiency.comparisons[key].at_size[-1]
            record(f"gap {key} at the largest D", gap.ratio, true_ratio(gap))
        top = fits.frontier.comparisons["transformer/gatr"].at_budget[-1]
        record("gap transformer/gatr at the top budget", top.ratio, true_ratio(top))
    counts = {name: sum(v) for name, v in hits.items()}
    assert all(len(v) == STUDIES for v in hits.values())
    assert all(c >= 17 for c in counts.values()), sorted(counts.items())
