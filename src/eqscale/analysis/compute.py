"""Each model family's real compute: FLOPs per optimizer step F(N) as a function of size, and where they go.

The study's budgets are IsoFLOP lines S = C / F(N), where F is the analytic count of one step on the
study's batch (`flops_per_step_nominal` in the summary: the same for every cell of a size).
Attention over the padded scene makes F grow slower than N, so C is not k*N*S with one k: the
compute-optimal allocation must be found along the family's real F (see allocation.py).

F between and beyond the measured sizes: a monotone cubic (PCHIP) through (ln N, ln F) at the
sizes, continued linearly in log-log with the end slopes outside them. It goes through every size's
real F, as the cells' IsoFLOP lines do; a single power law F = k*N^p misses an uneven ladder (the
paper preset's GATr sizes) and moves the optimum by more than the noise. The power law fitted to
the sizes is reported beside it (p < 1 is the attention effect), not used.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.interpolate import PchipInterpolator

from eqscale.analysis.errors import FitError
from eqscale.analysis.results import FamilyCompute, SizeCompute

METHOD = "PCHIP through (ln N, ln F) at the family's sizes; linear in log-log beyond them"


@dataclass(frozen=True)
class ComputeModel:
    """F(N): FLOPs of one optimizer step of a family at N parameters (continuous in N)."""

    family: str
    params: np.ndarray  # sorted, distinct
    flops_per_step: np.ndarray

    def __post_init__(self) -> None:
        self._check()
        u, f = np.log(self.params), np.log(self.flops_per_step)
        spline = PchipInterpolator(u, f, extrapolate=False) if u.size >= 3 else None
        end_slopes = spline.derivative()(u[[0, -1]]) if spline is not None else None
        object.__setattr__(self, "_spline", (u, f, spline, end_slopes))

    def _check(self) -> None:
        if self.params.size < 1:
            raise FitError(f"compute of {self.family}: no sizes with FLOPs per step")
        if np.any(np.diff(self.params) <= 0):
            raise FitError(f"compute of {self.family}: sizes must have distinct parameter counts")
        if not np.all(np.isfinite(self.flops_per_step) & (self.flops_per_step > 0)):
            raise FitError(f"compute of {self.family}: FLOPs per step must be positive")

    def log_F(self, log_n: np.ndarray) -> np.ndarray:
        """ln F at ln N (any shape)."""
        u, f, spline, end_slopes = self._spline
        log_n = np.asarray(log_n, dtype=float)
        if u.size == 1:
            return f[0] + (log_n - u[0])  # one size: F proportional to N (nothing better is known)
        if u.size == 2:
            slope = (f[1] - f[0]) / (u[1] - u[0])
            return f[0] + slope * (log_n - u[0])
        lo_slope, hi_slope = end_slopes
        inside = spline(np.clip(log_n, u[0], u[-1]))
        return np.where(log_n < u[0], f[0] + lo_slope * (log_n - u[0]),
                        np.where(log_n > u[-1], f[-1] + hi_slope * (log_n - u[-1]), inside))

    def F(self, n: np.ndarray | float) -> np.ndarray:
        """FLOPs per step at N parameters."""
        return np.exp(self.log_F(np.log(np.asarray(n, dtype=float))))

    def power_fit(self) -> tuple[float, float]:
        """(k, p) of the least-squares power law F = k*N^p over the sizes (p = 1 with one size)."""
        u, f = np.log(self.params), np.log(self.flops_per_step)
        if u.size < 2:
            return float(math.exp(f[0] - u[0])), 1.0
        p, log_k = np.polyfit(u, f, 1)
        return float(math.exp(log_k)), float(p)


def family_compute(rows: pd.DataFrame, family: str) -> tuple[ComputeModel, FamilyCompute]:
    """The compute model of a family from its cells, and the record of its FLOPs split per size.

    F per size is the median of `flops_per_step_nominal` (the analytic count on the study's batch);
    without that column, the median of flops / steps (noted in the record).
    """
    cells = rows[(rows["model"] == family)]
    if cells.empty:
        raise FitError(f"compute of {family}: no cells")
    if "flops_per_step_nominal" in cells and cells["flops_per_step_nominal"].notna().any():
        per_step = cells["flops_per_step_nominal"]
        source = "flops_per_step_nominal (analytic FLOPs of one step on the study's batch)"
    else:
        per_step = cells["flops"] / cells["steps"]
        source = "flops / steps of the cells (the summary has no flops_per_step_nominal)"
    cells = cells.assign(_f=per_step.to_numpy(float))
    sizes = []
    for size, group in cells.groupby("size", sort=False):
        f = float(np.nanmedian(group["_f"]))
        n = float(np.nanmedian(group["params"]))
        total = float(np.nansum(group["flops"]))
        attention = (float(np.nansum(group["flops_attention"])) / total
                     if "flops_attention" in group and group["flops_attention"].notna().any() and total > 0 else None)
        padding = (float(np.nansum(group["flops_padding"])) / total
                   if "flops_padding" in group and group["flops_padding"].notna().any() and total > 0 else None)
        sizes.append(SizeCompute(size=str(size), params=int(round(n)), flops_per_step=f,
                                 flops_per_param_step=f / n if n > 0 else math.nan, attention_share=attention,
                                 padding_share=padding, n_cells=int(len(group))))
    sizes.sort(key=lambda s: s.params)
    ok = [s for s in sizes if math.isfinite(s.flops_per_step) and s.flops_per_step > 0 and s.params > 0]
    # two size names with one parameter count: keep one (the model cannot tell them apart)
    by_params = {s.params: s for s in ok}
    model = ComputeModel(family, np.array(sorted(by_params), float),
                         np.array([by_params[p].flops_per_step for p in sorted(by_params)], float))
    k, p = model.power_fit()
    total = float(np.nansum(cells["flops"]))

    def share(col: str) -> float | None:
        if col not in cells or not cells[col].notna().any() or total <= 0:
            return None
        return float(np.nansum(cells[col])) / total

    record = FamilyCompute(family=family, sizes=sizes, method=METHOD, source=source, power_k=k, power_p=p,
                           attention_share=share("flops_attention"), padding_share=share("flops_padding"),
                           total_flops=total)
    return model, record
