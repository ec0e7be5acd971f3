"""Verdict rules a reader can check: claims judged on intervals, never on point values or overlap.

* directional claim (x > t): supported when the whole interval is above t; not supported when the
  whole interval is below t; inconclusive when it contains t;
* equivalence claim (x within [lo, hi], e.g. a ratio within a margin of 1): supported when the whole
  interval lies inside; not supported when it lies wholly outside; inconclusive otherwise -- an
  interval that merely overlaps the claim never supports it;
* one-sided bound (x <= t, "at most"): supported when the interval is wholly below t; not supported
  when wholly above;
* every interval from resamples states the share of resamples that refitted, and below
  `min_refit_share` the verdict is inconclusive;
* a finding is supported when every one of its checks is, not supported when any is not, and
  inconclusive otherwise, with the reasons named.

Nothing here knows about a study; findings modules (findings_rigid.py) build checks from these.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from eqscale.analysis.results import Check, Estimate

SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE = "supported", "not supported", "inconclusive"


def fmt(value: float | None) -> str:
    """Three significant digits, scientific notation for very small or large values."""
    if value is None or not math.isfinite(value):
        return "n/a"
    if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e5):
        return f"{value:.3g}".replace("e+0", "e+").replace("e-0", "e-")
    return f"{value:.3g}"


def _precheck(est: Estimate | None, refit_share: float | None, min_refit_share: float) -> tuple[str, str] | None:
    if est is None or not math.isfinite(est.value):
        return INCONCLUSIVE, "no estimate"
    if refit_share is not None and refit_share < min_refit_share:
        return INCONCLUSIVE, (f"only {refit_share:.0%} of resamples refitted (at least {min_refit_share:.0%} "
                              "needed)")
    if not est.has_interval:
        return INCONCLUSIVE, "no interval"
    if est.lo == est.hi:
        return INCONCLUSIVE, "zero-width interval (too few points for an uncertainty)"
    return None


def above(est: Estimate | None, threshold: float, *, refit_share: float | None = None,
          min_refit_share: float = 0.0) -> tuple[str, str]:
    """Directional claim x > threshold, judged on the interval: (verdict, reason)."""
    pre = _precheck(est, refit_share, min_refit_share)
    if pre:
        return pre
    if est.lo > threshold:
        return SUPPORTED, f"interval wholly above {fmt(threshold)}"
    if est.hi < threshold:
        return NOT_SUPPORTED, f"interval wholly below {fmt(threshold)}"
    return INCONCLUSIVE, f"interval contains {fmt(threshold)}"


def below(est: Estimate | None, threshold: float, *, refit_share: float | None = None,
          min_refit_share: float = 0.0) -> tuple[str, str]:
    """Directional claim x < threshold, judged on the interval."""
    pre = _precheck(est, refit_share, min_refit_share)
    if pre:
        return pre
    if est.hi < threshold:
        return SUPPORTED, f"interval wholly below {fmt(threshold)}"
    if est.lo > threshold:
        return NOT_SUPPORTED, f"interval wholly above {fmt(threshold)}"
    return INCONCLUSIVE, f"interval contains {fmt(threshold)}"


def within(est: Estimate | None, lo: float, hi: float, *, refit_share: float | None = None,
           min_refit_share: float = 0.0) -> tuple[str, str]:
    """Equivalence claim lo <= x <= hi: the whole interval must lie inside; overlap is inconclusive."""
    pre = _precheck(est, refit_share, min_refit_share)
    if pre:
        return pre
    if lo <= est.lo and est.hi <= hi:
        return SUPPORTED, f"interval inside [{fmt(lo)}, {fmt(hi)}]"
    if est.hi < lo or est.lo > hi:
        return NOT_SUPPORTED, f"interval wholly outside [{fmt(lo)}, {fmt(hi)}]"
    return INCONCLUSIVE, f"interval not wholly inside [{fmt(lo)}, {fmt(hi)}]"


def combine(checks: Sequence[Check], what: str = "checks") -> tuple[str, str]:
    """A finding's verdict from its judged checks (context rows, verdict None, are ignored)."""
    judged = [c for c in checks if c.verdict is not None]
    if not judged:
        return INCONCLUSIVE, f"no {what} could be judged"
    failed = [c for c in judged if c.verdict == NOT_SUPPORTED]
    if failed:
        return NOT_SUPPORTED, "not supported: " + "; ".join(f"{c.quantity} ({c.reason})" for c in failed)
    open_ = [c for c in judged if c.verdict != SUPPORTED]
    if open_:
        return INCONCLUSIVE, "inconclusive: " + "; ".join(f"{c.quantity} ({c.reason})" for c in open_)
    return SUPPORTED, f"all {len(judged)} {what} supported"


def context(quantity: str, estimate: Estimate | None, note: str | None = None) -> Check:
    """A row shown for context: no verdict."""
    return Check(quantity=quantity, claim="-", rule="context", estimate=estimate, verdict=None, reason=note)
