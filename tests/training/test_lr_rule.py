"""The learning-rate rule: from sweep cells whose validation loss is a known function of the rate, the best rates and
the power law across sizes come back; an edge optimum is flagged; a bad rule file is refused by name."""

import json
import math

import pytest

from eqscale.cells import Cell
from eqscale.records import RunRecord, write_record
from eqscale.training.lr_rule import Rule, RuleError, best_rate, main, read_rule, rules_from_cells

TRUE = Rule(lr_ref=2e-3, params_ref=1e5, exponent=0.5)  # the best rate halves per 4x in parameters


def _sweep(tmp_path, sizes, factors=(0.25, 0.5, 1, 2, 4), centre=1.0):
    dirs = []
    for size, params in sizes.items():
        best = TRUE(params) * centre
        for f in factors:
            lr = f * TRUE(params)
            cell = Cell("gatr", size, 1e12, 1.0, False, 0, lr=lr)
            d = tmp_path / cell.dir
            d.mkdir(parents=True)
            loss = 1e-3 * (1 + 0.3 * math.log(lr / best) ** 2)  # a parabola in log rate, vertex at `best`
            write_record(RunRecord(cell=cell, steps=10, batch_size=2, lr=lr, params=params, total_flops=1e12,
                                   flops_per_step_nominal=1e11, train_tokens=10, num_train_trajectories=3,
                                   num_train_samples=30, final_train_loss=loss, wall_time_s=1.0, device="cpu",
                                   model_sha256="0" * 64, versions={}, config={}, val_loss=loss), d)
            dirs.append(d)
    return dirs


def test_the_rule_of_a_known_sweep_comes_back(tmp_path, capsys):
    dirs = _sweep(tmp_path, {"xxs": 10_000, "s": 1_000_000})
    rules = rules_from_cells(dirs)
    family = rules["families"]["gatr"]
    assert family["exponent"] == pytest.approx(0.5, abs=1e-6) and family["all_bracketed"]
    rule = Rule(family["lr_ref"], family["params_ref"], family["exponent"])
    assert rule(3e5) == pytest.approx(TRUE(3e5), rel=1e-6)
    out = tmp_path / "rule.json"
    assert main(["--cells", *map(str, dirs), "--out", str(out)]) == 0
    assert read_rule(out, "gatr")(1e4) == pytest.approx(TRUE(1e4), rel=1e-6)
    assert "gatr: lr(N) =" in capsys.readouterr().out


def test_an_optimum_at_the_edge_of_the_sweep_is_flagged(tmp_path):
    # the true best rate is 8x the middle of the sweep: the best swept rate (4x) is kept and flagged
    rules = rules_from_cells(_sweep(tmp_path, {"xxs": 10_000, "s": 1_000_000}, centre=8.0))
    assert not rules["families"]["gatr"]["all_bracketed"]
    assert best_rate([1, 2, 4], [3.0, 2.0, 1.0]) == (4.0, False)
    assert best_rate([1, 2, 4], [3.0, float("nan"), 1.0])[0] == 4.0  # a diverged rate is the worst


def test_one_size_gives_no_rule(tmp_path):
    with pytest.raises(RuleError, match="at least two sizes"):
        rules_from_cells(_sweep(tmp_path, {"xxs": 10_000}))


@pytest.mark.parametrize("text, message", [
    ("{", "holds no usable rule for gatr"),
    (json.dumps({"format": "eqscale-lr-rule", "format_version": 1, "families": {}}), "holds no usable rule for gatr"),
    (json.dumps({"format": "x", "format_version": 1, "families": {"gatr": {"lr_ref": 1, "params_ref": 1,
                                                                          "exponent": 0}}}), "is not an eqscale-lr-rule"),
])
def test_a_bad_rule_file_is_refused_by_name(tmp_path, text, message):
    path = tmp_path / "rule.json"
    path.write_text(text)
    with pytest.raises(RuleError, match=message):
        read_rule(path, "gatr")
    with pytest.raises(RuleError, match="not found"):
        read_rule(tmp_path / "nowhere.json", "gatr")
