"""Comparisons between arms: paired ratios of cells, drift of a ratio with compute, differences of exponents.

Cells of different arms are compared directly (seed means of the best config at a budget, or of the
cells at a training-set size). Their ratio's interval pairs the evaluation resamples -- resample r
of both cells uses the same test samples, so evaluation noise shared by the cells cancels -- and adds
the training noise of each side (noise.py: sigma^2 / seeds, widened by t/z for its degrees of
freedom). Without a training-noise estimate a single-cell ratio gets no interval: it would rest on
evaluation noise alone. Fitted quantities of independent fits (exponents, law values) pair resample
i of one arm with resample i of the other.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from eqscale.analysis.allocation import slopes
from eqscale.analysis.bootstrap import estimate, percentile_interval
from eqscale.analysis.compute import ComputeModel
from eqscale.analysis.evaluation import EvalResamples
from eqscale.analysis.joint import allocation_samples
from eqscale.analysis.results import (
    BudgetComparison,
    CellRatio,
    DataComparison,
    DataEfficiencyArm,
    DivergedAt,
    Estimate,
    ExponentComparison,
    IsoflopArm,
    JointArm,
    NoiseEstimate,
    Skipped,
)
from eqscale.analysis.table import StudyTable, seed_means


@dataclass(frozen=True)
class RatioSamples:
    """A paired ratio, its resampled values (row r: evaluation resample r plus training noise) and its
    standard error in ln (training noise and the variance of the evaluation resamples)."""

    value: float
    samples: np.ndarray | None  # (R,), None without a training-noise estimate
    log_se: float | None = None


def noise_scale(noise: NoiseEstimate, confidence: float) -> float | None:
    """Training-noise sigma widened by t_dof/z, so few degrees of freedom give honestly wider intervals."""
    if noise.sigma is None:
        return None
    q = (1 + confidence) / 2
    widen = stats.t.ppf(q, noise.dof) / stats.norm.ppf(q) if noise.dof > 0 else 1.0
    return float(noise.sigma * widen)


def ratio_samples(rows_a: list[int], rows_b: list[int], table: pd.DataFrame, evals: EvalResamples,
                  sigma: float | None, rng: np.random.Generator) -> RatioSamples:
    """Geometric-mean loss of rows_a over rows_b, and its paired resamples."""
    loss = table["test_mse"].to_numpy(float)
    value = float(np.exp(np.log(loss[rows_a]).mean() - np.log(loss[rows_b]).mean()))
    if sigma is None or evals.n_resamples == 0:
        return RatioSamples(value, None)
    log_eval = np.log(evals.loss)
    log_ratio = log_eval[:, rows_a].mean(axis=1) - log_eval[:, rows_b].mean(axis=1)
    train_sd = sigma * math.sqrt(1 / len(rows_a) + 1 / len(rows_b))
    eval_var = float(np.var(log_ratio, ddof=1)) if log_ratio.size >= 2 else 0.0
    log_ratio = log_ratio + train_sd * rng.standard_normal(log_ratio.size)
    return RatioSamples(value, np.exp(log_ratio), math.sqrt(train_sd ** 2 + eval_var))


def _estimate(r: RatioSamples, confidence: float) -> Estimate:
    """The ratio's interval: normal in ln with its standard error (stabler than the tails of a few hundred
    resamples, which make percentile intervals too narrow), or none without a training-noise estimate."""
    if r.samples is None or r.log_se is None:
        return Estimate.of(r.value)
    z = stats.norm.ppf((1 + confidence) / 2)
    return Estimate.of(r.value, r.value * math.exp(-z * r.log_se), r.value * math.exp(z * r.log_se))


def _rng(seed: int, key: str) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(key.encode())])


def _best_config(rows: pd.DataFrame) -> pd.Series:
    configs = seed_means(rows, ["size"])
    return configs.loc[configs["test_mse"].idxmin()]


def compare_budgets(table: StudyTable, arm: str, ref: str, evals: EvalResamples, noise: NoiseEstimate, *,
                    joint: Mapping[str, JointArm | Skipped], models: Mapping[str, ComputeModel], confidence: float,
                    seed: int) -> BudgetComparison:
    """`arm` against `ref` at every budget of their scaling cells: ratio of the best configs' seed-mean losses."""
    sigma = noise_scale(noise, confidence)
    rng = _rng(seed, f"budgets/{arm}/{ref}")
    all_a, all_b = table.scaling(arm, usable=False), table.scaling(ref, usable=False)
    ratios, samples, not_compared, diverged = [], [], [], []
    for budget in sorted(set(all_a["budget"]) | set(all_b["budget"])):
        a, b = all_a[all_a["budget"] == budget], all_b[all_b["budget"] == budget]
        if a.empty or b.empty:
            only = arm if b.empty else ref
            not_compared.append(f"{budget:.3g} FLOPs: only {only} has cells")
            continue
        ua, ub = a[a["status"] == "ok"], b[b["status"] == "ok"]
        diverged += _diverged(float(budget), ((arm, a, ua), (ref, b, ub)))
        if ua.empty or ub.empty:
            continue
        best_a, best_b = _best_config(ua), _best_config(ub)
        r = ratio_samples(list(best_a["rows"]), list(best_b["rows"]), table.rows, evals, sigma, rng)
        note = None if r.samples is not None else "no interval: training noise unknown"
        ratios.append(CellRatio(x=float(budget), ratio=_estimate(r, confidence), cells_a=list(best_a["cells"]),
                                cells_b=list(best_b["cells"]), n_seeds=[int(best_a["n_seeds"]), int(best_b["n_seeds"])],
                                note=note))
        samples.append(r)
    drift = _drift([c.x for c in ratios], samples, confidence)
    law, gamma = _law_comparison(arm, ref, [c.x for c in ratios], joint, models, confidence)
    return BudgetComparison(at_budget=ratios, not_compared=not_compared, diverged=diverged, drift=drift,
                            law_ratio=law, gamma_difference=gamma)


