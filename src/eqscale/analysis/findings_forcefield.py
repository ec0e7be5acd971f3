"""The force-field study's findings (Ngo & Ravanbakhsh 2025, arXiv 2510.09768) as checks with written rules.

Same interface as findings_rigid (STUDY, REFERENCE_ARM, Evidence, `findings(ev)`), same verdict rules
(verdicts.py). Three claims: every family's loss is a power law in compute and its exponent gamma_C
rises along the symmetry staircase (judged step by step on the difference of adjacent families'
gamma_C); the compute-optimal allocation is a ~ b ~ 0.5 for every family; the symmetry loss lowers
the loss of the plain MPNN but leaves gamma_C unchanged. The differences and ratios of exponents
come from the joint fits' bootstrap samples (in memory during fit_all; findings.json keeps the
resulting intervals). `PAPER` holds paper 2's numbers, which the report prints beside ours.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from eqscale.analysis import findings_rigid
from eqscale.analysis import verdicts as V
from eqscale.analysis.bootstrap import estimate
from eqscale.analysis.compare import paired_difference

# the rule helpers both studies share (checks.py), so they judge alike
from eqscale.analysis.checks import extrapolated_allocation
from eqscale.analysis.checks import judged as _judged
from eqscale.analysis.checks import missing as _missing
from eqscale.analysis.checks import power_law_check
from eqscale.analysis.results import (
    BudgetComparison,
    Check,
    Estimate,
    ExponentComparison,
    Finding,
    FrontierArm,
    IsoflopArm,
    JointArm,
    LawResult,
    Skipped,
)
from eqscale.analysis.table import StudyTable
from eqscale.analysis.verdicts import NOT_SUPPORTED, fmt

STUDY = ("Ngo & Ravanbakhsh 2025, 'Scaling laws and symmetry, evidence from neural force fields' "
         "(arXiv 2510.09768)")
REFERENCE_ARM = "mpnn"  # comparisons in fit_all are "<arm>/mpnn" and "<arm>-mpnn"
PLAIN, AUGMENTED, SYMMETRY_LOSS = "mpnn", "mpnn+aug", "mpnn+sym"
# the staircase as the paper's gamma_C orders it: tiers of equal rank, each claimed above the one before
STAIRCASE: tuple[tuple[str, ...], ...] = (("mpnn",), ("egnn",), ("invariant", "tensor2"), ("tensor4",))
FAMILIES: tuple[str, ...] = tuple(f for tier in STAIRCASE for f in tier)
STEPS: tuple[tuple[str, str], ...] = tuple((lo, hi) for below, above in zip(STAIRCASE, STAIRCASE[1:])
                                           for lo in below for hi in above)
# the arms in the order of the staircase, the symmetry arms beside the plain MPNN (tables and figures)
ARM_ORDER: tuple[str, ...] = (PLAIN, AUGMENTED, SYMMETRY_LOSS, *FAMILIES[1:])
ALLOCATION = 0.5  # the paper: N* ~ C^a and D* ~ C^b with a ~ b ~ 0.5 for every family
CLAIMS = {
    1: "Test loss follows a power law in compute for every family, and the compute exponent gamma_C rises along "
       "the symmetry staircase as the paper's values order it: MPNN < EGNN < invariant (GemNet-OC) / tensor l<=2 "
       "(eSEN) < tensor l<=4 (eSEN).",
    2: "The compute-optimal allocation scales model size and training data about equally: N* ~ C^a and D* ~ C^b "
       "with a ~ b ~ 0.5, for every family.",
    3: "A symmetry loss (M rotated copies) improves the plain MPNN's data efficiency a little -- a lower loss at "
       "equal training data -- but does not change its compute exponent gamma_C (0.14 either way).",
}


@dataclass(frozen=True)
class PaperRow:
    """Paper 2's numbers for the arm that corresponds to one of ours."""

    arm: str
    model: str  # the paper's model
    gamma_c: float  # exponent of L(C) = L_inf + F*C^-gamma
    a: float = ALLOCATION  # N* ~ C^a ("about 0.5")
    b: float = ALLOCATION  # D* ~ C^b


