"""The test metric as a measurement: a ratio of sums over test samples, with its standard error and interval.

A cell's test MSE is sum_i e_i / sum_i n_i over test samples i, where e_i is the summed squared error
of sample i's vertex coordinates and n_i their number (3 x vertices): every coordinate weighs the
same, as in training. Samples are independent draws of scenes, so the uncertainty is that of a ratio
estimator: the delta-method standard error

    se = sqrt( sum_i (e_i - R n_i)^2 / (m (m - 1)) ) / mean(n),    R = sum e / sum n,  m samples,

and a percentile bootstrap over samples (heavy tails from collisions make the interval asymmetric;
the bootstrap keeps that). `samples_for_target` says how many samples reach a target relative error.
Torch-free: the analysis uses the same numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Measurement:
    """A ratio of sums over samples, with its standard error and bootstrap interval."""

    value: float
    se: float
    lo: float
    hi: float
    n_samples: int
    confidence: float

    @property
    def rel_se(self) -> float:
        """Standard error over the value (NaN for a zero value)."""
        return self.se / self.value if self.value else math.nan


def ratio_se(errors: np.ndarray, counts: np.ndarray) -> float:
    """Delta-method standard error of sum(errors) / sum(counts) over independent samples (NaN below 2 samples)."""
    errors, counts = np.asarray(errors, np.float64), np.asarray(counts, np.float64)
    m = errors.size
    if m < 2 or counts.sum() <= 0:
        return math.nan
    ratio = errors.sum() / counts.sum()
    residual = errors - ratio * counts
    return float(math.sqrt((residual ** 2).sum() / (m * (m - 1))) / counts.mean())


def measure_ratio(errors: np.ndarray, counts: np.ndarray, *, confidence: float = 0.95, resamples: int = 1000,
                  seed: int = 0) -> Measurement:
    """sum(errors) / sum(counts) with its delta-method standard error and a percentile bootstrap interval."""
    errors, counts = np.asarray(errors, np.float64), np.asarray(counts, np.float64)
    if errors.shape != counts.shape or errors.ndim != 1:
        raise ValueError(f"errors {errors.shape} and counts {counts.shape} must be equal-length vectors")
    if errors.size == 0 or counts.sum() <= 0:
        raise ValueError("no samples to measure")
    value = float(errors.sum() / counts.sum())
    lo = hi = math.nan
    if errors.size >= 2 and resamples > 0:
        rng = np.random.default_rng(seed)
        picks = rng.integers(0, errors.size, size=(resamples, errors.size))
        boot = errors[picks].sum(axis=1) / counts[picks].sum(axis=1)
        alpha = (1 - confidence) / 2
        lo, hi = (float(x) for x in np.quantile(boot, [alpha, 1 - alpha]))
    return Measurement(value, ratio_se(errors, counts), lo, hi, int(errors.size), confidence)


def samples_for_target(errors: np.ndarray, counts: np.ndarray, target_rel_se: float) -> int:
    """Samples needed for a relative standard error of `target_rel_se`, estimated from a pilot (se ~ 1/sqrt(m))."""
    errors = np.asarray(errors, np.float64)
    se, value = ratio_se(errors, counts), float(errors.sum() / np.asarray(counts, np.float64).sum())
    if not (math.isfinite(se) and value > 0):
        return errors.size
    return max(errors.size, math.ceil(errors.size * (se / value / target_rel_se) ** 2))
