"""Figures: rendered from the synthetic study, saved as valid PNG and PDF, log axes with content."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from eqscale.analysis.figures import FIGURE_NAMES, FIGURES
from eqscale.analysis.plots import main, make_figures, save_figure, smooth
from eqscale.analysis.results import DataEfficiencyFile, Fits, FrontierFile, IsoflopFile, JointFile, Skipped
from eqscale.analysis.store import write_fits


def _write_metrics(cell_dir, steps: int, rng: np.random.Generator) -> None:
    cell_dir.mkdir(parents=True, exist_ok=True)
    step = np.arange(1, steps + 1)
    loss = 0.05 * (1 + 5 / np.sqrt(step)) * np.exp(0.2 * rng.standard_normal(steps))
    pd.DataFrame({"step": step, "train_loss": loss}).to_csv(cell_dir / "metrics.csv", index=False)


@pytest.fixture(scope="module")
def runs_root(tmp_path_factory, study) -> tuple:
    """Three cells with a metrics.csv; the summary rows point at them."""
    root = tmp_path_factory.mktemp("study")
    summary = study.copy()
    rng = np.random.default_rng(0)
    for i in (0, 1, len(summary) - 1):
        cell_dir = root / "runs" / summary.loc[i, "cell"]
        _write_metrics(cell_dir, 200, rng)
        summary.loc[i, "run_dir"] = str(cell_dir)
    return root, summary


def _texts(fig) -> str:
    return " ".join(t.get_text() for ax in fig.axes for t in ax.texts)


def test_figures_are_declared_once():
    assert FIGURE_NAMES == tuple(f.name for f in FIGURES) and len(set(FIGURE_NAMES)) == len(FIGURE_NAMES)
    assert all(f.title and f.caption for f in FIGURES)


def test_figures_have_content_on_log_axes(runs_root, study_fits):
    root, summary = runs_root
    figs = make_figures(summary, study_fits, root / "runs")
    assert set(figs) == set(FIGURE_NAMES)
    try:
        for name, fig in figs.items():
            axes = [ax for ax in fig.axes if ax.has_data()]
            assert axes, name
            for ax in axes:
                assert ax.get_xscale() == "log" and ax.get_yscale() == "log", name
                assert ax.get_xlabel() and ax.get_ylabel(), name
            assert "no data" not in _texts(fig), name
        loss_ax = figs["loss_vs_compute"].axes[0]
        labels = [t.get_text() for t in loss_ax.get_legend().get_texts()]
        assert len(labels) == 2 and all("L*(C) of the joint law" in t for t in labels)
        assert len(loss_ax.lines) >= 4  # L*(C) and the dashed envelope fit per scaling arm
        assert len(figs["isoflop"].axes) == 2  # transformer+aug has no scaling grid: no IsoFLOP panel
        n_ax, s_ax = figs["optimal_allocation"].axes
        assert len(n_ax.lines) >= 4 and len(s_ax.lines) >= 4
        de_ax = figs["data_efficiency"].axes[0]
        assert any(" ep" in t.get_text() for t in de_ax.texts)  # the epochs each point reached
        assert len(figs["training_curves"].axes[0].lines) == 6  # raw + smoothed for the three cells
        assert "(" in figs["training_curves"].axes[0].get_title()  # says how many cells lack metrics
    finally:
        for fig in figs.values():
            plt.close(fig)


def test_smoothing_is_a_robust_running_median():
    values = np.ones(50)
    values[25] = 100.0  # one spike
    out = smooth(values, 5)
    assert out.shape == values.shape and np.allclose(out, 1.0)


def test_cli_writes_valid_png_and_pdf(tmp_path, runs_root, study_fits):
    root, summary = runs_root
    summary.to_csv(tmp_path / "summary.csv", index=False)
    write_fits(study_fits, tmp_path / "fits")
    out = tmp_path / "figures"
    assert main(["--summary", str(tmp_path / "summary.csv"), "--fits-dir", str(tmp_path / "fits"),
                 "--runs", str(root / "runs"), "--out-dir", str(out)]) == 0
    for name in FIGURE_NAMES:
        with Image.open(out / f"{name}.png") as img:
            img.verify()
            assert img.format == "PNG"
        assert (out / f"{name}.pdf").read_bytes().startswith(b"%PDF")
    assert not list(out.glob(".*.tmp"))


def test_no_data_gives_figures_that_say_so(tmp_path):
    empty = pd.DataFrame(columns=["arm", "size", "params", "steps", "flops", "test_mse", "budget", "data_fraction",
                                  "run_dir"])
    skipped = Skipped("not enough points")
    fits = Fits(**{kind: cls(kind=kind, n_cells=0, n_usable=0, n_diverged=0, n_unusable=0, arms_present=[],
                             bootstrap=None, arms={"gatr": skipped})
                   for kind, cls in (("frontier", FrontierFile), ("joint", JointFile), ("isoflop", IsoflopFile),
                                     ("data_efficiency", DataEfficiencyFile))})
    figs = make_figures(empty, fits, tmp_path)
    try:
        for name, fig in figs.items():
            assert "no data" in _texts(fig), name
            for path in save_figure(fig, tmp_path, name):
                assert path.stat().st_size > 0
        assert "not enough points" in _texts(figs["data_efficiency"])
    finally:
        for fig in figs.values():
            plt.close(fig)
