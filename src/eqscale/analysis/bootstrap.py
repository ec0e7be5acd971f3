"""The bootstrap: resampled rows, refits of a law to every resample at once, percentile intervals.

Kept apart from the point fit (powerlaw.py), which never depends on it. A resample that cannot be
refitted is counted as failed, never silently replaced; `BootstrapInfo` records how many refitted.
Statistics of a resample are flat vectors built from named blocks (`Segments`), so results are read
back by name, not by offset.
"""

from __future__ import annotations

import math
import warnings
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from eqscale.analysis.errors import FitError
from eqscale.analysis.powerlaw import (
    Law,
    LawFit,
    bootstrap_starts,
    fit_law,
    param_vector,
    refit_batch,
)
from eqscale.analysis.results import BootstrapInfo, Curve, Estimate, LawResult

DEFAULT_RESAMPLES = 1000
DEFAULT_CONFIDENCE = 0.95


class Segments:
    """Named blocks of a flat statistic vector: pack blocks into one row, read columns back by name."""

    def __init__(self, **sizes: int) -> None:
        self.sizes = dict(sizes)
        self.slices: dict[str, slice] = {}
        start = 0
        for name, size in sizes.items():
            self.slices[name] = slice(start, start + size)
            start += size
        self.width = start

    def pack(self, **blocks: Any) -> np.ndarray:
        """One row from every block (scalars count as blocks of size 1), in the declared order."""
        if set(blocks) != set(self.sizes):
            raise ValueError(f"blocks {sorted(blocks)} do not match the segments {list(self.sizes)}")
        row = np.concatenate([np.atleast_1d(np.asarray(blocks[name], dtype=float)) for name in self.sizes])
        if row.size != self.width:
            raise ValueError(f"packed {row.size} values into {self.width} slots")
        return row

    def __getitem__(self, name: str) -> slice:
        return self.slices[name]

    def unpack(self, values: np.ndarray) -> dict[str, np.ndarray]:
        """Every block of a row (or of each row of a matrix), by name."""
        return {name: values[..., sl] for name, sl in self.slices.items()}


@dataclass(frozen=True)
class BootstrapSamples:
    """Statistics of the successful resamples (rows) and how many resamples failed."""

    samples: np.ndarray
    n_resamples: int
    n_failed: int
    seed: int
    stratified_by: str | None

    def info(self, confidence: float) -> BootstrapInfo:
        """What the JSON records about this bootstrap."""
        return BootstrapInfo(resamples=self.n_resamples, ok=self.n_resamples - self.n_failed, failed=self.n_failed,
                             seed=self.seed, confidence=confidence, stratified_by=self.stratified_by)

    def columns(self, width: int) -> np.ndarray:
        """The samples, as an empty (0, width) matrix when no resample succeeded."""
        return self.samples if self.samples.size else np.empty((0, width))


