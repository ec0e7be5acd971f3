"""The rigid-body study's findings (Brehmer et al. 2024, arXiv 2410.23179) as checks with written rules.

Each finding is a list of checks built from the fits and comparisons with the generic rules of
verdicts.py; the rule of each check is written beside it so the report can show it. Only this
module knows the study's arms and claims; a second study adds its own findings module.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from eqscale.analysis import verdicts as V
from eqscale.analysis.results import (
    AnalysisSettings,
    BudgetComparison,
    Check,
    DataComparison,
    DataEfficiencyArm,
    ExponentComparison,
    Finding,
    FrontierArm,
    IsoflopArm,
    JointArm,
    LawResult,
    NoiseEstimate,
    Skipped,
)
from eqscale.analysis.checks import judged as _judged
from eqscale.analysis.checks import missing as _missing
from eqscale.analysis.checks import power_law_check as _power_law_check
from eqscale.analysis.checks import extrapolated_allocation
from eqscale.analysis.checks import with_note as _with_note
from eqscale.analysis.verdicts import INCONCLUSIVE, NOT_SUPPORTED, SUPPORTED, fmt

STUDY = "Brehmer et al. 2024, 'Does equivariance matter at scale?' (arXiv 2410.23179)"
EQUIVARIANT, BASELINE, AUGMENTED = "gatr", "transformer", "transformer+aug"
CLAIMS = {
    1: "Equivariance improves data efficiency; a transformer trained with data augmentation can close that gap "
       "given enough epochs.",
    2: "Test loss follows a power law in compute for both models, and the equivariant model (GATr) is better at "
       "every tested compute budget, by a similar factor.",
    3: "The compute-optimal split between model size and training steps differs: the transformer should scale "
       "training steps faster than model size; GATr the opposite.",
}


@dataclass(frozen=True)
class Evidence:
    """What the findings are judged on: the fits of every arm and the comparisons against the reference arm."""

    joint: Mapping[str, JointArm | Skipped]
    isoflop: Mapping[str, IsoflopArm | Skipped]
    frontier: Mapping[str, FrontierArm | Skipped]
    data: Mapping[str, DataEfficiencyArm | Skipped]
    budgets: Mapping[str, BudgetComparison | Skipped]  # "<arm>/<reference>"
    data_pairs: Mapping[str, DataComparison | Skipped]  # "<arm>/<other arm>"
    exponents: Mapping[str, ExponentComparison | Skipped]  # "<arm>-<reference>", joint law
    noise: NoiseEstimate
    settings: AnalysisSettings


def findings(ev: Evidence) -> list[Finding]:
    """The study's three findings, each with its checks and verdict."""
    return [finding_1(ev), finding_2(ev), finding_3(ev)]


def _spread(ev: Evidence) -> float | None:
    return ev.noise.sigma


def _finding(number: int, title: str, rule: str, checks: list[Check], figures: list[str]) -> Finding:
    verdict, reason = V.combine(checks)
    return Finding(number=number, title=title, claim=CLAIMS[number], rule=rule, checks=checks, verdict=verdict,
                   reason=reason, figures=figures)


# ---------------------------------------------------------------- finding 1