PAPER: dict[str, PaperRow] = {r.arm: r for r in (
    PaperRow("mpnn", "MPNN (no rotation constraint)", 0.14),
    PaperRow("mpnn+sym", "MPNN + symmetry loss (M = 5)", 0.14),
    PaperRow("egnn", "multi-channel EGNN (l = 1)", 0.17),
    PaperRow("invariant", "GemNet-OC (invariant, angles)", 0.25),
    PaperRow("tensor2", "eSEN (l_max = 2)", 0.35),
    PaperRow("tensor4", "eSEN (l_max = 4)", 0.40),
)}


@dataclass(frozen=True)
class Evidence(findings_rigid.Evidence):
    """The shared evidence plus where each arm's scaling cells lie (equal-data comparisons stay inside them)."""

    cells: pd.DataFrame | None = None  # scaling cells: cell, arm, size, params, steps, status


def extra_evidence(table: StudyTable) -> dict[str, pd.DataFrame]:
    """What fit_all adds to Evidence for this study: every scaling cell with its status."""
    rows = table.rows
    columns = ["cell", "arm", "size", "params", "steps", "status", "test_mse", "test_mse_se", "const_velocity_mse"]
    return {"cells": rows.loc[rows["in_scaling"], [c for c in columns if c in rows]].reset_index(drop=True)}


def findings(ev: Evidence) -> list[Finding]:
    """The study's three findings, each with its checks and verdict."""
    return [finding_1(ev), finding_2(ev), finding_3(ev)]


def _finding(number: int, title: str, rule: str, checks: list[Check], figures: list[str]) -> Finding:
    verdict, reason = V.combine(checks)
    return Finding(number=number, title=title, claim=CLAIMS[number], rule=rule, checks=checks, verdict=verdict,
                   reason=reason, figures=figures)


def _refit_share(*arms: JointArm) -> float | None:
    """The smallest share of refitted resamples among the fits an estimate is built from."""
    shares = [a.fit.bootstrap.ok_fraction for a in arms if a.fit.bootstrap.ok_fraction is not None]
    return min(shares) if shares else None


def exponent_difference(hi: JointArm, lo: JointArm, name: str, confidence: float) -> Estimate:
    """name(hi) - name(lo) of two independent joint fits, resample i paired with resample i."""
    return paired_difference(hi.exponents[name].value, (hi.samples or {}).get(name), lo.exponents[name].value,
                             (lo.samples or {}).get(name), confidence)


def exponent_ratio(arm: JointArm, ref: JointArm, name: str, confidence: float) -> Estimate:
    """name(arm) / name(ref) of two independent joint fits, resample i paired with resample i."""
    sa, sb = (arm.samples or {}).get(name), (ref.samples or {}).get(name)
    with np.errstate(divide="ignore", invalid="ignore"):  # a reference exponent of 0: no ratio (NaN, inconclusive)
        value = float(np.divide(arm.exponents[name].value, ref.exponents[name].value))
        if sa is None or sb is None or min(sa.size, sb.size) < 2:
            return Estimate.of(value)
        m = min(sa.size, sb.size)
        return estimate(value, sa[:m] / sb[:m], confidence)


def step_quantity(lo: str, hi: str) -> str:
    """The quantity of a staircase step's check (the report finds the step's row by it)."""
    return f"staircase step {lo} -> {hi}: gamma_C({hi}) - gamma_C({lo}), joint law"


def _envelope(res: FrontierArm) -> LawResult | None:
    """The law fitted to the measured envelope (with a floor if it fitted, else the pure power law)."""
    for name in ("saturating", "power_law"):
        law = res.envelope.get(name)
        if isinstance(law, LawResult):
            return law
    return None


# ---------------------------------------------------------------- finding 1


