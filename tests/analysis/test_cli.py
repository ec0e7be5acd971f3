"""The analysis stages through `eqscale <stage>`: help, and fit -> plot -> report on a synthetic study's files."""

from __future__ import annotations

import json

import pytest

from eqscale.analysis.store import FIT_FILES
from eqscale.analysis.synthetic import grid_table, synthetic_study
from eqscale.cli import main as eqscale


@pytest.mark.parametrize("stage", ["fit", "plot", "report"])
def test_help(stage, capsys):
    with pytest.raises(SystemExit) as exit_:
        eqscale([stage, "--help"])
    assert exit_.value.code == 0
    assert f"usage: eqscale {stage}" in capsys.readouterr().out


def test_stages_end_to_end(tmp_path, capsys):
    study = synthetic_study(grid_table(budgets=(1e12, 1e13, 1e14)), n_test_samples=128, rng_seed=0)
    results = tmp_path / "results"
    results.mkdir()
    study.summary.to_csv(results / "summary.csv", index=False)
    study.sample_losses.save(results / "sample_losses.npz")  # beside the summary, where fit looks by default
    settings = json.dumps({"analysis": {"equivalence_margin": 0.2, "min_frontier_points": 3},
                           "evaluation": {"target_rel_se": 0.02}})
    assert eqscale(["fit", "--summary", str(results / "summary.csv"), "--out-dir", str(results / "fits"),
                    "--bootstrap", "30", "--seed", "1", "--settings", settings]) == 0
    out = capsys.readouterr().out
    assert "frontier transformer+aug: skipped:" in out  # recorded, not fatal
    assert "finding 1: " in out
    for kind in FIT_FILES:
        doc = json.loads((results / "fits" / f"{kind}.json").read_text())
        assert doc["n_cells"] == len(study.summary) and doc["bootstrap"]["resamples"] == 30
    findings = json.loads((results / "fits" / "findings.json").read_text())
    assert findings["settings"]["equivalence_margin"] == 0.2 and findings["settings"]["target_rel_se"] == 0.02
    assert "paired" in findings["evaluation"]["method"]
    assert eqscale(["plot", "--summary", str(results / "summary.csv"), "--fits-dir", str(results / "fits"),
                    "--runs", str(tmp_path / "runs"), "--out-dir", str(results / "figures")]) == 0
    assert eqscale(["report", "--summary", str(results / "summary.csv"), "--fits-dir", str(results / "fits"),
                    "--figures-dir", str(results / "figures"), "--out", str(results / "report.md")]) == 0
    report = (results / "report.md").read_text()
    joint_a = json.loads((results / "fits" / "joint.json").read_text())["arms"]["gatr"]["exponents"]["a"]
    assert f"{joint_a['value']:.3g} [" in report
    assert "![Training curves](figures/training_curves.png)" in report
    assert "; target 2.0%, " in report and "(above target)" in report


def test_fit_fails_cleanly_on_bad_input(tmp_path, capsys):
    (tmp_path / "summary.csv").write_text("arm,params\ngatr,10\n")
    assert eqscale(["fit", "--summary", str(tmp_path / "summary.csv"), "--out-dir", str(tmp_path / "fits")]) == 1
    assert "lacks column(s)" in capsys.readouterr().err
    assert eqscale(["fit", "--summary", str(tmp_path / "absent.csv"), "--out-dir", str(tmp_path / "fits")]) == 1
    (tmp_path / "sample_losses.npz").write_text("junk")
    assert eqscale(["fit", "--summary", str(tmp_path / "summary.csv"), "--out-dir", str(tmp_path / "fits")]) == 1
    assert "not a readable npz" in capsys.readouterr().err
    assert eqscale(["fit", "--summary", str(tmp_path / "summary.csv"), "--settings", "[1"]) == 1