def _ratio_rows(comp: DataComparison, label: str, claim: str, rule: str, judge, ev: Evidence, *,
                claimed_winner: str, claimed_loser: str, margin: float | None = None) -> list[Check]:
    """One check per training-set size of a data comparison, diverged cells counting against their arm.

    A diverged cell of `claimed_winner` at a size fails the claim there; a size where every cell of
    `claimed_loser` diverged supports it.
    """
    rows = []
    largest = max((c.x for c in comp.at_size), default=None)
    lost = {(d.x, d.arm) for d in comp.diverged}
    for c in comp.at_size:
        where = f"D = {fmt(c.x)}" + (" (largest training set)" if c.x == largest else "")
        q = f"{label} at {where}"
        if (c.x, claimed_winner) in lost:
            rows.append(_judged(q, claim, rule, c.ratio, (NOT_SUPPORTED, f"a {claimed_winner} cell diverged here: "
                                                                         "counts as a loss"), spread=_spread(ev)))
            continue
        outcome = _with_note(judge(c.ratio), c.note)
        rows.append(_judged(q, claim, rule, c.ratio, outcome, margin=margin, spread=_spread(ev)))
    for d in comp.diverged:
        if not d.usable_left:
            verdict = (NOT_SUPPORTED if d.arm == claimed_winner else SUPPORTED if d.arm == claimed_loser
                       else INCONCLUSIVE)
            rows.append(_judged(f"{label} at D = {fmt(d.x)}", claim, rule, None,
                                (verdict, f"every {d.arm} cell diverged ({', '.join(d.cells)}): counts as a loss for "
                                          f"{d.arm}")))
    for note in comp.not_compared:
        rows.append(V.context(f"{label}: not compared", None, note))
    return rows


def finding_1(ev: Evidence) -> Finding:
    """Data efficiency: GATr below the transformer at every size; augmentation closes the gap (within margin)."""
    m = ev.settings.equivalence_margin
    checks: list[Check] = []
    rule_a = "directional: the interval of the converged-loss ratio lies wholly above 1, at every training-set size"
    base = ev.data_pairs.get(f"{BASELINE}/{EQUIVARIANT}")
    if isinstance(base, DataComparison) and base.at_size:
        checks += _ratio_rows(base, "loss ratio transformer / GATr", "> 1 (GATr better)", rule_a,
                              lambda e: V.above(e, 1.0), ev, claimed_winner=EQUIVARIANT, claimed_loser=BASELINE)
    else:
        checks.append(_missing("loss ratio transformer / GATr", "> 1", rule_a, base))
    rule_b = (f"closes the gap: the interval of the converged-loss ratio lies wholly below 1 + margin "
              f"(= {fmt(1 + m)}) at every training-set size; wholly above it: not supported")
    aug = ev.data_pairs.get(f"{AUGMENTED}/{EQUIVARIANT}")
    if isinstance(aug, DataComparison) and aug.at_size:
        checks += _ratio_rows(aug, "loss ratio transformer+aug / GATr", f"<= {fmt(1 + m)} (gap closed)", rule_b,
                              lambda e: V.below(e, 1 + m), ev, claimed_winner=AUGMENTED, claimed_loser=EQUIVARIANT,
                              margin=m)
    else:
        checks.append(_missing("loss ratio transformer+aug / GATr", f"<= {fmt(1 + m)}", rule_b, aug))
    gain = ev.data_pairs.get(f"{BASELINE}/{AUGMENTED}")
    if isinstance(gain, DataComparison):
        for c in gain.at_size:
            checks.append(V.context(f"loss ratio transformer / transformer+aug at D = {fmt(c.x)} (augmentation's gain)",
                                    c.ratio, c.note))
    for arm in (BASELINE, AUGMENTED, EQUIVARIANT):
        res = ev.data.get(arm)
        if isinstance(res, DataEfficiencyArm):
            epochs = ", ".join(f"D={fmt(p.D)}: {fmt(p.epochs)}" for p in res.points if p.epochs is not None)
            fit = res.fit
            delta = fit.params.get("delta") if isinstance(fit, LawResult) else None
            note = f"epochs reached: {epochs}" if epochs else None
            formula = fit.formula if isinstance(fit, LawResult) else "L(D)"
            checks.append(V.context(f"{arm}: data exponent delta of {formula} (size {res.size})", delta, note))
    return _finding(1, "Data efficiency",
                    "every judged row must be supported; diverged cells count as a loss for their arm", checks,
                    ["data_efficiency"])


# ---------------------------------------------------------------- finding 2


