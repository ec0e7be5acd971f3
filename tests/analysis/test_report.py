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
    return render_report(study, study_fits, root / "figures", root / "report.md", [root / "absent-rule.json"])


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
    assert lr_lines([tmp_path / "gatr.json"])[0].startswith("Not run")
    runs = [{"lr": 0.001, "val_loss": 0.05, "diverged": False}, {"lr": 0.003, "val_loss": 0.04, "diverged": False},
            {"lr": 0.01, "val_loss": None, "diverged": True}]
    (tmp_path / "gatr.json").write_text(json.dumps({  # the format eqscale lr-rule writes
        "format": "eqscale-lr-rule", "format_version": 1, "families": {"gatr": {
            "lr_ref": 0.002, "params_ref": 3.0e4, "exponent": 0.25, "all_bracketed": False,
            "sizes": [{"size": "xs", "params": 59787, "runs": runs, "best_lr": 0.003, "bracketed": True},
                      {"size": "s", "params": 219523, "runs": runs, "best_lr": 0.001, "bracketed": False}]}}}))
    text = "\n".join(lr_lines([tmp_path / "gatr.json", tmp_path / "absent.json"]))
    assert "**GATr**" in text and "lr(N) = 0.002 x (N / 3e+04)^-0.250" in text and "widen lr_sweep.factors" in text
    assert "| xs | 59,787 | 0.001: 0.05, 0.003: 0.04, 0.01: diverged | 0.003 | yes |" in text
    assert "| s | 219,523 |" in text and "no (edge)" in text
    (tmp_path / "bad.json").write_text("[1, 2]")
    assert "could not be read" in lr_lines([tmp_path / "bad.json"])[0]


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
                 "--lr-rules", str(tmp_path / "none.json")]) == 0
    text = out.read_text()
    assert text.startswith("# eqscale") and "[PDF](figures/data_efficiency.pdf)" in text
    (tmp_path / "fits" / "joint.json").write_text("{}")
    assert main(["--summary", str(tmp_path / "summary.csv"), "--fits-dir", str(tmp_path / "fits"),
                 "--out", str(out)]) == 1
