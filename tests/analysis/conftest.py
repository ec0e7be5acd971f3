"""Fixtures of the analysis tests: a synthetic study drawn from a known law, and its fits."""

from __future__ import annotations

import warnings

import pytest

from eqscale.analysis.fit import fit_all
from eqscale.analysis.results import Fits
from eqscale.analysis.synthetic import SyntheticStudy, grid_table, synthetic_study

FIXTURE_RESAMPLES = 60


@pytest.fixture(scope="session")
def synthetic() -> SyntheticStudy:
    """GATr + transformer scaling grids (two seeds on two budget lines) and the data-efficiency grid, with
    per-sample test losses; drawn from DEFAULT_TRUTH, in which the paper's findings hold."""
    grid = grid_table(seeds=(0, 1), replicated=[("gatr", 1e13), ("transformer", 1e13)])
    return synthetic_study(grid, noise=0.02, n_test_samples=256, rng_seed=3)


@pytest.fixture(scope="session")
def study(synthetic: SyntheticStudy):
    """The synthetic study's summary table."""
    return synthetic.summary


@pytest.fixture(scope="session")
def study_fits(synthetic: SyntheticStudy) -> Fits:
    """fit_all of the study."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return fit_all(synthetic.summary, samples=synthetic.sample_losses, n_resamples=FIXTURE_RESAMPLES, seed=0)