def finding_2(ev: Evidence) -> Finding:
    """Power law in compute; GATr better at every budget; by a similar factor (drift within the margin)."""
    s = ev.settings
    checks = [_power_law_check(arm, ev.frontier.get(arm), ev) for arm in (EQUIVARIANT, BASELINE)]
    for arm in (EQUIVARIANT, BASELINE):
        res = ev.frontier.get(arm)
        if isinstance(res, FrontierArm):
            if res.gamma is not None:
                checks.append(V.context(f"{arm}: gamma of L*(C) - E, joint law (primary frontier)", res.gamma))
            env = res.envelope.get("saturating")
            if isinstance(env, LawResult):
                checks.append(V.context(f"{arm}: gamma of {env.formula} on the envelope (cross-check)",
                                        env.params["gamma"]))
            for b in res.budgets:
                if b.status != "on envelope":
                    checks.append(V.context(f"{arm}: budget {fmt(b.budget)} FLOPs left off the envelope", None,
                                            f"{b.status}: {b.reason}"))
    rule_every = ("directional at every budget with cells of both models: the interval of transformer / GATr (best "
                  "configs, seed means) lies wholly above 1; a diverged GATr cell at a budget counts as a loss there")
    comp = ev.budgets.get(f"{BASELINE}/{EQUIVARIANT}")
    if isinstance(comp, BudgetComparison) and (comp.at_budget or comp.diverged):
        lost_gatr = {d.x for d in comp.diverged if d.arm == EQUIVARIANT}
        for c in comp.at_budget:
            q = f"loss ratio transformer / GATr at {fmt(c.x)} FLOPs"
            if c.x in lost_gatr:
                checks.append(_judged(q, "> 1", rule_every, c.ratio,
                                      (NOT_SUPPORTED, "a GATr cell diverged at this budget: counts as a loss"),
                                      spread=_spread(ev)))
                continue
            outcome = _with_note(V.above(c.ratio, 1.0), c.note)
            checks.append(_judged(q, "> 1", rule_every, c.ratio, outcome, spread=_spread(ev)))
        for d in comp.diverged:
            if not d.usable_left:
                verdict = NOT_SUPPORTED if d.arm == EQUIVARIANT else SUPPORTED
                checks.append(_judged(f"loss ratio transformer / GATr at {fmt(d.x)} FLOPs", "> 1", rule_every, None,
                                      (verdict, f"every {d.arm} cell diverged ({', '.join(d.cells)}): counts as a "
                                                f"loss for {d.arm}")))
        for note in comp.not_compared:
            checks.append(V.context("budget not compared", None, note))
        rule_similar = (f"equivalence: the ratio at the largest compared budget over the smallest (a line of ln ratio "
                        f"vs ln C) has its interval inside [{fmt(1 - s.equivalence_margin)}, "
                        f"{fmt(1 + s.equivalence_margin)}]; overlap is inconclusive")
        q = "drift of transformer / GATr across the compared budgets"
        if comp.drift is None:
            checks.append(_judged(q, "about 1 (similar factor)", rule_similar, None,
                                  (INCONCLUSIVE, "fewer than 2 budgets compared")))
        else:
            checks.append(_judged(q, "about 1 (similar factor)", rule_similar, comp.drift,
                                  V.within(comp.drift, 1 - s.equivalence_margin, 1 + s.equivalence_margin),
                                  margin=s.equivalence_margin, spread=_spread(ev)))
        if comp.gamma_difference is not None:
            checks.append(V.context("gamma(transformer) - gamma(GATr), joint-law frontiers", comp.gamma_difference))
        for c, law in zip(comp.at_budget, comp.law_ratio, strict=False):
            checks.append(V.context(f"L*(C) ratio transformer / GATr at {fmt(c.x)} FLOPs, joint laws", law))
    else:
        checks.append(_missing("loss ratio transformer / GATr per budget", "> 1 at every budget", rule_every, comp))
    return _finding(2, "Scaling with compute", "every judged row must be supported", checks, ["loss_vs_compute"])


