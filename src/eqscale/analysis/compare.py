"""Comparisons between arms: ratios of fitted laws and differences of exponents, against the reference arm.

Intervals pair the arms' (independent) bootstrap resamples: resample i of one arm with resample i of
the other.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from eqscale.analysis.bootstrap import percentile_interval
from eqscale.analysis.powerlaw import DATA, DATA_POWER, FRONTIER, FRONTIER_POWER, Law, params_from_vector
from eqscale.analysis.results import (
    BudgetRatio,
    DataComparison,
    DataEfficiencyArm,
    Estimate,
    ExponentComparison,
    FrontierArm,
    FrontierComparison,
    LawResult,
    Skipped,
)
from eqscale.cells import REFERENCE_ARM


def curve_samples(law: Law, result: LawResult, x: np.ndarray, m: int) -> np.ndarray:
    """The law of each of the first m bootstrap parameter samples, evaluated at x: shape (m, len(x))."""
    return np.array([law(params_from_vector(law, v), x) for v in result.samples[:m]])


def paired_ratio(law_a: Law, result_a: LawResult, law_b: Law, result_b: LawResult, x: float,
                 confidence: float) -> Estimate:
    """L_a(x) / L_b(x) with an interval from pairing the arms' (independent) bootstrap resamples."""
    value = float(law_a(result_a.point.params, x) / law_b(result_b.point.params, x))
    m = min(result_a.samples.shape[0], result_b.samples.shape[0])
    if m < 2:
        return Estimate.of(value)
    xs = np.array([x], dtype=float)
    ratio = curve_samples(law_a, result_a, xs, m) / curve_samples(law_b, result_b, xs, m)
    lo, hi = percentile_interval(ratio, confidence)
    return Estimate.of(value, lo[0], hi[0])


def paired_degradation_ratio(law_a: Law, result_a: LawResult, law_b: Law, result_b: LawResult, small: float,
                             large: float, confidence: float) -> Estimate:
    """[L_a(small)/L_a(large)] / [L_b(small)/L_b(large)]: how much more arm a suffers from less data than b."""
    xs = np.array([small, large], dtype=float)

    def degradation(law: Law, params: Any) -> float:
        lo_d, hi_d = law(params, xs)
        return float(lo_d / hi_d)

    value = degradation(law_a, result_a.point.params) / degradation(law_b, result_b.point.params)
    m = min(result_a.samples.shape[0], result_b.samples.shape[0])
    if m < 2:
        return Estimate.of(value)
    ca, cb = curve_samples(law_a, result_a, xs, m), curve_samples(law_b, result_b, xs, m)
    lo, hi = percentile_interval(((ca[:, 0] / ca[:, 1]) / (cb[:, 0] / cb[:, 1]))[:, None], confidence)
    return Estimate.of(value, lo[0], hi[0])


def paired_difference(value_a: float, samples_a: np.ndarray, value_b: float, samples_b: np.ndarray,
                      confidence: float) -> Estimate:
    """a - b with an interval from pairing independent bootstrap samples."""
    m = min(samples_a.size, samples_b.size)
    if m < 2:
        return Estimate.of(value_a - value_b)
    lo, hi = percentile_interval((samples_a[:m] - samples_b[:m])[:, None], confidence)
    return Estimate.of(value_a - value_b, lo[0], hi[0])


LAWS_BY_NAME = {("frontier", FRONTIER.name): FRONTIER, ("frontier", FRONTIER_POWER.name): FRONTIER_POWER,
                ("data", DATA.name): DATA, ("data", DATA_POWER.name): DATA_POWER}


