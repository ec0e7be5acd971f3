"""report.md: the fixture's fitted numbers, plain verdicts per finding, links, cells and compute."""

from __future__ import annotations

import pytest

import dataclasses

from eqscale.analysis import report as R
from eqscale.analysis.figures import FIGURE_NAMES
from eqscale.analysis.report import fmt_estimate, fmt_number, main, render_report
from eqscale.analysis.results import BootstrapInfo, Estimate, Skipped
from eqscale.analysis.store import write_fits


@pytest.fixture(scope="module")
def rendered(tmp_path_factory, study, study_fits) -> tuple[str, object]:
    root = tmp_path_factory.mktemp("report")
    (root / "figures").mkdir()
    (root / "figures" / "loss_vs_compute.png").write_bytes(b"png")
    return render_report(study, study_fits, root / "figures", root / "report.md"), root


def test_report_shows_the_fitted_numbers(rendered, study_fits):
    text, _ = rendered
    for arm in ("gatr", "transformer"):
        a = study_fits.joint.arms[arm].exponents["a"]
        assert fmt_estimate(a) in text
        front = study_fits.frontier.arms[arm]
        assert fmt_estimate(front.variants[front.primary].params["gamma"]) in text
    comp = study_fits.frontier.comparisons["transformer/gatr"]
    for point in comp.at_budget:
        assert f"| loss ratio transformer / GATr at {fmt_number(point.budget)} FLOPs | > 1 | " \
               f"{fmt_estimate(point.ratio)} |" in text
    gap = study_fits.data_efficiency.comparisons["transformer/gatr"].degradation_ratio
    assert fmt_estimate(gap) in text


def test_report_states_verdicts_cells_compute_and_links(rendered, study):
    text, _ = rendered
    # the synthetic study is drawn from laws that agree with all three findings
    for n in (1, 2, 3):
        assert f"**Finding {n}: supported.**" in text
    assert f"- Cells: {len(study)} (gatr: " in text
    assert f"- Total training compute: {fmt_number(float(study['flops'].sum()))} FLOPs" in text
    assert "[PNG](figures/loss_vs_compute.png)" in text and "![Test loss vs compute" in text
    assert "- IsoFLOP curves: [PNG](figures/isoflop.png), [PDF](figures/isoflop.pdf)" in text
    assert "not drawn" not in text
    assert "isoflop / transformer+aug: IsoFLOP of transformer+aug: needs at least 2 budgets" in text


def test_report_text_does_not_depend_on_whether_figures_exist(tmp_path, study, study_fits):
    # the report may be written before or after the plot stage: neither may leave a stale note
    before = render_report(study, study_fits, tmp_path / "figures", tmp_path / "report.md")
    (tmp_path / "figures").mkdir()
    for name in FIGURE_NAMES:
        (tmp_path / "figures" / f"{name}.png").write_bytes(b"png")
    after = render_report(study, study_fits, tmp_path / "figures", tmp_path / "report.md")
    assert before == after
    for name in FIGURE_NAMES:
        assert f"({'figures'}/{name}.png)" in after


def test_verdict_rules():
    est = Estimate(1.3, 1.1, 1.5)
    assert R.verdict_above(est, 1.0) == "supported"
    assert R.verdict_below(est, 1.0) == "not supported"
    assert R.verdict_above(Estimate(1.1, 0.9, 1.3), 1.0) == "inconclusive (intervals overlap)"
    assert R.verdict_above(Estimate(1.1), 1.0).startswith("inconclusive (no interval")
    few = BootstrapInfo(resamples=100, ok=30, failed=70, seed=0, confidence=0.95)
    assert R.verdict_above(est, 1.0, few) == "inconclusive (only 30% of bootstrap resamples could be refitted)"
    assert R.verdict_includes(Estimate(0.01, -0.02, 0.04), 0.0) == "supported"
    assert R.combine(["supported", "inconclusive (intervals overlap)"]) == "inconclusive"
    assert R.combine(["supported", "not supported (a gap remains with augmentation)"]) == "not supported"


def test_not_supported_and_missing_fits_are_reported_plainly(study_fits, study, tmp_path):
    # pretend the transformer allocates like GATr: finding 3 is then contradicted
    joint = study_fits.joint
    arms = dict(joint.arms, transformer=dataclasses.replace(joint.arms["transformer"],
                                                            exponents={"a": Estimate(0.7, 0.65, 0.75)}))
    frontier = dataclasses.replace(study_fits.frontier, arms={}, comparisons=Skipped("no frontier in this test"))
    fits = dataclasses.replace(study_fits, joint=dataclasses.replace(joint, arms=arms, comparisons=Skipped("test")),
                               frontier=frontier)
    text = render_report(study, fits, tmp_path, tmp_path / "report.md")
    assert "**Finding 3: not supported.**" in text
    assert "| transformer: a in N* ~ C^a, joint law" in text and "0.7 [0.65, 0.75] | not supported |" in text
    assert "**Finding 2: inconclusive.**" in text and "no frontier in this test" in text


def test_cli_writes_the_report(tmp_path, study, study_fits):
    study.to_csv(tmp_path / "summary.csv", index=False)
    write_fits(study_fits, tmp_path / "fits")
    out = tmp_path / "results" / "report.md"
    assert main(["--summary", str(tmp_path / "summary.csv"), "--fits-dir", str(tmp_path / "fits"),
                 "--figures-dir", str(tmp_path / "results" / "figures"), "--out", str(out)]) == 0
    text = out.read_text()
    assert text.startswith("# eqscale") and "[PDF](figures/data_efficiency.pdf)" in text
