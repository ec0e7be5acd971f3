"""Every fit of every arm over the summary table, the comparisons and the findings: `fit_all` -> `Fits`.

Order: the table is checked (table.py) and every cell's test MSE resampled over the test samples
(evaluation.py); each family's compute model F(N) is built (compute.py); per arm, in parallel when
asked, the joint law and its allocation (joint.py), the IsoFLOP parabolas (isoflop.py), the envelope
fits (frontier.py) and the data-efficiency points (data_efficiency.py); then the training noise
(noise.py), the frontiers, the comparisons against the study's reference arm (compare.py) and the
study's findings (the `study` module: findings_rigid.py or findings_forcefield.py, see studies.py).
A fit that cannot be done is recorded as Skipped with its reason; only a summary without the
required columns raises FitError.

Seeds: every (fit, arm) resamples its cells with its own seed (`arm_seed`), so adding an arm changes
no other arm's numbers and `jobs` changes nothing; the evaluation resamples share one seed, so
resample r of every cell uses the same test samples (paired across arms).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from eqscale.analysis import findings_rigid
from eqscale.analysis.bootstrap import arm_seed
from eqscale.analysis.compare import compare_budgets, compare_data, compare_exponents
from eqscale.analysis.compute import ComputeModel, family_compute
from eqscale.analysis.data_efficiency import fit_data_efficiency
from eqscale.analysis.errors import FitError
from eqscale.analysis.evaluation import EvalResamples, SampleLosses, evaluation_resamples
from eqscale.analysis.frontier import fit_envelope, frontier_arm
from eqscale.analysis.isoflop import fit_isoflop
from eqscale.analysis.joint import fit_joint, residuals
from eqscale.analysis.noise import estimate_noise, unshared_eval_var
from eqscale.analysis.powerlaw import DATA, DATA_POWER, FRONTIER, FRONTIER_POWER, JOINT
from eqscale.analysis.results import (
    AnalysisSettings,
    BootstrapSettings,
    ComputeFile,
    DataEfficiencyFile,
    EvaluationSummary,
    FindingsFile,
    Fits,
    FrontierFile,
    IsoflopFile,
    JointArm,
    JointFile,
    Skipped,
)
from eqscale.analysis.table import StudyTable, read_table
from eqscale.cells import ARMS, REFERENCE_ARM

KINDS = ("joint", "isoflop", "envelope", "data_efficiency")
WHAT = {"joint": "joint fit", "isoflop": "IsoFLOP", "envelope": "frontier", "data_efficiency": "data efficiency"}


def settings_from_config(config: Mapping[str, Any] | None) -> AnalysisSettings:
    """AnalysisSettings from the config sections `analysis` (and `evaluation.target_rel_se`); defaults elsewhere."""
    config = config or {}
    analysis = dict(config.get("analysis") or {})
    known = {f.name for f in dataclasses.fields(AnalysisSettings)}
    values = {k: v for k, v in analysis.items() if k in known}
    target = (config.get("evaluation") or {}).get("target_rel_se")
    if target is not None:
        values["target_rel_se"] = float(target)
    return AnalysisSettings(**values)


def _run(task: tuple[str, str, pd.DataFrame, ComputeModel | None, np.ndarray | None, dict[str, Any]]) -> Any:
    """One (fit, arm): its result, or Skipped with the FitError's message."""
    kind, arm, cells, model, evals, opts = task
    what = f"{WHAT[kind]} of {arm}"
    if cells is None:
        return Skipped(f"{what}: not fitted (left out of this run)")
    try:
        if cells.empty:
            raise FitError(f"{what}: no usable cells")
        if kind == "joint":
            return fit_joint(cells, model, eval_loss=evals, what=what, **opts)
        if kind == "isoflop":
            return fit_isoflop(cells, model, eval_loss=evals, what=what, **opts)
        if kind == "envelope":
            return fit_envelope(cells, eval_loss=evals, what=what, **opts)
        return fit_data_efficiency(cells, eval_loss=evals, what=what, **opts)
    except FitError as err:
        return Skipped(str(err))


def _cells_of(table: StudyTable, kind: str, arm: str) -> pd.DataFrame:
    return table.data_efficiency(arm) if kind == "data_efficiency" else table.scaling(arm)


