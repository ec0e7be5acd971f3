"""Each family's real compute F(N) and the compute-optimal allocation along it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from eqscale.analysis.allocation import exponents, optimal_allocation
from eqscale.analysis.compute import ComputeModel, family_compute
from eqscale.analysis.errors import FitError

SIZES = np.array([1e4, 3e4, 1e5, 3e5, 1e6])


def test_compute_model_goes_through_every_size_and_continues_in_log_log():
    flops = np.array([4e8, 1.2e9, 2.0e9, 4.5e9, 9e9])  # an uneven ladder, as attention makes it
    model = ComputeModel("f", SIZES, flops)
    assert np.allclose(model.F(SIZES), flops)
    between = model.F(np.sqrt(SIZES[:-1] * SIZES[1:]))
    assert np.all(between > flops[:-1]) and np.all(between < flops[1:])  # monotone between sizes
    # beyond the ladder: straight lines in log-log
    far = model.log_F(np.log([1e7, 1e8]))
    near = model.log_F(np.log([1e6]))
    assert far[1] - far[0] == pytest.approx(far[0] - near[0])  # one decade each
    k, p = ComputeModel("f", SIZES, 3.0 * SIZES ** 0.7).power_fit()
    assert k == pytest.approx(3.0) and p == pytest.approx(0.7)
    with pytest.raises(FitError, match="distinct parameter counts"):
        ComputeModel("f", np.array([1e4, 1e4]), np.array([1.0, 2.0]))


@pytest.mark.parametrize("p", [1.0, 0.7])
def test_allocation_matches_the_closed_form_of_a_power_law_F(p):
    # F = k*N^p: N* ~ C^a with a = beta/(alpha + p*beta), S* = C/F(N*) ~ C^(1 - p*a), L* - E ~ C^(-alpha*a)
    e, a_, alpha, b_, beta = 2e-3, 8.0, 0.45, 0.8, 0.3
    k = 4e4
    model = ComputeModel("t", SIZES, k * SIZES ** p)
    c = np.geomspace(1e11, 1e13, 40)
    alloc = optimal_allocation(np.array([[e, a_, alpha, b_, beta]]), model, c)
    # dL/dN = 0 on S = C/(k N^p): alpha*A*N^-alpha = p*beta*B*S^-beta
    a_true = beta / (alpha + p * beta)
    g = (alpha * a_ / (p * beta * b_) * (k ** -beta)) ** (1 / (alpha + p * beta))
    n_true = g * c ** a_true
    assert np.max(np.abs(alloc.log_n[0] - np.log(n_true))) < 1e-3
    ex = exponents(alloc, c, np.array([e]))
    assert ex["a"][0] == pytest.approx(a_true, abs=1e-4)
    assert ex["b"][0] == pytest.approx(1 - p * a_true, abs=1e-4)
    assert ex["gamma"][0] == pytest.approx(alpha * a_true, abs=1e-4)
    assert not alloc.at_edge.any()


def test_allocation_flags_an_optimum_outside_the_search_range():
    model = ComputeModel("t", SIZES, 4e4 * SIZES)
    # beta ~ 0: more steps never help, so the optimum runs off to the largest size
    alloc = optimal_allocation(np.array([[1e-3, 2.0, 0.3, 1.0, 1e-6]]), model, np.array([1e12]))
    assert alloc.at_edge.all()


def test_family_compute_records_the_split_and_falls_back_to_flops_per_step():
    rows = pd.DataFrame({"model": "gatr", "size": ["a", "a", "b", "c"], "params": [1e4, 1e4, 1e5, 1e6],
                         "steps": [100, 200, 100, 10], "flops": [1e10, 2e10, 5e10, 2e10],
                         "flops_attention": [4e9, 8e9, 1e10, 2e9], "flops_per_step_nominal": [1e8, 1e8, 5e8, 2e9]})
    model, rec = family_compute(rows, "gatr")
    assert [s.size for s in rec.sizes] == ["a", "b", "c"]
    assert rec.sizes[0].attention_share == pytest.approx(0.4) and rec.sizes[2].attention_share == pytest.approx(0.1)
    assert rec.attention_share == pytest.approx(24e9 / 10e10) and rec.padding_share is None
    assert rec.sizes[1].flops_per_param_step == pytest.approx(5e3)
    assert model.F(1e5) == pytest.approx(5e8) and rec.power_p < 1
    assert "flops_per_step_nominal" in rec.source
    _, fallback = family_compute(rows.drop(columns=["flops_per_step_nominal"]), "gatr")
    assert "flops / steps" in fallback.source and fallback.sizes[1].flops_per_step == pytest.approx(5e8)
