"""eqscale plan's predicted N*(C), read back from a joint fit as the fit stage stores it."""

import numpy as np
import pytest

from eqscale.analysis.allocation import optimal_allocation
from eqscale.analysis.store import write_fits
from eqscale.analysis.synthetic import DEFAULT_FAMILIES, DEFAULT_TRUTH, compute_model
from eqscale.plan import predicted_optimum


def test_plan_reads_the_optimum_of_a_stored_joint_fit(tmp_path, study_fits):
    write_fits(study_fits, tmp_path / "fits")
    optimum = predicted_optimum(tmp_path / "fits")
    assert set(optimum) == {"gatr", "transformer"}  # families only, not the +aug arm
    for family in ("gatr", "transformer"):
        curve = study_fits.joint.arms[family].curves["N_opt"]
        inside = float(np.sqrt(curve.x[0] * curve.x[-1]))
        n, extrapolated = optimum[family](inside)
        assert not extrapolated
        assert n == pytest.approx(np.exp(np.interp(np.log(inside), np.log(curve.x), np.log(curve.value))), rel=1e-9)
        # the fit recovers the known law's optimum (2% noise): within 1.5x of the truth
        fam = DEFAULT_FAMILIES[family]
        truth = optimal_allocation(np.array([tuple(DEFAULT_TRUTH[family].law)]), compute_model(fam), np.array([inside]),
                                   (min(fam.params.values()), max(fam.params.values())))
        assert n / float(np.exp(truth.log_n[0, 0])) == pytest.approx(1.0, abs=0.5)
        # beyond the fitted budgets the law's slope carries it on, flagged as an extrapolation
        far, flagged = optimum[family](curve.x[-1] * 100)
        assert flagged and far > curve.value[-1]
    assert predicted_optimum(tmp_path / "nowhere") == {}
