"""report.md: for each finding the rule, the numbers, the interval, the margin and the verdict -- the same as
findings.json -- and around them the compute split, bracketing, evaluation error, seeds and the LR stage."""

from __future__ import annotations

import dataclasses
import json

import pytest

from eqscale.analysis.figures import FIGURE_NAMES
from eqscale.analysis.report import check_row, fmt_estimate, lr_lines, main, render_report
from eqscale.analysis.results import Estimate, FamilyCompute
from eqscale.analysis.store import write_fits


@pytest.fixture(scope="module")
def rendered(tmp_path_factory, study, study_fits) -> str:
    root = tmp_path_factory.mktemp("report")
    return render_report(study, study_fits, root / "figures", root / "report.md", root / "absent-rule.json")


def test_every_finding_states_its_rules_numbers_and_verdict(rendered, study_fits):
    for f in study_fits.findings.findings:
        assert f"## Finding {f.number}: {f.title}" in rendered
        assert f"**Finding {f.number}: {f.verdict}** -- {f.reason}." in rendered
        for c in f.checks:
            line = "| " + " | ".join(str(x).replace("|", "\\|") for x in check_row(c)) + " |"
            assert line in rendered, line
            if c.verdict is not None:
                assert f"- {c.rule}" in rendered
    # the verdict table names each finding's verdict and why
    for f in study_fits.findings.findings:
        assert f"| {f.number}. {f.claim} | {f.verdict} | " in rendered


def test_a_check_row_shows_interval_margin_refits_and_seed_spread():
    from eqscale.analysis.results import Check

    row = check_row(Check(quantity="q", claim="<= 1.1", rule="r", estimate=Estimate(1.02, 0.95, 1.08),
                          verdict="supported", reason="interval wholly below 1.1", margin=0.1, refit_share=0.97,
                          seed_spread=0.031))
    assert row == ["q", "<= 1.1", "1.02 [0.95, 1.08]", "0.1", "97%", "+-3.1%",
                   "supported (interval wholly below 1.1)"]
    assert fmt_estimate(Estimate(2.0)) == "2 (no interval)"


def test_report_shows_compute_split_bracketing_cells_and_evaluation(rendered, study_fits, study):
    gatr: FamilyCompute = study_fits.compute.families["gatr"]
    assert "**gatr**: F = " in rendered and f"N^{gatr.power_p:.2f}" in rendered
    assert "| Size | Parameters N | FLOPs per step F | F / N | Attention | Padding | Dense | Cells |" in rendered
    assert "Is each budget's IsoFLOP minimum bracketed by the sampled sizes?" in rendered
    assert "| 1e+12 | " in rendered and "bracketed" in rendered
    assert "CV ratio, contact" in rendered
    for cell in study["cell"].head(5):
        assert f"| {cell} | " in rendered
    assert "Evaluation's share of the study's wall time" in rendered
    assert "Seed-to-seed spread of ln(test MSE): gatr:" in rendered
    assert "Learning-rate stage" in rendered and "Not run (" in rendered


def test_report_text_does_not_depend_on_whether_figures_exist(tmp_path, study, study_fits):
    # the report may be written before or after the plot stage: neither may leave a stale note
    before = render_report(study, study_fits, tmp_path / "figures", tmp_path / "report.md")
    (tmp_path / "figures").mkdir()
    for name in FIGURE_NAMES:
        (tmp_path / "figures" / f"{name}.png").write_bytes(b"png")
    after = render_report(study, study_fits, tmp_path / "figures", tmp_path / "report.md")
    assert before == after
    for name in FIGURE_NAMES:
        assert f"(figures/{name}.png)" in after
    assert "not drawn" not in after


def test_learning_rate_section_shows_the_sweep_and_rule_or_says_not_run(tmp_path):
    assert lr_lines(tmp_path / "rule.json")[0].startswith("Not run")
    (tmp_path / "rule.json").write_text(json.dumps({
        "rule": {"formula": "lr = c * N^-k", "gatr": {"c": 0.02, "k": 0.25}},
        "sweep": [{"model": "gatr", "size": "xs", "lr": 0.001, "val_loss": 0.05},
                  {"model": "gatr", "size": "xs", "lr": 0.003, "val_loss": 0.04}]}))
    text = "\n".join(lr_lines(tmp_path / "rule.json"))
    assert "- formula: lr = c * N^-k" in text and "- gatr: c = 0.02, k = 0.25" in text
    assert "| model | size | lr | val_loss |" in text and "| gatr | xs | 0.003 | 0.04 |" in text
    (tmp_path / "bad.json").write_text("[1, 2]")
    assert "expected an object" in lr_lines(tmp_path / "bad.json")[0]


def test_a_contradicted_finding_is_reported_plainly(study_fits, study, tmp_path):
    f3 = study_fits.findings.findings[2]
    flipped = dataclasses.replace(f3, verdict="not supported", reason="not supported: test")
    findings = dataclasses.replace(study_fits.findings, findings=[*study_fits.findings.findings[:2], flipped])
    text = render_report(study, dataclasses.replace(study_fits, findings=findings), tmp_path, tmp_path / "r.md")
    assert "**Finding 3: not supported** -- not supported: test." in text


def test_cli_writes_the_report(tmp_path, study, study_fits):
    study.to_csv(tmp_path / "summary.csv", index=False)
    write_fits(study_fits, tmp_path / "fits")
    out = tmp_path / "results" / "report.md"
    assert main(["--summary", str(tmp_path / "summary.csv"), "--fits-dir", str(tmp_path / "fits"),
                 "--figures-dir", str(tmp_path / "results" / "figures"), "--out", str(out),
                 "--lr-rule", str(tmp_path / "none.json")]) == 0
    text = out.read_text()
    assert text.startswith("# eqscale") and "[PDF](figures/data_efficiency.pdf)" in text
    (tmp_path / "fits" / "joint.json").write_text("{}")
    assert main(["--summary", str(tmp_path / "summary.csv"), "--fits-dir", str(tmp_path / "fits"),
                 "--out", str(out)]) == 1