def finding_1(ev: Evidence) -> Finding:
    """Power law per family; gamma_C rises at every step of the staircase (difference interval above 0)."""
    s = ev.settings
    checks = [power_law_check(arm, ev.frontier.get(arm), ev) for arm in FAMILIES]
    for arm in FAMILIES:
        res = ev.frontier.get(arm)
        paper = PAPER[arm]
        if isinstance(res, FrontierArm):
            if res.gamma is not None:
                checks.append(V.context(f"{arm}: gamma_C of L*(C) - E, joint law (paper, {paper.model}: "
                                        f"{fmt(paper.gamma_c)})", res.gamma))
            env = _envelope(res)
            if env is not None:
                checks.append(V.context(f"{arm}: gamma_C of {env.formula} on the envelope (cross-check)",
                                        env.params["gamma"]))
            diverged = [c for b in res.budgets for c in b.diverged]
            if diverged:
                checks.append(V.context(f"{arm}: {len(diverged)} diverged cell(s), left out of its fits", None,
                                        "they count against the family in the budget comparisons"))
    rule = ("directional, step by step: the bootstrap interval of gamma_C(upper) - gamma_C(lower) (gamma_C of "
            "L*(C) - E from each family's joint law; resamples of the two fits paired) lies wholly above 0: "
            "supported; wholly below: not supported; containing 0: inconclusive (equal exponents are never "
            f"support); at least {s.min_refit_share:.0%} of each fit's resamples refitted; where either law's optimum "
            f"sits at the end of the size range in more than {1 - s.min_refit_share:.0%} of resamples, its L*(C) is "
            "extrapolated: inconclusive")
    for lo, hi in STEPS:
        q = step_quantity(lo, hi)
        claim = f"> 0 (paper: {PAPER[hi].gamma_c - PAPER[lo].gamma_c:+.2f})"
        j_lo, j_hi = ev.joint.get(lo), ev.joint.get(hi)
        if not isinstance(j_lo, JointArm) or not isinstance(j_hi, JointArm):
            checks.append(_missing(q, claim, rule, j_hi if isinstance(j_lo, JointArm) else j_lo))
            continue
        est = exponent_difference(j_hi, j_lo, "gamma", s.confidence)
        share = _refit_share(j_lo, j_hi)
        # gamma_C is the slope of the law's minimum over sizes: extrapolated when that minimum sits at the edge
        outcome = extrapolated_allocation(V.above(est, 0.0, refit_share=share, min_refit_share=s.min_refit_share),
                                          max(j_lo.edge_fraction, j_hi.edge_fraction), s.min_refit_share)
        checks.append(_judged(q, claim, rule, est, outcome, refit=share))
    # one tier of the staircase: the paper's numbers differ, the claim judged here does not order them
    for tier in STAIRCASE:
        for i, lo in enumerate(tier):
            for hi in tier[i + 1:]:
                j_lo, j_hi = ev.joint.get(lo), ev.joint.get(hi)
                if isinstance(j_lo, JointArm) and isinstance(j_hi, JointArm):
                    checks.append(V.context(f"gamma_C({hi}) - gamma_C({lo}), one tier of the staircase (paper: "
                                            f"{PAPER[hi].gamma_c - PAPER[lo].gamma_c:+.2f})",
                                            exponent_difference(j_hi, j_lo, "gamma", s.confidence)))
    return _finding(1, "Power law in compute; gamma_C along the symmetry staircase",
                    "every judged row must be supported: a power law for every family and a rise of gamma_C at "
                    "every step; the report lists each step's verdict", checks, ["loss_vs_compute", "staircase"])


# ---------------------------------------------------------------- finding 2