# ---------------------------------------------------------------- finding 3


def finding_3(ev: Evidence) -> Finding:
    """Allocation: a < b (steps grow faster) for the transformer, a > b for GATr; the allocations differ."""
    checks: list[Check] = []
    expect = {BASELINE: ("< 0 (steps grow faster than size)", V.below),
              EQUIVARIANT: ("> 0 (size grows faster than steps)", V.above)}
    rule = ("directional: the interval of a - b (N* ~ C^a, S* ~ C^b along the family's real IsoFLOP curves) lies "
            "wholly on the claimed side of 0; the joint law decides, the IsoFLOP minima are the cross-check; a joint "
            f"law whose optimum sits at the end of the size range in more than {1 - ev.settings.min_refit_share:.0%} "
            "of resamples is extrapolated: inconclusive")
    min_refit = ev.settings.min_refit_share
    for arm, (claim, judge) in expect.items():
        joint, iso = ev.joint.get(arm), ev.isoflop.get(arm)
        if isinstance(joint, JointArm):
            share = joint.fit.bootstrap.ok_fraction
            est = joint.exponents["a_minus_b"]
            outcome = extrapolated_allocation(judge(est, 0.0, refit_share=share, min_refit_share=min_refit),
                                              joint.edge_fraction, min_refit)
            checks.append(_judged(f"{arm}: a - b, joint law (a = {fmt(joint.exponents['a'].value)}, b = "
                                  f"{fmt(joint.exponents['b'].value)})", claim, rule, est, outcome, refit=share))
            for name in ("a", "b"):
                checks.append(V.context(f"{arm}: {name}, joint law", joint.exponents[name]))
            if joint.edge_fraction > 0.05:
                checks.append(V.context(f"{arm}: optimum at the end of the size range in {joint.edge_fraction:.0%} "
                                        "of resamples", None, "the allocation extrapolates beyond the sampled sizes"))
        if isinstance(iso, IsoflopArm):
            share = iso.bootstrap.ok_fraction
            est = iso.exponents["a_minus_b"]
            row = _judged(f"{arm}: a - b, IsoFLOP minima ({iso.n_points} budgets; cross-check)", claim, rule, est,
                          judge(est, 0.0, refit_share=share, min_refit_share=min_refit), refit=share)
            # the cross-check decides only when the joint law could not be fitted
            checks.append(row if not isinstance(joint, JointArm) else V.context(row.quantity, est, row.verdict))
            checks.append(V.context(f"{arm}: a, IsoFLOP minima", iso.exponents["a"]))
        if not isinstance(joint, JointArm) and not isinstance(iso, IsoflopArm):
            checks.append(_missing(f"{arm}: a - b", claim, rule, joint))
    comp = ev.exponents.get(f"{BASELINE}-{EQUIVARIANT}")
    rule_diff = "directional: the interval of (a - b)(GATr) - (a - b)(transformer) lies wholly above 0"
    if isinstance(comp, ExponentComparison) and comp.a_minus_b_difference is not None:
        flipped = comp.a_minus_b_difference.map(lambda x: -x, decreasing=True)
        shares = [j.fit.bootstrap.ok_fraction for j in (ev.joint.get(BASELINE), ev.joint.get(EQUIVARIANT))
                  if isinstance(j, JointArm)]
        share = min(shares) if shares else None
        checks.append(_judged("(a - b)(GATr) - (a - b)(transformer), joint law", "> 0 (the allocations differ)",
                              rule_diff, flipped, V.above(flipped, 0.0, refit_share=share, min_refit_share=min_refit),
                              refit=share))
    else:
        checks.append(_missing("(a - b)(GATr) - (a - b)(transformer)", "> 0", rule_diff, comp))
    return _finding(3, "Compute-optimal allocation", "every judged row must be supported", checks,
                    ["optimal_allocation", "isoflop"])
