"""Every fit of every arm over the summary table: `fit_all` -> a `Fits` record (results.py).

Fits per arm (test loss L is vertex MSE in m^2): the compute frontier (frontier.py), the joint law
L(N, S) and the compute-optimal allocation (joint.py), IsoFLOP parabolas (isoflop.py) and data
efficiency L(D) (data_efficiency.py); then comparisons of each arm against the reference arm
(compare.py). Intervals come from a bootstrap over cells (bootstrap.py). A fit that cannot be done is
recorded as Skipped with its reason; only a summary without the needed columns raises FitError.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from eqscale.analysis.bootstrap import DEFAULT_CONFIDENCE, DEFAULT_RESAMPLES, arm_seed
from eqscale.analysis.compare import compare_data_efficiency, compare_exponent, compare_frontiers
from eqscale.analysis.data_efficiency import fit_data_efficiency
from eqscale.analysis.frontier import fit_frontier
from eqscale.analysis.isoflop import fit_isoflop
from eqscale.analysis.joint import fit_joint
from eqscale.analysis.errors import FitError
from eqscale.analysis.powerlaw import DATA, DATA_POWER, FRONTIER, FRONTIER_POWER, JOINT
from eqscale.analysis.results import (
    BootstrapSettings,
    DataEfficiencyFile,
    Fits,
    FrontierFile,
    IsoflopFile,
    JointArm,
    JointFile,
    Skipped,
)
from eqscale.analysis.table import arms_of, prepare_summary, scaling_cells
from eqscale.cells import REFERENCE_ARM

FITTERS: dict[str, Callable[..., Any]] = {"frontier": fit_frontier, "joint": fit_joint, "isoflop": fit_isoflop,
                                          "data_efficiency": fit_data_efficiency}
WHAT = {"frontier": "frontier", "joint": "joint fit", "isoflop": "IsoFLOP", "data_efficiency": "data efficiency"}


def _run(task: tuple[str, str, pd.DataFrame, dict[str, Any]]) -> Any:
    """One (fit, arm): its result, or Skipped with the FitError's message."""
    kind, arm, cells, opts = task
    try:
        return FITTERS[kind](cells, what=f"{WHAT[kind]} of {arm}", **opts)
    except FitError as err:
        return Skipped(str(err))


def fit_all(summary: pd.DataFrame, *, n_resamples: int = DEFAULT_RESAMPLES, seed: int = 0,
            confidence: float = DEFAULT_CONFIDENCE, jobs: int = 1) -> Fits:
    """Every fit of every arm and the comparisons between arms.

    `jobs` > 1 runs the (fit, arm) pairs in that many processes; every pair has its own seed, so the
    numbers do not depend on `jobs`.
    """
    if not 0 < confidence < 1:
        raise FitError(f"confidence must be in (0, 1), got {confidence}")
    if n_resamples < 0:
        raise FitError(f"the number of bootstrap resamples must be >= 0, got {n_resamples}")
    df, n_dropped = prepare_summary(summary)
    arms = arms_of(df)
    header = {"n_cells": int(len(df)), "n_dropped": n_dropped, "arms_present": arms,
              "bootstrap": BootstrapSettings(resamples=n_resamples, seed=seed, confidence=confidence,
                                             method="cells resampled with replacement (within budget lines where "
                                                    "noted); refits warm-started from the point fit; percentile "
                                                    "intervals"),
              "dropped_reason": ("missing or non-positive params/steps/flops/test_mse (e.g. a failed run)"
                                 if n_dropped else None)}
    tasks = []
    for kind in FITTERS:
        for arm in arms:
            cells = df[df["arm"] == arm].reset_index(drop=True) if kind == "data_efficiency" else scaling_cells(df, arm)
            opts = {"n_resamples": n_resamples, "confidence": confidence, "seed": arm_seed(seed, kind, arm)}
            tasks.append((kind, arm, cells, opts))
    if jobs > 1 and len(tasks) > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=min(jobs, len(tasks))) as pool:
            results = list(pool.map(_run, tasks))
    else:
        results = [_run(t) for t in tasks]
    by_kind: dict[str, dict[str, Any]] = {kind: {} for kind in FITTERS}
    for (kind, arm, _, _), res in zip(tasks, results, strict=True):
        by_kind[kind][arm] = res
    frontier, joint, isoflop, data = (by_kind[k] for k in FITTERS)

    budgets = np.unique(df["budget"].to_numpy(float)[np.isfinite(df["budget"].to_numpy(float))])
    single = None if REFERENCE_ARM in arms and len(arms) > 1 else (
        f"comparisons need {REFERENCE_ARM} and another arm; the summary has only: {', '.join(arms) or 'nothing'}")

    def compared(make: Callable[[], dict[str, Any]]) -> dict[str, Any] | Skipped:
        return Skipped(single) if single else make()

    return Fits(
        frontier=FrontierFile(kind="frontier", laws=[FRONTIER.formula, FRONTIER_POWER.formula], **header,
                              arms=frontier,
                              comparisons=compared(lambda: compare_frontiers(frontier, budgets, confidence))),
        joint=JointFile(kind="joint", law=JOINT.formula,
                        compute="C = k*N*S, k = median FLOPs/(params*steps) of the arm", **header, arms=joint,
                        comparisons=compared(lambda: compare_exponent(
                            joint, lambda r: (r.exponents["a"].value, _joint_a(r)), confidence, "a"))),
        isoflop=IsoflopFile(kind="isoflop", law="per budget loss = c2*(ln N)^2 + c1*ln N + c0; N*(C) = G*C^a",
                            **header, arms=isoflop,
                            comparisons=compared(lambda: compare_exponent(
                                isoflop, lambda r: (r.exponents["a"].value, r.samples_a), confidence, "a"))),
        data_efficiency=DataEfficiencyFile(
            kind="data_efficiency", laws=[DATA.formula, DATA_POWER.formula],
            fallback="the pure power law when an arm has fewer than 4 distinct training-set sizes", **header,
            arms=data, comparisons=compared(lambda: compare_data_efficiency(data, confidence))),
    )


def _joint_a(res: JointArm) -> np.ndarray:
    s = res.fit.samples
    return s[:, 4] / (s[:, 2] + s[:, 4]) if s is not None and s.size else np.empty(0)
