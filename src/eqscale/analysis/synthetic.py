"""Synthetic summaries drawn from known laws with noise: what the fit tests and the bench run on.

Two generators, both returning a table with the columns of `eqscale collect`:

* `synthetic_summary`: each arm's loss is the joint law L(N, S) = E + A*N^-alpha + B*S^-beta on a
  grid of budgets x sizes (steps = budget // (k*N), as the study's grid does), plus a data-efficiency
  grid at one budget where L = L(N, S) + F*(D^-delta - D_full^-delta), so the full training set gives
  the joint law's value;
* `synthetic_frontier_summary`: per budget C the best size N*(C) = G*C^a reaches exactly
  E + A*C^-gamma and the others are worse by a factor 1 + kappa*ln(N/N*)^2, so the frontier, the
  IsoFLOP vertices and their exponent are all known.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from eqscale.analysis.powerlaw import FRONTIER, JOINT, FrontierParams, JointParams


@dataclass(frozen=True)
class ArmTruth:
    """The known law of one synthetic arm."""

    law: JointParams
    flops_per_param_step: float  # k in C = k*N*S
    data_F: float = 1.0  # data-efficiency term F*(D^-delta - D_full^-delta)
    data_delta: float = 0.5


# GATr is narrower-and-longer (beta > alpha: a > 0.5) and spends more FLOPs per parameter; the
# transformer the opposite; augmentation only changes how much a small training set hurts.
DEFAULT_TRUTH: dict[str, ArmTruth] = {
    "gatr": ArmTruth(JointParams(E=1e-3, A=2.0, alpha=0.3, B=0.6, beta=0.45), 1.5e5, data_F=0.3, data_delta=0.6),
    "transformer": ArmTruth(JointParams(E=2e-3, A=8.0, alpha=0.45, B=0.8, beta=0.3), 4e4, data_F=2.0,
                            data_delta=0.5),
    "transformer+aug": ArmTruth(JointParams(E=2e-3, A=8.0, alpha=0.45, B=0.8, beta=0.3), 4e4, data_F=0.4,
                                data_delta=0.6),
}
DEFAULT_BUDGETS = (1e12, 3e12, 1e13, 3e13, 1e14)
DEFAULT_SIZES = (1e4, 3e4, 1e5, 3e5, 1e6)
DEFAULT_FRACTIONS = (0.0625, 0.125, 0.25, 0.5, 1.0)


def _row(arm: str, params: float, steps: int, k: float, budget: float, fraction: float, trajectories: float,
         seed: int, loss: float) -> dict:
    model = arm.split("+")[0]
    augment = arm.endswith("+aug")
    size = f"n{int(round(params))}"
    return {"model": model, "arm": arm, "size": size, "params": int(round(params)), "steps": int(steps),
            "tokens": float(steps * 4096), "flops": float(k * round(params) * steps), "budget": float(budget),
            "data_fraction": float(fraction), "num_train_trajectories": int(round(trajectories)),
            "augment": augment, "seed": int(seed), "test_mse": float(loss), "const_velocity_mse": 0.5,
            "equivariance_error": 0.0 if model == "gatr" else 0.05, "wall_time_s": 1.0, "device": "synthetic",
            "run_dir": (f"results/runs/{model}/size~{size}/steps~{int(steps)}/data~{fraction:.6g}/"
                        f"aug~{int(augment)}/seed~{seed}")}


def synthetic_summary(*, truth: Mapping[str, ArmTruth] | None = None,
                      scaling_arms: Sequence[str] = ("gatr", "transformer"),
                      budgets: Sequence[float] = DEFAULT_BUDGETS, sizes: Sequence[float] = DEFAULT_SIZES,
                      seeds: Sequence[int] = (0,), noise: float = 0.03, min_steps: int = 20,
                      data_arms: Sequence[str] = ("transformer", "transformer+aug", "gatr"),
                      data_budget: float = 1e13, data_size: float = 1e5,
                      fractions: Sequence[float] = DEFAULT_FRACTIONS, full_trajectories: int = 2000,
                      rng_seed: int = 0) -> pd.DataFrame:
    """A summary table whose losses follow each arm's known joint law times lognormal noise (sigma `noise`)."""
    truth = dict(DEFAULT_TRUTH if truth is None else truth)
    rng = np.random.default_rng(rng_seed)
    rows = []
    for arm in scaling_arms:
        t = truth[arm]
        for budget in budgets:
            for n in sizes:
                steps = int(budget // (t.flops_per_param_step * n))
                if steps < min_steps:
                    continue
                for seed in seeds:
                    loss = float(JOINT(t.law, n, steps)) * math.exp(noise * rng.standard_normal())
                    rows.append(_row(arm, n, steps, t.flops_per_param_step, budget, 1.0, full_trajectories,
                                     seed, loss))
    for arm in data_arms:
        t = truth[arm]
        steps = int(data_budget // (t.flops_per_param_step * data_size))
        for fraction in fractions:
            d = fraction * full_trajectories
            if fraction == 1.0 and arm in scaling_arms and data_budget in budgets and data_size in sizes:
                continue  # the scaling grid already has this cell (the study's grid deduplicates it too)
            for seed in seeds:
                clean = float(JOINT(t.law, data_size, steps)) + t.data_F * (d ** -t.data_delta
                                                                            - full_trajectories ** -t.data_delta)
                loss = clean * math.exp(noise * rng.standard_normal())
                rows.append(_row(arm, data_size, steps, t.flops_per_param_step, data_budget, fraction, d, seed,
                                 loss))
    return pd.DataFrame(rows)


def synthetic_frontier_summary(*, law: FrontierParams = FrontierParams(E=2e-3, A=40.0, gamma=0.25),
                               arm: str = "gatr", budgets: Sequence[float] = DEFAULT_BUDGETS, G: float = 0.5,
                               a: float = 0.45, k: float = 1e5, offsets: Sequence[float] = (-1.5, -0.75, 0, 0.75, 1.5),
                               kappa: float = 0.3, noise: float = 0.02, seeds: Sequence[int] = (0,),
                               rng_seed: int = 0) -> pd.DataFrame:
    """One arm whose frontier is E + A*C^-gamma and whose IsoFLOP minima are N*(C) = G*C^a (sizes at ln offsets)."""
    rng = np.random.default_rng(rng_seed)
    rows = []
    for budget in budgets:
        n_opt = G * budget ** a
        # the law at the optimal cell's actual FLOPs (steps are rounded down from the budget)
        best = float(FRONTIER(law, k * round(n_opt) * max(1, int(budget // (k * round(n_opt))))))
        for u in offsets:
            n = n_opt * math.exp(u)
            steps = max(1, int(budget // (k * round(n))))
            for seed in seeds:
                loss = best * (1 + kappa * u * u) * math.exp(noise * rng.standard_normal())
                rows.append(_row(arm, n, steps, k, budget, 1.0, 2000, seed, loss))
    return pd.DataFrame(rows)
