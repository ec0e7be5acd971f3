"""eqscale collect: fake cell trees -> summary rows; clear errors for missing or malformed files."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from fake_cells import write_cell

from eqscale.analysis.collect import COLUMNS, CollectError, collect_runs, main
from eqscale.analysis.synthetic import synthetic_summary


@pytest.fixture
def rows() -> list[dict]:
    """Cells of a small study: 2 budgets x 2 sizes per model plus half-data cells of three arms."""
    return synthetic_summary(budgets=(1e12, 1e13), sizes=(1e4, 1e5), fractions=(0.5,)).to_dict("records")


def test_collect_scans_a_runs_tree(tmp_path, rows):
    for row in rows:
        write_cell(tmp_path, row)
    df = collect_runs(tmp_path / "runs")
    assert list(df.columns) == list(COLUMNS)
    assert len(df) == len(rows)
    assert set(df["arm"]) == {"gatr", "transformer", "transformer+aug"}
    aug = df[df["arm"] == "transformer+aug"].iloc[0]
    assert aug["model"] == "transformer" and bool(aug["augment"]) and aug["data_fraction"] == 0.5
    expected = {(r["arm"], r["params"], r["steps"], r["data_fraction"]): r for r in rows}
    for got in df.to_dict("records"):
        want = expected[(got["arm"], got["params"], got["steps"], got["data_fraction"])]
        assert got["test_mse"] == pytest.approx(want["test_mse"])
        assert got["flops"] == pytest.approx(want["flops"])
        assert got["budget"] == pytest.approx(want["budget"])
        assert got["num_train_trajectories"] == want["num_train_trajectories"]
        assert got["tokens"] == pytest.approx(want["tokens"])
        assert got["device"] == "cpu" and got["run_dir"].endswith(f"seed~{want['seed']}")


def test_explicit_run_dirs_and_cli_writes_csv_atomically(tmp_path, rows, capsys):
    dirs = [write_cell(tmp_path, row) for row in rows[:3]]
    out = tmp_path / "out" / "summary.csv"
    assert main(["--run-dirs", *map(str, dirs), str(dirs[0]), "--out", str(out)]) == 0  # duplicates once
    df = pd.read_csv(out)
    assert len(df) == 3 and sorted(df["run_dir"]) == sorted(map(str, dirs))
    assert not list(out.parent.glob(".*.tmp"))  # no temp file left behind
    assert "collected 3 cells" in capsys.readouterr().out


def test_missing_eval_json_names_the_file(tmp_path, rows):
    write_cell(tmp_path, rows[0])
    lonely = write_cell(tmp_path, rows[1], with_eval=False)
    with pytest.raises(CollectError, match=f"{lonely / 'eval.json'} is missing: .* trained but not evaluated"):
        collect_runs(tmp_path / "runs")


def test_malformed_json_and_missing_keys_name_the_file(tmp_path, rows, capsys):
    cell = write_cell(tmp_path, rows[0])
    (cell / "eval.json").write_text("{\"test_mse\": 0.1,")
    assert main(["--runs", str(tmp_path / "runs"), "--out", str(tmp_path / "s.csv")]) == 1
    err = capsys.readouterr().err
    assert f"{cell / 'eval.json'} is not valid JSON" in err and not (tmp_path / "s.csv").exists()
    run = json.loads((cell / "run.json").read_text())
    del run["total_flops"]
    (cell / "run.json").write_text(json.dumps(run))
    with pytest.raises(CollectError, match=f"{cell / 'run.json'} lacks key\\(s\\) 'total_flops'"):
        collect_runs(run_dirs=[cell])


def test_empty_tree_is_an_error(tmp_path):
    (tmp_path / "runs").mkdir()
    with pytest.raises(CollectError, match="no cells found under"):
        collect_runs(tmp_path / "runs")
    with pytest.raises(CollectError, match="is not a directory"):
        collect_runs(tmp_path / "nowhere")
