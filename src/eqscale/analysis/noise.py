"""Training noise: how much a cell's loss moves from seed to seed, for comparisons of single cells.

All seeds of a config are evaluated on the same test samples, so their spread is training noise
alone. With enough replicated configs (pooled degrees of freedom >= `min_dof`) the pooled spread is
used; otherwise the residuals of the joint-law fits, net of the cells' evaluation variance, stand
in for it (assuming the law is right; said so; a robust scale, so cells the law misses do not pass
for noise). Without either, the noise is unknown and comparisons of single cells cannot be judged.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from eqscale.analysis.results import NoiseEstimate, SeedSpread

CONFIG = ["arm", "size", "budget", "data_fraction"]


def seed_spread(rows: pd.DataFrame) -> SeedSpread:
    """Pooled within-config standard deviation of ln(test MSE) over configs with two or more seeds."""
    if rows.empty:
        return SeedSpread(sigma=None, dof=0, n_configs=0)
    logs = np.log(rows["test_mse"].to_numpy(float))
    keys = rows[CONFIG].astype(str).agg("|".join, axis=1).to_numpy()
    ss, dof, n_configs = 0.0, 0, 0
    for key in np.unique(keys):
        v = logs[keys == key]
        if v.size >= 2:
            ss += float(((v - v.mean()) ** 2).sum())
            dof += v.size - 1
            n_configs += 1
    return SeedSpread(sigma=math.sqrt(ss / dof) if dof else None, dof=dof, n_configs=n_configs)


def unshared_eval_var(log_eval: np.ndarray) -> float:
    """Mean variance over resamples of each cell's ln test MSE about the cells' mean in the same resample.

    Cells share test samples, so much of their evaluation error is common to all of them and moves
    a fitted law as a whole; only the rest scatters the cells about the law. `log_eval`: (R, cells).
    """
    if log_eval.shape[0] < 2 or log_eval.shape[1] < 2:
        return 0.0
    dev = log_eval - log_eval.mean(axis=1, keepdims=True)
    return float(np.nanmean(np.nanvar(dev, axis=0, ddof=1)))


def residual_sigma(residuals: list[np.ndarray], n_params: int, eval_var: float) -> tuple[float | None, int]:
    """Training noise from fit residuals (ln L), net of the evaluation variance that scatters cells; and its dof.

    The scale is robust (1.4826 x the median absolute residual, inflated for the fitted parameters): a few
    cells the law does not describe -- the very cells a finding may hinge on -- must not pass for noise.
    """
    dof = sum(max(0, r.size - n_params) for r in residuals)
    if dof == 0:
        return None, 0
    pooled = np.concatenate([r - np.median(r) for r in residuals])
    n = pooled.size
    var = (1.4826 * float(np.median(np.abs(pooled)))) ** 2 * n / dof
    return math.sqrt(max(0.0, var - eval_var)), dof


def estimate_noise(usable: pd.DataFrame, residuals: list[np.ndarray], n_params: int, *, eval_var: float,
                   min_dof: int) -> NoiseEstimate:
    """The training noise the comparisons use: seeds if replicated enough, else fit residuals, else unknown."""
    seeds = {arm: seed_spread(group) for arm, group in usable.groupby("arm", sort=True)}
    seeds["all"] = seed_spread(usable)
    res_sigma, res_dof = residual_sigma(residuals, n_params, eval_var)
    pooled = seeds["all"]
    if pooled.sigma is not None and pooled.dof >= min_dof:
        return NoiseEstimate(sigma=pooled.sigma, dof=pooled.dof, seeds=seeds, residual_sigma=res_sigma,
                             source=f"seed-to-seed spread pooled over {pooled.n_configs} configs with two or more "
                                    f"seeds ({pooled.dof} degrees of freedom)")
    if res_sigma is not None:
        return NoiseEstimate(sigma=res_sigma, dof=res_dof, seeds=seeds, residual_sigma=res_sigma,
                             source=f"residuals of the joint-law fits net of the evaluation error ({res_dof} "
                                    f"degrees of freedom; fewer than {min_dof} from repeated seeds): assumes the "
                                    "law describes the cells")
    return NoiseEstimate(sigma=None, dof=0, seeds=seeds, residual_sigma=None,
                         source="unknown: no repeated seeds and no joint-law fit")