def compare_frontiers(arms: Mapping[str, FrontierArm | Skipped], budgets: np.ndarray,
                      confidence: float) -> dict[str, FrontierComparison | Skipped]:
    """Per other arm vs GATr: loss ratio at each shared budget (primary laws) and gamma difference (power laws)."""
    out: dict[str, FrontierComparison | Skipped] = {}
    ref = arms.get(REFERENCE_ARM)
    for arm, res in arms.items():
        if arm == REFERENCE_ARM:
            continue
        key = f"{arm}/{REFERENCE_ARM}"
        if not isinstance(ref, FrontierArm) or not isinstance(res, FrontierArm):
            missing = [a for a, r in ((REFERENCE_ARM, ref), (arm, res)) if not isinstance(r, FrontierArm)]
            out[key] = Skipped(f"no frontier fit for {', '.join(missing)}")
            continue
        lo = max(min(ref.points.flops), min(res.points.flops))
        hi = min(max(ref.points.flops), max(res.points.flops))
        shared = [float(b) for b in budgets if lo * 0.9 <= b <= hi * 1.1]  # budget lines sit a step below budget
        ra, rb = res.variants[res.primary], ref.variants[ref.primary]
        ratios = [BudgetRatio(budget=b, ratio=paired_ratio(LAWS_BY_NAME["frontier", res.primary], ra,
                                                           LAWS_BY_NAME["frontier", ref.primary], rb, b, confidence))
                  for b in shared]
        pa, pb = res.variants.get("power_law"), ref.variants.get("power_law")
        gamma = None
        if isinstance(pa, LawResult) and isinstance(pb, LawResult):
            gamma = paired_difference(pa.point.params.gamma, pa.samples[:, -1], pb.point.params.gamma,
                                      pb.samples[:, -1], confidence)
        out[key] = FrontierComparison(ratio_law=f"{res.primary}/{ref.primary}", at_budget=ratios,
                                      gamma_difference=gamma,
                                      note=None if shared else "the arms' frontiers share no budget")
    return out


def compare_exponent(arms: Mapping[str, Any], get: Callable[[Any], tuple[float, np.ndarray]],
                     confidence: float, name: str) -> dict[str, ExponentComparison | Skipped]:
    """Per other arm: (its exponent) - (GATr's), paired bootstrap interval."""
    out: dict[str, ExponentComparison | Skipped] = {}
    ref = arms.get(REFERENCE_ARM)
    for arm, res in arms.items():
        if arm == REFERENCE_ARM:
            continue
        key = f"{arm}-{REFERENCE_ARM}"
        if isinstance(ref, Skipped) or ref is None or isinstance(res, Skipped):
            out[key] = Skipped(f"needs {name} fits for both {REFERENCE_ARM} and {arm}")
            continue
        va, sa = get(res)
        vb, sb = get(ref)
        out[key] = ExponentComparison(a_difference=paired_difference(va, sa, vb, sb, confidence))
    return out


DATA_PAIRS = (("transformer", "gatr"), ("transformer+aug", "gatr"), ("transformer", "transformer+aug"))


def compare_data_efficiency(arms: Mapping[str, DataEfficiencyArm | Skipped],
                            confidence: float) -> dict[str, DataComparison | Skipped]:
    """Per pair of arms: loss ratios at the smallest and largest shared training-set size, and the
    degradation ratio (how much more the first arm's loss grows from the largest to the smallest size).

    The degradation ratio separates data efficiency from an overall offset: an arm that is worse by
    the same factor at every size is not less data-efficient.
    """
    out: dict[str, DataComparison | Skipped] = {}
    for a, b in DATA_PAIRS:
        key = f"{a}/{b}"
        ra, rb = arms.get(a), arms.get(b)
        if not isinstance(ra, DataEfficiencyArm) or not isinstance(rb, DataEfficiencyArm):
            missing = [x for x, r in ((a, ra), (b, rb)) if not isinstance(r, DataEfficiencyArm)]
            out[key] = Skipped(f"no data-efficiency fit for {', '.join(missing)}")
            continue
        if ra.x != rb.x:
            out[key] = Skipped(f"{a} is measured in {ra.x} but {b} in {rb.x}")
            continue
        small = max(min(ra.points.D), min(rb.points.D))
        large = min(max(ra.points.D), max(rb.points.D))
        if not small < large:
            out[key] = Skipped("the arms share no range of training-set sizes")
            continue
        la, lb = LAWS_BY_NAME["data", ra.fit.law], LAWS_BY_NAME["data", rb.fit.law]
        out[key] = DataComparison(D_small=float(small), D_large=float(large),
                                  ratio_at_small=paired_ratio(la, ra.fit, lb, rb.fit, small, confidence),
                                  ratio_at_large=paired_ratio(la, ra.fit, lb, rb.fit, large, confidence),
                                  degradation_ratio=paired_degradation_ratio(la, ra.fit, lb, rb.fit, small, large,
                                                                             confidence))
    return out