def _diverged(x: float, sides: tuple) -> list[DivergedAt]:
    """The arms with diverged cells at x, and whether usable cells of theirs remain."""
    out = []
    for name, rows, usable in sides:
        bad = list(rows.loc[rows["status"] == "diverged", "cell"])
        if bad:
            out.append(DivergedAt(x=x, arm=name, cells=bad, usable_left=not usable.empty))
    return out


def _drift(budgets: list[float], ratios: list[RatioSamples], confidence: float) -> Estimate | None:
    """Ratio at the largest budget over the smallest, from a least-squares line of ln ratio against ln C."""
    if len(budgets) < 2:
        return None
    x = np.log(np.array(budgets))
    span = float(np.ptp(x))
    value = float(np.exp(slopes(x, np.log([r.value for r in ratios])[None, :])[0] * span))
    if any(r.samples is None for r in ratios):
        return Estimate.of(value)
    draws = np.log(np.vstack([r.samples for r in ratios]).T)  # (R, budgets)
    return estimate(value, np.exp(slopes(x, draws) * span), confidence)


def _law_comparison(arm: str, ref: str, budgets: list[float], joint: Mapping[str, JointArm | Skipped],
                    models: Mapping[str, ComputeModel], confidence: float) -> tuple[list[Estimate], Estimate | None]:
    ja, jb = joint.get(arm), joint.get(ref)
    if not isinstance(ja, JointArm) or not isinstance(jb, JointArm):
        return [], None
    gamma = paired_difference(ja.exponents["gamma"].value, ja.samples["gamma"], jb.exponents["gamma"].value,
                              jb.samples["gamma"], confidence)
    if not budgets:
        return [], gamma
    c = np.array(budgets)
    pa, sa = allocation_samples(ja, models[ja.family], c)
    pb, sb = allocation_samples(jb, models[jb.family], c)
    m = min(sa.log_loss.shape[0], sb.log_loss.shape[0])
    ratio = np.exp(pa.log_loss[0] - pb.log_loss[0])
    draws = np.exp(sa.log_loss[:m] - sb.log_loss[:m])
    lo, hi = percentile_interval(draws, confidence) if m >= 2 else (np.full(c.size, np.nan),) * 2
    return [Estimate.of(float(v), float(lo[i]), float(hi[i])) for i, v in enumerate(ratio)], gamma


def compare_data(table: StudyTable, data: Mapping[str, DataEfficiencyArm | Skipped], arm: str, ref: str,
                 evals: EvalResamples, noise: NoiseEstimate, *, confidence: float, seed: int) -> DataComparison:
    """`arm` against `ref` at every training-set size both have converged cells at."""
    da, db = data.get(arm), data.get(ref)
    sigma = noise_scale(noise, confidence)
    rng = _rng(seed, f"data/{arm}/{ref}")
    index = {c: i for i, c in enumerate(table.rows["cell"])}
    points_a = {p.D: p for p in da.points} if isinstance(da, DataEfficiencyArm) else {}
    points_b = {p.D: p for p in db.points} if isinstance(db, DataEfficiencyArm) else {}
    ratios, not_compared, diverged = [], [], []
    x_col = next((p.x for p in (da, db) if isinstance(p, DataEfficiencyArm)), "num_train_trajectories")
    for name, points in ((arm, points_a), (ref, points_b)):
        rows = table.data_efficiency(name, usable=False)
        for d, group in rows[rows["status"] == "diverged"].groupby(x_col):
            diverged.append(DivergedAt(x=float(d), arm=name, cells=list(group["cell"]),
                                       usable_left=float(d) in points))
    for d in sorted(set(points_a) | set(points_b)):
        if d not in points_a or d not in points_b:
            not_compared.append(f"D = {d:g}: only {arm if d in points_a else ref} has converged cells")
            continue
        pa, pb = points_a[d], points_b[d]
        r = ratio_samples([index[c] for c in pa.cells], [index[c] for c in pb.cells], table.rows, evals, sigma, rng)
        ratios.append(CellRatio(x=float(d), ratio=_estimate(r, confidence), cells_a=pa.cells, cells_b=pb.cells,
                                n_seeds=[pa.n_seeds, pb.n_seeds],
                                note=None if r.samples is not None else "no interval: training noise unknown"))
    return DataComparison(at_size=ratios, not_compared=not_compared, diverged=diverged)


def paired_difference(value_a: float, samples_a: np.ndarray | None, value_b: float, samples_b: np.ndarray | None,
                      confidence: float) -> Estimate:
    """a - b with an interval from pairing independent bootstrap samples."""
    if samples_a is None or samples_b is None:
        return Estimate.of(value_a - value_b)
    m = min(samples_a.size, samples_b.size)
    if m < 2:
        return Estimate.of(value_a - value_b)
    return estimate(value_a - value_b, samples_a[:m] - samples_b[:m], confidence)


def compare_exponents(arm: JointArm | IsoflopArm, ref: JointArm | IsoflopArm, confidence: float) -> ExponentComparison:
    """a and a - b of an arm minus the reference arm's."""
    def diff(name: str) -> Estimate:
        return paired_difference(arm.exponents[name].value, arm.samples.get(name), ref.exponents[name].value,
                                 ref.samples.get(name), confidence)
    return ExponentComparison(a_difference=diff("a"), a_minus_b_difference=diff("a_minus_b"))
