"""Fixtures of the analysis tests: a synthetic study and its fits."""

from __future__ import annotations

import pandas as pd
import pytest

from eqscale.analysis.fit import fit_all
from eqscale.analysis.results import Fits
from eqscale.analysis.synthetic import synthetic_summary

FIXTURE_RESAMPLES = 100


@pytest.fixture(scope="session")
def study() -> pd.DataFrame:
    """GATr + transformer scaling grids and a data-efficiency grid with two seeds (replicates) per cell."""
    return synthetic_summary(seeds=(0, 1), rng_seed=3)


@pytest.fixture(scope="session")
def study_fits(study: pd.DataFrame) -> Fits:
    """fit_all of the study."""
    return fit_all(study, n_resamples=FIXTURE_RESAMPLES, seed=0)
