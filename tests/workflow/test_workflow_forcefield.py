"""The tiny force-field study from nothing through the shared workflow, then reruns after a model edit.

Same pattern as test_workflow_study.py: the workflow's files are copied into a scratch directory and run
from there, so the rerun test can edit a model's source without touching the checkout.
"""

import json
import re
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

sys.path.insert(0, str(Path(__file__).parent))
from snakemake_helpers import REPO, planned_cells, planned_jobs, run_copied_workflow, snakemake  # noqa: E402

from eqscale.validate import check_study  # noqa: E402

PRESET = REPO / "presets" / "forcefield-tiny.yaml"
ANALYSIS = {"collect", "fit", "plot", "report", "all"}


@pytest.fixture(scope="module")
def ff_study(tmp_path_factory):
    """A copy of the workflow and the tiny force-field study run to completion in it."""
    return run_copied_workflow(tmp_path_factory.mktemp("ffstudy"), configfile=PRESET)


def _cells():
    return check_study(yaml.safe_load(PRESET.read_text()))[1]


@pytest.mark.slow
def test_tiny_forcefield_study_runs_whole_dag(ff_study):
    copy, work = ff_study
    cells = _cells()
    results = work / "results"
    stats = json.loads((results / "molecules" / "stats.json").read_text())
    assert stats["statistics"]["test"]["configurations"] > 0
    summary = pd.read_csv(results / "summary.csv")
    assert len(summary) == len(cells)
    assert set(summary["arm"]) == {"mpnn", "mpnn+aug", "mpnn+sym", "egnn"}
    # one epoch, the budget spent to within one batch, the symmetry loss charged for its extra passes
    assert (summary["epochs"] <= 1.0).all()
    assert (summary["flops"] <= summary["budget"]).all() and (summary["flops"] > 0.5 * summary["budget"]).all()
    sym = summary[summary["arm"] == "mpnn+sym"].iloc[0]
    plain = summary[(summary["arm"] == "mpnn") & (summary["size"] == sym["size"])
                    & (summary["budget"] == sym["budget"])].iloc[0]
    assert sym["steps"] < plain["steps"]
    for column in ("test_mse", "energy_mae", "force_mae", "force_l2", "equivariance_error"):
        assert summary[column].notna().all() and (summary[column] >= 0).all(), column
    # equivariance is built into egnn (round-off) and only learned (or not) by the mpnn
    assert summary.loc[summary["arm"] == "egnn", "equivariance_error"].max() < 1e-4
    assert summary.loc[summary["arm"] == "mpnn", "equivariance_error"].min() > 1e-3
    for name in ("frontier", "joint", "isoflop", "findings"):
        assert (results / "fits" / f"{name}.json").exists()
    assert json.loads((results / "fits" / "findings.json").read_text())["study"].startswith("Ngo")
    figures = sorted(p.name for p in (results / "figures").glob("*.png"))
    assert "loss_vs_compute.png" in figures and all((results / "figures" / f).stat().st_size > 1000 for f in figures)
    report = (results / "report.md").read_text()
    assert "MPNN" in report and "EGNN" in report and "0.14" in report  # beside paper 2's exponents
    links = re.findall(r"\]\(([^)]+\.(?:png|pdf))\)", report)
    assert links and all((results / link).is_file() for link in links), links
    assert not planned_jobs(work, snakefile=copy / "Snakefile", configfile=PRESET)  # nothing left to do


@pytest.mark.slow
def test_forcefield_reruns_only_the_edited_family(ff_study):
    copy, work = ff_study
    sf, cells = copy / "Snakefile", _cells()
    egnn = {c.dir for c in cells if c.model == "egnn"}
    mpnn = {c.dir for c in cells if c.model == "mpnn"}

    # a family's learning rate reruns that family's cells only, symmetry arms included
    preset = yaml.safe_load(PRESET.read_text())
    preset["forcefield"] = {**preset.get("forcefield", {}), "lr": {"mpnn": 0.002}}
    changed = copy / "lr.yaml"
    changed.write_text(yaml.safe_dump(preset))
    assert planned_cells(work, "ff-train", snakefile=sf, configfile=changed) == mpnn

    # editing one family's model reruns its cells (train and evaluate) and the analysis, nothing else
    path = copy / "src" / "eqscale" / "forcefield" / "models" / "egnn.py"
    path.write_text(path.read_text() + "\n# edited\n")
    jobs = planned_jobs(work, snakefile=sf, configfile=PRESET)
    assert set(jobs) == {"train", "evaluate"} | ANALYSIS and jobs["train"] == jobs["evaluate"] == len(egnn)
    assert planned_cells(work, "ff-train", snakefile=sf, configfile=PRESET) == egnn

    # the labelling code reruns the data and everything after it
    path = copy / "src" / "eqscale" / "forcefield" / "labels.py"
    path.write_text(path.read_text() + "\n# edited\n")
    jobs = planned_jobs(work, snakefile=sf, configfile=PRESET)
    assert {"molecules", "molecule_stats", "train", "evaluate"} | ANALYSIS <= set(jobs)
    assert jobs["train"] == len(cells)
