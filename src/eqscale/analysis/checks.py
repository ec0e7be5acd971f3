"""Checks shared by the studies' findings modules: a judged estimate, a missing result, the power-law rule.

Each returns a `Check` (results.py) with its rule written out, so every study's report shows the same
rules in the same words.
"""

from __future__ import annotations

from eqscale.analysis.results import Check, Estimate, FrontierArm, PowerLawCheck, Skipped
from eqscale.analysis import verdicts as V
from eqscale.analysis.verdicts import INCONCLUSIVE, fmt

# cells land within ~1% of their budgets (the last batch does not fit exactly), so a frontier over budgets a
# decade apart spans 0.99x-1.01x of a decade in recorded FLOPs: the span rule allows that round-off
SPAN_TOLERANCE_DECADES = 0.01


def missing(quantity: str, claim: str, rule: str, what: object) -> Check:
    """An inconclusive check: the result it needed is missing (Skipped says why)."""
    reason = what.reason if isinstance(what, Skipped) else "not measured"
    return Check(quantity=quantity, claim=claim, rule=rule, estimate=None, verdict=INCONCLUSIVE,
                 reason=f"no result: {reason}")


def judged(quantity: str, claim: str, rule: str, est: Estimate | None, outcome: tuple[str, str], *,
            margin: float | None = None, refit: float | None = None, spread: float | None = None) -> Check:
    """A check with its estimate and the verdict a rule of verdicts.py gave it."""
    verdict, reason = outcome
    return Check(quantity=quantity, claim=claim, rule=rule, estimate=est, verdict=verdict, reason=reason, margin=margin,
                 refit_share=refit, seed_spread=spread)


def with_note(outcome: tuple[str, str], note: str | None) -> tuple[str, str]:
    """A verdict's reason with the comparison's note (the note replaces a bare "no interval")."""
    if not note:
        return outcome
    return outcome[0], note if outcome[1] == "no interval" else f"{outcome[1]}; {note}"


def power_law_check(arm: str, res: FrontierArm | Skipped | None, ev) -> Check:
    """Is an arm's measured frontier a power law: enough budgets over enough decades, and no downward bend?"""
    s = ev.settings
    rule = (f"at least {s.min_frontier_points} budgets spanning at least {fmt(s.min_frontier_decades)} decade(s) of "
            f"compute, and the frontier's bend in log-log (a power law is straight, a floor bends it up) is not "
            f"below -{fmt(s.power_law_margin)}: its interval lies wholly above -{fmt(s.power_law_margin)}; wholly "
            "below: not supported")
    q = f"{arm}: bend of the measured frontier (ln L vs ln C)"
    if not isinstance(res, FrontierArm):
        return missing(q, "power law", rule, res)
    check = res.power_law
    if not isinstance(check, PowerLawCheck):
        return judged(q, "power law", rule, None, (INCONCLUSIVE, check.reason))
    q = f"{q}; {check.n_points} budgets over {fmt(check.decades)} decades"
    if check.n_points < s.min_frontier_points:
        return judged(q, "power law", rule, check.bend, (INCONCLUSIVE, f"only {check.n_points} frontier points "
                                                                        f"(needs {s.min_frontier_points})"),
                       margin=s.power_law_margin)
    if check.decades < s.min_frontier_decades - SPAN_TOLERANCE_DECADES:
        reason = f"the frontier spans {fmt(check.decades)} decades (needs {fmt(s.min_frontier_decades)})"
        return judged(q, "power law", rule, check.bend, (INCONCLUSIVE, reason), margin=s.power_law_margin)
    return judged(q, "power law", rule, check.bend, V.above(check.bend, -s.power_law_margin),
                   margin=s.power_law_margin)


def extrapolated_allocation(outcome: tuple[str, str], edge_fraction: float, min_share: float) -> tuple[str, str]:
    """A joint law's allocation verdict, or inconclusive when its optimum sat at the end of the size range too often.

    N*(C), S*(C) and the frontier L*(C) are the minimum of the law over sizes; where that minimum lies at the end
    of the searched range in more than 1 - `min_share` of the (resample, budget) pairs, the law was extrapolated
    beyond the sampled sizes and its exponents are not measurements (the same share as a refit requirement).
    """
    if edge_fraction > 1.0 - min_share:
        return INCONCLUSIVE, (f"the optimum sits at the end of the size range in {edge_fraction:.0%} of resamples "
                              "(the law is extrapolated beyond the sampled sizes)")
    return outcome
