"""The whole tiny study from nothing, then code- and config-aware reruns asserted with dry runs.

The workflow's files (Snakefile, workflow/, src/, presets, envs) are copied into a scratch directory and
run from there, so the rerun tests can edit "source files" without touching the checkout; the
jobs themselves run the installed eqscale package.
"""

import shutil
import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).parent))
from snakemake_helpers import REPO, planned_cells, planned_jobs, snakemake  # noqa: E402

from eqscale.config import validate_config  # noqa: E402
from eqscale.grid import build_grid  # noqa: E402

ANALYSIS = {"collect", "fit", "plot", "report", "all"}


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """A copy of the workflow and the tiny study run to completion in it."""
    root = tmp_path_factory.mktemp("study")
    copy = root / "repo"
    copy.mkdir()
    for name in ("Snakefile", "config.yaml", "workflow", "src", "presets", "envs"):
        source = REPO / name
        (shutil.copytree if source.is_dir() else shutil.copy2)(source, copy / name)
    work = root / "work"
    work.mkdir()
    snakemake(work, "--cores", "2", snakefile=copy / "Snakefile", timeout=1800)
    return copy, work


def _touch_source(copy: Path, relative: str) -> None:
    path = copy / "src" / "eqscale" / relative
    path.write_text(path.read_text() + "\n# edited\n")


@pytest.mark.slow
def test_tiny_study_runs_whole_dag(study):
    copy, work = study
    cells = build_grid(validate_config(yaml.safe_load((REPO / "presets" / "tiny.yaml").read_text())))
    summary = (work / "results" / "summary.csv").read_text().strip().splitlines()
    assert len(summary) == 1 + len(cells)
    for name in ("frontier", "joint", "isoflop", "data_efficiency"):
        assert (work / "results" / "fits" / f"{name}.json").exists()
    for figure in ("loss_vs_compute", "isoflop", "data_efficiency", "training_curves"):
        assert (work / "results" / "figures" / f"{figure}.png").stat().st_size > 1000
    assert "GATr" in (work / "results" / "report.md").read_text()
    assert not planned_jobs(work, snakefile=copy / "Snakefile")  # nothing left to do


@pytest.mark.slow
def test_snakemake_report_bundles_the_figures(study):
    copy, work = study
    snakemake(work, "--report", "report.html", snakefile=copy / "Snakefile")
    html = (work / "report.html").read_text(errors="replace")
    assert len(html) > 10_000
    for figure in ("loss_vs_compute", "isoflop", "data_efficiency"):
        assert f"{figure}.png" in html


@pytest.mark.slow
def test_both_models_beat_constant_velocity_after_a_few_hundred_steps(study):
    _, work = study
    import json

    for model in ("gatr", "transformer"):
        runs = [p.parent for p in (work / "results" / "runs" / model).rglob("eval.json")]
        trained = [d for d in runs if 300 <= int(d.parts[-4].split("~")[1]) <= 1000 and "aug~0" in str(d)
                   and "data~1/" in str(d) + "/"]
        assert trained, f"no {model} cell with a few hundred steps in the tiny preset"
        for cell in trained:
            result = json.loads((cell / "eval.json").read_text())
            assert result["test_mse"] < result["const_velocity_mse"], (cell, result)
            if model == "gatr":
                assert result["equivariance_error"] < 1e-4  # exact up to float32 round-off


@pytest.mark.slow
def test_reruns_only_what_changed(study):
    copy, work = study
    cells = build_grid(validate_config(yaml.safe_load((REPO / "presets" / "tiny.yaml").read_text())))
    gatr = {c.dir for c in cells if c.model == "gatr"}
    sf = copy / "Snakefile"

    # editing the plotting code reruns only the plots
    _touch_source(copy, "analysis/plots.py")
    assert set(planned_jobs(work, snakefile=sf)) == {"plot", "all"}
    snakemake(work, "--cores", "2", "--touch", snakefile=sf)

    # editing the GATr model code reruns only GATr training/evaluation and the analysis after it
    _touch_source(copy, "models/gatr.py")
    jobs = planned_jobs(work, snakefile=sf)
    assert set(jobs) == {"train", "evaluate"} | ANALYSIS
    assert planned_cells(work, "train", snakefile=sf) == gatr
    assert planned_cells(work, "evaluate", snakefile=sf) == gatr
    snakemake(work, "--cores", "2", "--touch", snakefile=sf)

    # config edits rerun only the cells they touch: a transformer learning rate reruns the
    # transformer cells; a second seed trains only the new seed's cells
    preset = yaml.safe_load((REPO / "presets" / "tiny.yaml").read_text())
    preset["training"]["lr"]["transformer"] = 0.002
    changed = copy / "lr.yaml"
    changed.write_text(yaml.safe_dump(preset))
    transformer = {c.dir for c in cells if c.model == "transformer"}
    assert planned_cells(work, "train", snakefile=sf, configfile=changed) == transformer
    preset = yaml.safe_load((REPO / "presets" / "tiny.yaml").read_text())
    preset["grid"]["seeds"] = [0, 1]
    changed = copy / "seeds.yaml"
    changed.write_text(yaml.safe_dump(preset))
    new_cells = {c.dir for c in build_grid(validate_config(preset))} - {c.dir for c in cells}
    assert new_cells and all(d.endswith("seed~1") for d in new_cells)
    assert planned_cells(work, "train", snakefile=sf, configfile=changed) == new_cells

    # editing the simulation code reruns everything downstream of the simulator
    _touch_source(copy, "physics/simulate.py")
    jobs = planned_jobs(work, snakefile=sf)
    assert {"simulate", "tokenize", "train", "evaluate"} | ANALYSIS <= set(jobs)
    assert "assets" not in jobs
    assert jobs["train"] == len(cells)