def finding_2(ev: Evidence) -> Finding:
    """a and b each within 0.5 x (1 +- margin) for every family: the joint law decides, IsoFLOP cross-checks."""
    s = ev.settings
    lo, hi = ALLOCATION * (1 - s.equivalence_margin), ALLOCATION * (1 + s.equivalence_margin)
    rule = (f"equivalence: the interval of a (N* ~ C^a) and of b (D* ~ C^b; single epoch, so D = steps x batch and "
            f"b is the steps' exponent) along the family's real IsoFLOP curves lies inside [{fmt(lo)}, {fmt(hi)}] "
            f"= 0.5 x (1 +- margin); wholly outside: not supported; overlap: inconclusive; the joint law decides, "
            "the IsoFLOP minima decide only without it; a joint law whose optimum sits at the end of the size range "
            f"in more than {1 - s.min_refit_share:.0%} of resamples is extrapolated: inconclusive")
    checks: list[Check] = []
    for arm in FAMILIES:
        joint, iso = ev.joint.get(arm), ev.isoflop.get(arm)
        if isinstance(joint, JointArm):
            share = joint.fit.bootstrap.ok_fraction
            for name in ("a", "b"):
                est = joint.exponents[name]
                outcome = extrapolated_allocation(
                    V.within(est, lo, hi, refit_share=share, min_refit_share=s.min_refit_share),
                    joint.edge_fraction, s.min_refit_share)
                checks.append(_judged(f"{arm}: {name}, joint law", f"about {fmt(ALLOCATION)}", rule, est, outcome,
                                      margin=s.equivalence_margin, refit=share))
            checks.append(V.context(f"{arm}: a - b, joint law", joint.exponents["a_minus_b"]))
            if joint.edge_fraction > 0.05:
                checks.append(V.context(f"{arm}: optimum at the end of the size range in {joint.edge_fraction:.0%} "
                                        "of resamples", None, "the allocation extrapolates beyond the sampled sizes"))
        if isinstance(iso, IsoflopArm):
            share = iso.bootstrap.ok_fraction
            for name in ("a", "b"):
                est = iso.exponents[name]
                row = _judged(f"{arm}: {name}, IsoFLOP minima ({iso.n_points} budgets; cross-check)",
                              f"about {fmt(ALLOCATION)}", rule, est,
                              V.within(est, lo, hi, refit_share=share, min_refit_share=s.min_refit_share),
                              margin=s.equivalence_margin, refit=share)
                # the cross-check decides only when the joint law could not be fitted
                checks.append(row if not isinstance(joint, JointArm) else V.context(row.quantity, est, row.verdict))
        if not isinstance(joint, JointArm) and not isinstance(iso, IsoflopArm):
            checks.append(_missing(f"{arm}: a and b", f"about {fmt(ALLOCATION)}", rule, joint))
    return _finding(2, "Compute-optimal allocation a ~ b ~ 0.5", "every judged row must be supported", checks,
                    ["optimal_allocation", "isoflop"])


# ---------------------------------------------------------------- finding 3


@dataclass(frozen=True)
class EqualData:
    """L_arm / L_ref of two joint laws at one size and one number of steps (= training data) both arms ran."""

    size: str
    params: float
    steps: float
    ratio: Estimate


def equal_data_ratios(arm: JointArm, ref: JointArm, cells: pd.DataFrame | None, arm_name: str, ref_name: str,
                      confidence: float) -> list[EqualData]:
    """Per size both arms trained: the laws' loss ratio at the most steps both ran at that size.

    Single epoch, so equal steps are equal training data; the point lies inside both arms' cells, so
    neither law extrapolates. Resample i of one fit is paired with resample i of the other.
    """
    if cells is None or cells.empty:
        return []
    out = []
    usable = cells[cells["status"] == "ok"]
    a_cells, r_cells = usable[usable["arm"] == arm_name], usable[usable["arm"] == ref_name]
    for size in sorted(set(a_cells["size"]) & set(r_cells["size"]), key=lambda z: a_cells["params"][
            a_cells["size"] == z].median()):
        sa, sr = a_cells[a_cells["size"] == size], r_cells[r_cells["size"] == size]
        steps = min(sa["steps"].max(), sr["steps"].max())
        if steps < max(sa["steps"].min(), sr["steps"].min()):
            continue  # the arms' steps at this size do not overlap
        n = float(sa["params"].median())
        value = float(_law(np.array([arm.fit.point.params]), n, steps)[0] /
                      _law(np.array([ref.fit.point.params]), n, steps)[0])
        pa, pr = arm.fit.samples, ref.fit.samples
        m = min(len(pa), len(pr)) if pa is not None and pr is not None else 0
        ratio = (estimate(value, _law(pa[:m], n, steps) / _law(pr[:m], n, steps), confidence) if m >= 2
                 else Estimate.of(value))
        out.append(EqualData(size=str(size), params=n, steps=float(steps), ratio=ratio))
    return out


