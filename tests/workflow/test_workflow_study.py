"""The whole tiny study from nothing, then code- and config-aware reruns asserted with dry runs.

The workflow's files (Snakefile, workflow/, src/, presets, envs) are copied into a scratch directory and
run from there, so the rerun tests can edit "source files" without touching the checkout; the
jobs themselves run the installed eqscale package.
"""

import re
import shutil
import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).parent))
from snakemake_helpers import REPO, planned_cells, planned_jobs, run_copied_workflow, snakemake  # noqa: E402

from eqscale.grid import sweep_cells  # noqa: E402
from eqscale.validate import check_study  # noqa: E402

ANALYSIS = {"collect", "fit", "plot", "report", "all"}


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """A copy of the workflow and the tiny study run to completion in it."""
    return run_copied_workflow(tmp_path_factory.mktemp("study"))


def _touch_source(copy: Path, relative: str) -> None:
    path = copy / "src" / "eqscale" / relative
    path.write_text(path.read_text() + "\n# edited\n")


@pytest.mark.slow
def test_tiny_study_runs_whole_dag(study):
    copy, work = study
    _, cells = check_study(yaml.safe_load((REPO / "presets" / "tiny.yaml").read_text()))
    sweep = sweep_cells(cells)
    assert sweep and {c.model for c in sweep} == {"gatr", "transformer"}
    summary = (work / "results" / "summary.csv").read_text().strip().splitlines()
    assert len(summary) == 1 + len(cells) - len(sweep)  # the sweep's runs set learning rates; the analysis skips them
    for model in ("gatr", "transformer"):  # the learning-rate stage ran and the report shows it
        assert (work / "results" / "lr" / f"{model}.json").is_file()
    for name in ("frontier", "joint", "isoflop", "data_efficiency"):
        assert (work / "results" / "fits" / f"{name}.json").exists()
    for figure in ("loss_vs_compute", "isoflop", "data_efficiency", "training_curves"):
        assert (work / "results" / "figures" / f"{figure}.png").stat().st_size > 1000
    report = (work / "results" / "report.md").read_text()
    assert "GATr" in report and "| Size | Parameters | Rate: validation loss |" in report
    # the report is written after the figures: every figure it links exists
    links = re.findall(r"\]\(([^)]+\.(?:png|pdf))\)", report)
    assert links and all((work / "results" / link).is_file() for link in links), links
    for rule in ("simulate", "tokenize", "train", "evaluate", "collect", "fit", "plot", "report"):
        assert list((work / "results" / "benchmarks").rglob("*.tsv")), rule
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
def test_the_best_cells_beat_constant_velocity_and_records_agree(study):
    _, work = study
    import pandas as pd

    summary = pd.read_csv(work / "results" / "summary.csv")
    assert not summary["diverged"].any()
    assert (summary["seed"] == 1).any() and summary["stopped_early"].any()  # a replicate seed; early stopping ran
    # every cell's FLOPs land on its budget (steps chosen from the real batches), a converging cell's under its cap
    on_budget = summary[~summary["stopped_early"]]
    assert ((on_budget["flops"] / on_budget["budget"]).between(0.95, 1.05)).all(), on_budget[["cell", "flops"]]
    assert (summary["flops"] <= summary["budget"] * 1.05).all()
    for model in ("gatr", "transformer"):
        best = summary[summary["model"] == model]["cv_ratio"].min()
        assert best < 1.0, f"no {model} cell beats constant-velocity extrapolation (best ratio {best:.3f})"
    gatr = summary[summary["model"] == "gatr"]
    assert (gatr["equivariance_error"] < 1e-4).all()  # exact up to float32 round-off
    assert (summary["test_mse_lo"] <= summary["test_mse"]).all() and (summary["test_mse"] <= summary["test_mse_hi"]).all()


@pytest.mark.slow
def test_reruns_only_what_changed(study):
    copy, work = study
    _, cells = check_study(yaml.safe_load((REPO / "presets" / "tiny.yaml").read_text()))
    gatr = {c.dir for c in cells if c.model == "gatr"}
    sf = copy / "Snakefile"

    # touching a file reruns nothing, and neither does a fresh clone somewhere else: triggers follow content
    (copy / "src" / "eqscale" / "models" / "gatr.py").touch()
    assert not planned_jobs(work, snakefile=sf)
    clone = copy.parent / "elsewhere" / "clone"
    shutil.copytree(copy, clone)  # new paths, new modification times
    assert not planned_jobs(work, snakefile=clone / "Snakefile")

    # settings that change how fast jobs run, not what they compute, rerun nothing
    preset = yaml.safe_load((REPO / "presets" / "tiny.yaml").read_text())
    preset["training"].update(threads=2, checkpoint_every_s=5, num_workers=1)
    faster = copy / "faster.yaml"
    faster.write_text(yaml.safe_dump(preset))
    assert not planned_jobs(work, snakefile=sf, configfile=faster)

    # editing the plotting code redraws the figures, and the report that links them
    _touch_source(copy, "analysis/plots.py")
    assert set(planned_jobs(work, snakefile=sf)) == {"plot", "report", "all"}
    snakemake(work, "--cores", "2", "--touch", snakefile=sf)

    # editing the GATr model code reruns only GATr's sweep, its learning-rate rule, its training/evaluation and
    # the analysis after it (each family has its own rule file, so the transformer's cells stay)
    _touch_source(copy, "models/gatr.py")
    jobs = planned_jobs(work, snakefile=sf)
    assert set(jobs) == {"train", "lr_rule", "evaluate"} | ANALYSIS and jobs["lr_rule"] == 1
    assert planned_cells(work, "train", snakefile=sf) == gatr
    assert planned_cells(work, "evaluate", snakefile=sf) == gatr - {c.dir for c in sweep_cells(cells)}
    snakemake(work, "--cores", "2", "--touch", snakefile=sf)

    # config edits rerun only the cells they touch: a transformer learning rate reruns the transformer's
    # sweep (new rates), its rule and its cells; a second seed trains only the new seed's cells
    preset = yaml.safe_load((REPO / "presets" / "tiny.yaml").read_text())
    preset["training"]["lr"]["transformer"] = 0.002
    changed = copy / "lr.yaml"
    changed.write_text(yaml.safe_dump(preset))
    transformer = {c.dir for c in check_study(preset)[1] if c.model == "transformer"}
    assert planned_cells(work, "train", snakefile=sf, configfile=changed) == transformer
    preset = yaml.safe_load((REPO / "presets" / "tiny.yaml").read_text())
    preset["grid"]["seeds"] = [0, 1]
    changed = copy / "seeds.yaml"
    changed.write_text(yaml.safe_dump(preset))
    new_cells = {c.dir for c in check_study(preset)[1]} - {c.dir for c in cells}
    assert new_cells and all(d.endswith("seed~1") for d in new_cells)
    assert planned_cells(work, "train", snakefile=sf, configfile=changed) == new_cells

    # editing the simulation code reruns everything downstream of the simulator
    _touch_source(copy, "physics/simulate.py")
    jobs = planned_jobs(work, snakefile=sf)
    assert {"simulate", "tokenize", "train", "evaluate"} | ANALYSIS <= set(jobs)
    assert "assets" not in jobs
    assert jobs["train"] == len(cells)