def fit_all(summary: pd.DataFrame, *, samples: SampleLosses | None = None, settings: AnalysisSettings | None = None,
            n_resamples: int | None = None, seed: int | None = None, confidence: float | None = None,
            jobs: int = 1, study: Any = findings_rigid, kinds: tuple[str, ...] = KINDS, data_law: bool = True) -> Fits:
    """Every fit of every arm, the comparisons and the findings (n_resamples/seed/confidence override settings).

    `kinds` and `data_law` leave fits out (tests of a part): a kind left out is recorded as Skipped.
    """
    s = settings or AnalysisSettings()
    s = dataclasses.replace(s, **{k: v for k, v in (("bootstrap", n_resamples), ("seed", seed),
                                                        ("confidence", confidence)) if v is not None})
    if not 0 < s.confidence < 1:
        raise FitError(f"confidence must be in (0, 1), got {s.confidence}")
    if s.bootstrap < 0:
        raise FitError(f"the number of bootstrap resamples must be >= 0, got {s.bootstrap}")
    table = read_table(summary, diverged_cv_ratio=s.diverged_cv_ratio)
    rows = table.rows
    evals = evaluation_resamples(rows, samples, s.bootstrap, s.seed)
    arms = table.arms()
    models, compute_records = _compute_models(table)
    tasks = []
    for kind in KINDS:
        for arm in arms:
            if kind not in kinds:
                tasks.append((kind, arm, None, None, None, {}))
                continue
            cells = _cells_of(table, kind, arm)
            model = models.get(_compute_group(rows.loc[rows["arm"] == arm].iloc[0]))
            opts = {"n_resamples": s.bootstrap, "confidence": s.confidence, "seed": arm_seed(s.seed, kind, arm)}
            if kind == "data_efficiency":
                opts["law"] = data_law
            cell_evals = evals.loss[:, cells.index.to_numpy()] if s.bootstrap else None
            if kind in ("joint", "isoflop") and not isinstance(model, ComputeModel):
                tasks.append((kind, arm, cells.iloc[0:0], None, None, opts))
                continue
            tasks.append((kind, arm, cells.reset_index(drop=True), model, cell_evals, opts))
    results = _map(_run, tasks, jobs)
    by_kind: dict[str, dict[str, Any]] = {kind: {} for kind in KINDS}
    for (kind, arm, *_), res in zip(tasks, results, strict=True):
        by_kind[kind][arm] = res
    joint, isoflop, envelope, data = (by_kind[k] for k in KINDS)

    fitted_arms = [arm for arm, res in joint.items() if isinstance(res, JointArm)]
    fitted = [residuals(joint[arm], table.scaling(arm)) for arm in fitted_arms]
    eval_var = (float(np.mean([unshared_eval_var(np.log(evals.loss[:, table.scaling(arm).index.to_numpy()]))
                               for arm in fitted_arms])) if fitted_arms and s.bootstrap else 0.0)
    noise = estimate_noise(table.usable, fitted, JOINT.n_params, eval_var=eval_var, min_dof=s.min_seed_dof)
    log_eval = np.log(evals.loss) if s.bootstrap else None
    frontier = {arm: frontier_arm(table.scaling(arm, usable=False), joint.get(arm), envelope.get(arm),
                                  noise.sigma, log_eval, s.confidence)
                if not table.scaling(arm, usable=False).empty else Skipped(f"{arm} has no scaling cells")
                for arm in arms}
    ref = getattr(study, "REFERENCE_ARM", REFERENCE_ARM)  # each findings module names the arm it compares against
    others = [a for a in arms if a != ref] if ref in arms else []
    budget_comps = {f"{a}/{ref}": compare_budgets(table, a, ref, evals, noise, joint=joint, models=models,
                                                  confidence=s.confidence, seed=s.seed)
                    for a in others if not table.scaling(a, usable=False).empty}
    data_comps = {f"{a}/{b}": compare_data(table, data, a, b, evals, noise, confidence=s.confidence, seed=s.seed)
                  for a, b in _data_pairs(arms, ref, data)}
    joint_comps = {f"{a}-{ref}": (compare_exponents(joint[a], joint[ref], s.confidence)
                                  if isinstance(joint.get(a), JointArm) and isinstance(joint.get(ref), JointArm)
                                  else Skipped(f"needs joint-law fits of {a} and {ref}")) for a in others}
    iso_comps = {f"{a}-{ref}": (compare_exponents(isoflop[a], isoflop[ref], s.confidence)
                                if not isinstance(isoflop.get(a), Skipped) and not isinstance(isoflop.get(ref), Skipped)
                                else Skipped(f"needs IsoFLOP fits of {a} and {ref}")) for a in others}
    # a study may judge on more than the shared evidence (e.g. where each arm's cells lie): it says what
    extra = study.extra_evidence(table) if hasattr(study, "extra_evidence") else {}
    evidence = study.Evidence(joint=joint, isoflop=isoflop, frontier=frontier, data=data, budgets=budget_comps,
                              data_pairs=data_comps, exponents=joint_comps, noise=noise, settings=s, **extra)
    header = _header(table, s, evals)
    return Fits(
        compute=ComputeFile(kind="compute", **header, families=compute_records),
        frontier=FrontierFile(kind="frontier", laws=[FRONTIER.formula, FRONTIER_POWER.formula], **header,
                              arms=frontier, comparisons=budget_comps),
        joint=JointFile(kind="joint", law=JOINT.formula, **header, arms=joint, comparisons=joint_comps),
        isoflop=IsoflopFile(kind="isoflop", law="per budget loss = c2*(ln N)^2 + c1*ln N + c0; N*(C) = G*C^a",
                            **header, arms=isoflop, comparisons=iso_comps),
        data_efficiency=DataEfficiencyFile(kind="data_efficiency", laws=[DATA.formula, DATA_POWER.formula],
                                           **header, arms=data, comparisons=data_comps),
        findings=FindingsFile(kind="findings", **header, study=study.STUDY, settings=s, noise=noise,
                              evaluation=_evaluation_summary(table, evals, s), findings=study.findings(evidence)),
    )