def percentile_interval(samples: np.ndarray, confidence: float) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval of each column, ignoring NaN; NaN where a column has fewer than two values."""
    samples = np.atleast_2d(np.asarray(samples, dtype=float))
    width = samples.shape[1] if samples.ndim == 2 else 0
    lo, hi = np.full(width, np.nan), np.full(width, np.nan)
    if samples.shape[0] == 0:
        return lo, hi
    enough = np.sum(np.isfinite(samples), axis=0) >= 2
    if enough.any():
        q = 100 * np.array([(1 - confidence) / 2, (1 + confidence) / 2])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            lo[enough], hi[enough] = np.nanpercentile(samples[:, enough], q, axis=0)
    return lo, hi


def resample_index_sets(n_rows: int, *, n_resamples: int, seed: int,
                        strata: np.ndarray | None = None) -> list[np.ndarray]:
    """Row indices of each resample, drawn with replacement (within each stratum when strata are given)."""
    rng = np.random.default_rng(seed)
    if strata is None:
        return [rng.integers(0, n_rows, n_rows) for _ in range(n_resamples)]
    codes = pd.factorize(pd.Series(strata), use_na_sentinel=False)[0]
    members = [np.flatnonzero(codes == c) for c in range(codes.max() + 1)] if codes.size else []
    return [np.concatenate([m[rng.integers(0, m.size, m.size)] for m in members]) for _ in range(n_resamples)]


def bootstrap(statistic: Callable[[int, np.ndarray], np.ndarray], n_rows: int, *, n_resamples: int, seed: int,
              strata: np.ndarray | None = None, stratified_by: str | None = None) -> BootstrapSamples:
    """Apply `statistic(r, indices)` to resample r's rows; a resample whose statistic raises FitError is counted failed.

    r numbers the resamples, so a statistic can pair resample r of the cells with resample r of
    something else (the evaluation's test samples).
    """
    rows: list[np.ndarray] = []
    failed = 0
    for r, idx in enumerate(resample_index_sets(n_rows, n_resamples=n_resamples, seed=seed, strata=strata)):
        try:
            rows.append(np.asarray(statistic(r, idx), dtype=float))
        except FitError:
            failed += 1
    samples = np.vstack(rows) if rows else np.empty((0, 0))
    return BootstrapSamples(samples, n_resamples, failed, seed, stratified_by)


def bootstrap_law(law: Law, point: LawFit,
                  make_data: Callable[[int, np.ndarray], tuple[Sequence[np.ndarray], np.ndarray]],
                  n_rows: int, *, n_resamples: int, seed: int, strata: np.ndarray | None = None,
                  stratified_by: str | None = None,
                  derived: Callable[[Any], np.ndarray] | None = None) -> BootstrapSamples:
    """Refit `law` to `make_data(r, indices)` of every resample r, warm-started from the point fit, in one batch.

    Each sample row is the law's parameters, followed by `derived(params)` when given; failed
    resamples are left out and counted.
    """
    datasets: list[tuple[Sequence[np.ndarray], np.ndarray] | None] = []
    for r, idx in enumerate(resample_index_sets(n_rows, n_resamples=n_resamples, seed=seed, strata=strata)):
        try:
            datasets.append(make_data(r, idx))
        except FitError:
            datasets.append(None)
    loss_min = min((float(np.min(d[1])) for d in datasets if d is not None and len(d[1])), default=1.0)
    thetas = refit_batch(law, datasets, bootstrap_starts(law, point.theta, loss_min))
    rows = []
    for theta in thetas:
        if not np.all(np.isfinite(theta)):
            continue
        params = law.params(theta)
        extra = derived(params) if derived is not None else np.empty(0)
        rows.append(np.concatenate([param_vector(law, params), extra]))
    samples = np.vstack(rows) if rows else np.empty((0, 0))
    return BootstrapSamples(samples, n_resamples, n_resamples - len(rows), seed, stratified_by)


def arm_seed(seed: int, kind: str, arm: str) -> int:
    """A stable per-(fit, arm) seed, so adding an arm does not change another arm's resamples."""
    return int(np.random.SeedSequence([seed, zlib.crc32(f"{kind}/{arm}".encode())]).generate_state(1)[0])


def estimates(names: Sequence[str], values: Sequence[float], samples: np.ndarray,
              confidence: float) -> dict[str, Estimate]:
    """An Estimate per name: the point value and the percentile interval of its sample column."""
    lo, hi = percentile_interval(samples, confidence) if samples.size else (
        np.full(len(names), np.nan), np.full(len(names), np.nan))
    return {n: Estimate.of(v, lo[i], hi[i]) for i, (n, v) in enumerate(zip(names, values, strict=True))}


def estimate(value: float, samples: np.ndarray, confidence: float) -> Estimate:
    """One Estimate from a point value and a 1-D sample."""
    samples = np.asarray(samples, dtype=float).reshape(-1, 1)
    lo, hi = percentile_interval(samples, confidence) if samples.size else (np.array([math.nan]),) * 2
    return Estimate.of(value, lo[0], hi[0])


def curve(x: np.ndarray, value: np.ndarray, samples: np.ndarray, confidence: float) -> Curve:
    """A Curve with its pointwise percentile band from samples of shape (n, len(x))."""
    lo, hi = percentile_interval(samples, confidence) if samples.size else (
        np.full(x.size, np.nan), np.full(x.size, np.nan))
    return Curve(x=x, value=value, lo=lo, hi=hi)


def curves_from(segments: Segments, names: Mapping[str, str], x: np.ndarray, point: np.ndarray,
                lo: np.ndarray, hi: np.ndarray, transform: Callable[[np.ndarray], np.ndarray] = np.exp
                ) -> dict[str, Curve]:
    """Curves read from named segments of a point row and its interval rows (e.g. log values -> exp)."""
    return {key: Curve(x, transform(point[segments[seg]]), transform(lo[segments[seg]]), transform(hi[segments[seg]]))
            for key, seg in names.items()}


def fit_with_bootstrap(law: Law, xs: Sequence[np.ndarray], loss: np.ndarray, *, grid: np.ndarray,
                       n_resamples: int, seed: int, confidence: float,
                       resample: Callable[[int, np.ndarray], tuple[Sequence[np.ndarray], np.ndarray]] | None = None,
                       n_rows: int | None = None, strata: np.ndarray | None = None,
                       stratified_by: str | None = None, what: str = "fit", note: str | None = None,
                       eval_loss: np.ndarray | None = None) -> LawResult:
    """Point fit of a one-input law plus a bootstrap of its parameters and its curve on `grid`.

    `resample(r, indices)` turns resample r's cell indices into the (xs, loss) to refit (default: the
    rows of xs and loss themselves, with the losses of row r of `eval_loss` when given), so a derived
    point set such as the frontier is rebuilt per resample.
    """
    point = fit_law(law, xs, loss, what=what)
    if resample is None:
        def resample(r: int, idx: np.ndarray) -> tuple[Sequence[np.ndarray], np.ndarray]:
            values = np.asarray(loss, float) if eval_loss is None else eval_loss[r]
            return [np.asarray(x, float)[idx] for x in xs], values[idx]
        n_rows = np.asarray(loss).size
    segments = Segments(params=len(law.param_names), log_curve=grid.size)
    boot = bootstrap_law(law, point, resample, int(n_rows), n_resamples=n_resamples, seed=seed, strata=strata,
                         stratified_by=stratified_by, derived=lambda p: np.log(law(p, grid)))
    cols = segments.unpack(boot.columns(segments.width))
    return LawResult(law=law.name, formula=law.formula,
                     params=estimates(law.param_names, param_vector(law, point.params), cols["params"], confidence),
                     n_points=point.n_points, n_rows=point.n_rows, n_params=law.n_params,
                     rmse_log=point.rmse_log, r2_log=point.r2_log, bootstrap=boot.info(confidence),
                     curve=curve(grid, law(point.params, grid), np.exp(cols["log_curve"]), confidence), note=note,
                     point=point, samples=cols["params"])
