"""Figures: rendered from the synthetic study, saved as valid PNG and PDF, log axes with content."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
import pytest
from fake_cells import write_cell
from PIL import Image

from eqscale.analysis.plots import FIGURES, main, make_figures, save_figure
from eqscale.analysis.results import DataEfficiencyFile, Fits, FrontierFile, IsoflopFile, JointFile, Skipped
from eqscale.analysis.store import write_fits


@pytest.fixture(scope="module")
def runs_root(tmp_path_factory, study) -> tuple:
    """A few fake cells with metrics.csv; the summary rows point at them."""
    root = tmp_path_factory.mktemp("study")
    summary = study.copy()
    for i in (0, 1, len(summary) - 1):
        summary.loc[i, "run_dir"] = str(write_cell(root, summary.loc[i].to_dict()))
    return root, summary


def _texts(fig) -> str:
    return " ".join(t.get_text() for ax in fig.axes for t in ax.texts)


def test_figures_have_content_on_log_axes(runs_root, study_fits):
    root, summary = runs_root
    figs = make_figures(summary, study_fits, root / "runs")
    assert set(figs) == set(FIGURES)
    try:
        for name, fig in figs.items():
            axes = [ax for ax in fig.axes if ax.has_data()]
            assert axes, name
            for ax in axes:
                assert ax.get_xscale() == "log" and ax.get_yscale() == "log", name
                assert ax.get_xlabel() and ax.get_ylabel(), name
            assert "no data" not in _texts(fig), name
        loss_ax = figs["loss_vs_compute"].axes[0]
        assert len(loss_ax.lines) == 2  # one frontier fit per scaling arm
        assert len(loss_ax.collections) >= 6  # cells, frontier points and a band per arm
        assert "[FLOPs]" in loss_ax.get_xlabel() and "m$^2$" in loss_ax.get_ylabel()
        assert len(loss_ax.get_legend().get_texts()) == 2
        assert len(figs["isoflop"].axes) == 2  # transformer+aug has one budget only: no IsoFLOP panel
        assert all(len(ax.lines) >= 5 for ax in figs["isoflop"].axes)  # a parabola per budget
        n_ax, s_ax = figs["optimal_allocation"].axes
        assert len(n_ax.lines) >= 4 and len(s_ax.lines) >= 4
        assert len(figs["data_efficiency"].axes[0].lines) == 3
        assert len(figs["training_curves"].axes[0].lines) == 3  # the three cells with metrics.csv
        assert "(" in figs["training_curves"].axes[0].get_title()  # says how many cells lack metrics
    finally:
        for fig in figs.values():
            plt.close(fig)


def test_cli_writes_valid_png_and_pdf(tmp_path, runs_root, study_fits):
    root, summary = runs_root
    summary.to_csv(tmp_path / "summary.csv", index=False)
    write_fits(study_fits, tmp_path / "fits")
    out = tmp_path / "figures"
    assert main(["--summary", str(tmp_path / "summary.csv"), "--fits-dir", str(tmp_path / "fits"),
                 "--runs", str(root / "runs"), "--out-dir", str(out)]) == 0
    for name in FIGURES:
        with Image.open(out / f"{name}.png") as img:
            img.verify()
            assert img.format == "PNG"
        assert (out / f"{name}.pdf").read_bytes().startswith(b"%PDF")
    assert not list(out.glob(".*.tmp"))


def test_no_data_gives_figures_that_say_so(tmp_path):
    empty = pd.DataFrame(columns=["arm", "params", "steps", "flops", "test_mse", "budget", "data_fraction",
                                  "run_dir"])
    skipped = Skipped("not enough points")
    fits = Fits(**{kind: cls(kind=kind, n_cells=0, n_dropped=0, arms_present=[], bootstrap=None,
                             arms={"gatr": skipped})
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