def _map(fn: Callable[[Any], Any], tasks: list, jobs: int) -> list:
    if jobs > 1 and len(tasks) > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=min(jobs, len(tasks))) as pool:
            return list(pool.map(fn, tasks))
    return [fn(t) for t in tasks]


def _compute_group(row: pd.Series) -> str:
    """Cells whose steps cost alike: a family, apart from its symmetry-loss arm (each step runs 1 + M passes)."""
    return str(row["model"]) + ("+sym" if bool(row.get("symmetry_loss", False)) else "")


def _compute_models(table: StudyTable) -> tuple[dict[str, ComputeModel], dict[str, Any]]:
    groups = table.rows.apply(_compute_group, axis=1) if len(table.rows) else pd.Series([], dtype=str)
    models, records = {}, {}
    for group in dict.fromkeys(groups):
        try:
            models[group], records[group] = family_compute(table.rows[groups == group].assign(model=group), group)
        except FitError as err:
            records[group] = Skipped(str(err))
    return models, records


def _data_pairs(arms: list[str], ref: str, data: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Every data-efficiency arm against the reference arm, and each augmented arm's plain arm against it."""
    have = [a for a in arms if not isinstance(data.get(a), Skipped)]
    pairs = [(a, ref) for a in have if a != ref and ref in have]
    for a in have:
        spec = ARMS.get(a)
        if spec is not None and spec.augment:
            plain = next((p for p in have if ARMS.get(p) and ARMS[p].model == spec.model and not ARMS[p].augment), None)
            if plain is not None:
                pairs.append((plain, a))
    return pairs


def _header(table: StudyTable, s: AnalysisSettings, evals: EvalResamples) -> dict[str, Any]:
    rows = table.rows
    method = ("cells resampled with replacement within budget lines (within training-set sizes where seeds repeat "
              f"them); test MSEs resampled over test samples ({evals.method}); refits warm-started from the point "
              "fit; percentile intervals")
    return {"n_cells": int(len(rows)), "n_usable": int((rows["status"] == "ok").sum()),
            "n_diverged": int((rows["status"] == "diverged").sum()),
            "n_unusable": int((rows["status"] == "unusable").sum()), "arms_present": table.arms(),
            "bootstrap": BootstrapSettings(resamples=s.bootstrap, seed=s.seed, confidence=s.confidence, method=method),
            "missing_columns": list(table.missing)}


def _evaluation_summary(table: StudyTable, evals: EvalResamples, s: AnalysisSettings) -> EvaluationSummary:
    usable = table.usable
    rel = (usable["test_mse_se"] / usable["test_mse"]).to_numpy(float) if table.has("test_mse_se") else np.empty(0)
    rel = rel[np.isfinite(rel)]
    rows = table.rows
    share = None
    if table.has("eval_wall_time_s") and table.has("wall_time_s"):
        train = float(np.nansum(rows["wall_time_s"]))
        share = float(np.nansum(rows["eval_wall_time_s"])) / train if train > 0 else None
    return EvaluationSummary(method=evals.method, n_paired=int(evals.paired.sum()),
                             n_parametric=int(evals.parametric.sum()),
                             median_rel_se=float(np.median(rel)) if rel.size else None,
                             max_rel_se=float(rel.max()) if rel.size else None, target_rel_se=s.target_rel_se,
                             n_above_target=int((rel > s.target_rel_se).sum())
                             if rel.size and s.target_rel_se is not None else None,
                             eval_share_of_wall_time=share)
