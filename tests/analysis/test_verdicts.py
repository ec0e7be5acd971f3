"""Verdict rules: intervals decide, overlap never supports, equivalence needs the interval inside the margin."""

from __future__ import annotations

from eqscale.analysis import verdicts as V
from eqscale.analysis.results import Check, Estimate


def test_directional_claims_need_the_whole_interval_on_the_claimed_side():
    assert V.above(Estimate(1.3, 1.1, 1.5), 1.0)[0] == V.SUPPORTED
    assert V.above(Estimate(0.8, 0.7, 0.9), 1.0)[0] == V.NOT_SUPPORTED
    assert V.above(Estimate(1.1, 0.9, 1.3), 1.0) == (V.INCONCLUSIVE, "interval contains 1")
    assert V.below(Estimate(-0.2, -0.3, -0.1), 0.0)[0] == V.SUPPORTED
    assert V.below(Estimate(0.2, 0.1, 0.3), 0.0)[0] == V.NOT_SUPPORTED


def test_no_verdict_without_an_honest_interval():
    assert V.above(Estimate(1.3), 1.0) == (V.INCONCLUSIVE, "no interval")
    assert V.above(None, 1.0) == (V.INCONCLUSIVE, "no estimate")
    # a 3-point fit that interpolates has an interval of zero width: it is not evidence
    assert V.above(Estimate(1.3, 1.3, 1.3), 1.0)[0] == V.INCONCLUSIVE
    verdict, reason = V.above(Estimate(1.3, 1.1, 1.5), 1.0, refit_share=0.6, min_refit_share=0.8)
    assert verdict == V.INCONCLUSIVE and "only 60% of resamples refitted" in reason


def test_equivalence_is_never_earned_by_overlap():
    # issue 14: -0.147 [-0.156, 0.148] was "supported" as a similar factor; its interval reaches far outside
    assert V.within(Estimate(-0.147, -0.156, 0.148), -0.1, 0.1)[0] == V.INCONCLUSIVE
    # augmentation leaving a 2x gap: 2.0 [1.9, 2.15] must not "close the gap"
    assert V.below(Estimate(2.0, 1.9, 2.15), 1.1)[0] == V.NOT_SUPPORTED
    assert V.within(Estimate(2.0, 1.9, 2.15), 0.9, 1.1)[0] == V.NOT_SUPPORTED
    assert V.within(Estimate(1.02, 0.95, 1.08), 0.9, 1.1)[0] == V.SUPPORTED


def test_a_finding_combines_its_judged_checks():
    def check(verdict: str | None) -> Check:
        return Check(quantity=f"q-{verdict}", claim="c", rule="r", estimate=None, verdict=verdict, reason="why")

    assert V.combine([check(V.SUPPORTED), check(None)])[0] == V.SUPPORTED
    verdict, reason = V.combine([check(V.SUPPORTED), check(V.INCONCLUSIVE)])
    assert verdict == V.INCONCLUSIVE and "q-inconclusive (why)" in reason
    assert V.combine([check(V.SUPPORTED), check(V.NOT_SUPPORTED), check(V.INCONCLUSIVE)])[0] == V.NOT_SUPPORTED
    assert V.combine([check(None)])[0] == V.INCONCLUSIVE