def _clearly_below_zero_predictor(cells: pd.DataFrame | None, arm: str) -> set[str]:
    """Sizes where a usable cell of `arm` beats the zero predictor by more than 2 standard errors of its loss."""
    if cells is None or "const_velocity_mse" not in cells:
        return set()
    ok = cells[(cells["arm"] == arm) & (cells["status"] == "ok")]
    se = ok["test_mse_se"].fillna(0.0) if "test_mse_se" in ok else 0.0
    return set(ok.loc[ok["test_mse"] + 2 * se < ok["const_velocity_mse"], "size"])


def _diverged_by_size(cells: pd.DataFrame | None, arm: str) -> dict[str, list[str]]:
    """The diverged scaling cells of an arm, by size."""
    if cells is None or cells.empty:
        return {}
    bad = cells[(cells["arm"] == arm) & (cells["status"] == "diverged")]
    return {str(size): list(group["cell"]) for size, group in bad.groupby("size")}


def _law(params: np.ndarray, n: float, s: float) -> np.ndarray:
    """L(N, S) = E + A*N^-alpha + B*S^-beta for each row of (E, A, alpha, B, beta)."""
    e, a, alpha, b, beta = np.asarray(params, float).T
    return e + a * n ** -alpha + b * s ** -beta


def finding_3(ev: Evidence) -> Finding:
    """Symmetry loss: below the plain MPNN at equal data at every size; gamma_C ratio within 1 +- margin."""
    s = ev.settings
    m = s.equivalence_margin
    checks: list[Check] = []
    js, jp = ev.joint.get(SYMMETRY_LOSS), ev.joint.get(PLAIN)
    both = isinstance(js, JointArm) and isinstance(jp, JointArm)
    missing = js if not isinstance(js, JointArm) else jp
    rule_better = ("directional at every size both arms trained: the interval of L_sym(N, D) / L_mpnn(N, D) of the two "
                   "joint laws, at the most training data D (one epoch: steps x batch) both ran at that size, lies "
                   "wholly below 1; wholly above: not supported (resamples paired; the point lies inside both arms' "
                   f"cells); at least {s.min_refit_share:.0%} of each fit's resamples refitted; a diverged mpnn+sym "
                   "cell of a size counts as a loss there where a plain mpnn cell of that size beats the zero predictor "
                   "by more than 2 standard errors")
    label = f"loss ratio {SYMMETRY_LOSS} / {PLAIN} at equal data"
    rows = equal_data_ratios(js, jp, ev.cells, SYMMETRY_LOSS, PLAIN, s.confidence) if both else []
    share = _refit_share(js, jp) if both else None
    lost = _diverged_by_size(ev.cells, SYMMETRY_LOSS)
    # a diverged mpnn+sym cell (one above the zero predictor) is a loss only where the plain mpnn clearly beats
    # that predictor at its size: where both sit at the trivial prediction, which side of it they land is noise
    plain_ok = _clearly_below_zero_predictor(ev.cells, PLAIN)
    for size in [size for size in lost if size not in plain_ok]:
        checks.append(V.context(f"{label}, size {size}", None, f"mpnn+sym cells of this size diverged "
                                f"({', '.join(lost.pop(size))}), and no plain mpnn cell of it beats the zero predictor "
                                "by more than 2 standard errors: no comparison"))
    for r in rows:
        outcome = V.below(r.ratio, 1.0, refit_share=share, min_refit_share=s.min_refit_share)
        if r.size in lost:
            outcome = (NOT_SUPPORTED, f"{len(lost[r.size])} mpnn+sym cell(s) of this size diverged: a loss")
        checks.append(_judged(f"{label}, size {r.size} (N = {fmt(r.params)}, {fmt(r.steps)} steps), joint laws",
                              "< 1 (the symmetry loss helps)", rule_better, r.ratio, outcome, refit=share))
    for size in sorted(set(lost) - {r.size for r in rows}):
        checks.append(_judged(f"{label}, size {size}", "< 1 (the symmetry loss helps)", rule_better, None,
                              (NOT_SUPPORTED, f"mpnn+sym cells of this size diverged ({', '.join(lost[size])}): a "
                                              "loss")))
    if not rows:
        checks.append(_missing(label, "< 1 at every size", rule_better,
                               missing if not both else Skipped("no size where both arms ran overlapping steps")))
    rule_slope = (f"equivalence: the interval of gamma_C(mpnn+sym) / gamma_C(mpnn) (joint laws; resamples paired) "
                  f"lies inside [{fmt(1 - m)}, {fmt(1 + m)}] = 1 +- margin: supported; wholly outside: not "
                  f"supported (the slope changed); overlap: inconclusive; at least {s.min_refit_share:.0%} of each "
                  "fit's resamples refitted")
    q = f"gamma_C({SYMMETRY_LOSS}) / gamma_C({PLAIN}), joint law"
    if both:
        est = exponent_ratio(js, jp, "gamma", s.confidence)
        checks.append(_judged(q, "about 1 (slope unchanged)", rule_slope, est,
                              V.within(est, 1 - m, 1 + m, refit_share=share, min_refit_share=s.min_refit_share),
                              margin=m, refit=share))
        checks.append(V.context(f"gamma_C({SYMMETRY_LOSS}) - gamma_C({PLAIN}), joint law (paper: +0.00)",
                                exponent_difference(js, jp, "gamma", s.confidence)))
        for name, note in (("alpha", None), ("beta", "the paper: the symmetry loss raises the data exponent")):
            checks.append(V.context(f"{name}({SYMMETRY_LOSS}) - {name}({PLAIN}), joint law",
                                    _param_difference(js, jp, name, s.confidence), note))
    else:
        checks.append(_missing(q, "about 1", rule_slope, missing))
    exps = ev.exponents.get(f"{SYMMETRY_LOSS}-{PLAIN}")
    if isinstance(exps, ExponentComparison):
        checks.append(V.context(f"a({SYMMETRY_LOSS}) - a({PLAIN}), joint law", exps.a_difference))
    checks += _budget_context(SYMMETRY_LOSS, ev)
    checks += _budget_context(AUGMENTED, ev)
    ja = ev.joint.get(AUGMENTED)
    if isinstance(ja, JointArm) and isinstance(jp, JointArm):
        checks.append(V.context(f"gamma_C({AUGMENTED}) / gamma_C({PLAIN}), joint law",
                                exponent_ratio(ja, jp, "gamma", s.confidence)))
        for r in equal_data_ratios(ja, jp, ev.cells, AUGMENTED, PLAIN, s.confidence):
            checks.append(V.context(f"loss ratio {AUGMENTED} / {PLAIN} at equal data, size {r.size}, joint laws",
                                    r.ratio))
    return _finding(3, "The symmetry loss: lower loss at equal data, same slope",
                    "every judged row must be supported; 'a little' is not judged (the paper gives no size), the "
                    "ratios show it", checks, ["loss_vs_compute", "staircase"])


def _budget_context(arm: str, ev: Evidence) -> list[Check]:
    """Measured loss ratios of an arm over the plain MPNN at equal compute, shown without verdicts.

    The symmetry loss runs 1 + M passes per step, so at equal compute it sees fewer configurations:
    the claim is about data, and these rows show what the extra passes cost.
    """
    comp = ev.budgets.get(f"{arm}/{PLAIN}")
    if not isinstance(comp, BudgetComparison):
        return []
    rows = [V.context(f"loss ratio {arm} / {PLAIN} at equal compute, {fmt(c.x)} FLOPs (measured)", c.ratio, c.note)
            for c in comp.at_budget]
    rows += [V.context(f"{arm} / {PLAIN} at {fmt(d.x)} FLOPs", None, f"diverged {d.arm} cells: {', '.join(d.cells)}")
             for d in comp.diverged]
    if comp.drift is not None:
        rows.append(V.context(f"drift of {arm} / {PLAIN} across the compared budgets", comp.drift))
    return rows


def _param_difference(arm: JointArm, ref: JointArm, name: str, confidence: float) -> Estimate:
    """A joint-law parameter of arm minus ref's (bootstrap columns paired by index)."""
    i = list(arm.fit.params).index(name)
    sa = arm.fit.samples[:, i] if arm.fit.samples is not None and arm.fit.samples.size else None
    sb = ref.fit.samples[:, i] if ref.fit.samples is not None and ref.fit.samples.size else None
    return paired_difference(arm.fit.params[name].value, sa, ref.fit.params[name].value, sb, confidence)

