"""eqscale collect: fake cell trees -> summary rows; inconsistent or malformed records refused by name."""

from __future__ import annotations

import json
import math
import shutil

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
        assert got["cv_ratio"] == pytest.approx(want["test_mse"] / want["const_velocity_mse"])
        assert got["flops"] == pytest.approx(want["flops"])
        assert got["budget"] == pytest.approx(want["budget"])
        assert got["num_train_trajectories"] == want["num_train_trajectories"]
        assert got["tokens"] == pytest.approx(want["tokens"])
        assert got["device"] == "cpu" and got["run_dir"].endswith(f"seed~{want['seed']}")
        assert got["in_scaling"] == (want["data_fraction"] == 1.0) and not got["diverged"]


def test_cells_json_carries_the_designs_and_cli_writes_csv_atomically(tmp_path, rows, capsys):
    dirs = [write_cell(tmp_path, row) for row in rows[:3]]
    out = tmp_path / "out" / "summary.csv"
    planned = [{"dir": str(dirs[0]), "designs": ["scaling", "data_efficiency"]},
               {"dir": str(dirs[1]), "designs": ["scaling"]}, {"dir": str(dirs[2]), "designs": ["data_efficiency"]}]
    assert main(["--cells-json", json.dumps(planned), "--out", str(out)]) == 0
    df = pd.read_csv(out).set_index("run_dir")
    assert len(df) == 3
    assert list(df.loc[[str(d) for d in dirs], "in_scaling"]) == [True, True, False]
    assert list(df.loc[[str(d) for d in dirs], "in_data_efficiency"]) == [True, False, True]
    assert not list(out.parent.glob(".*.tmp"))  # no temp file left behind
    assert "collected 3 cells" in capsys.readouterr().out
    assert main(["--run-dirs", *map(str, dirs), str(dirs[0]), "--out", str(out)]) == 0  # duplicates once


def test_missing_eval_json_names_the_file(tmp_path, rows):
    write_cell(tmp_path, rows[0])
    lonely = write_cell(tmp_path, rows[1], with_eval=False)
    with pytest.raises(CollectError, match=f"{lonely / 'eval.json'} is missing: the cell was not evaluated"):
        collect_runs(tmp_path / "runs")


def _edit(path, **changes):
    data = json.loads(path.read_text())
    for key, value in changes.items():
        if value is KeyError:
            del data[key]
        else:
            data[key] = value
    path.write_text(json.dumps(data))


@pytest.mark.parametrize("file, change, message", [
    ("eval.json", "truncate", "is not valid JSON"),
    ("run.json", {"total_flops": KeyError}, "lacks the field 'total_flops'"),
    ("eval.json", {"test_mse": "abc"}, "'test_mse' must be a number"),
    ("eval.json", {"test_mse": None}, "'test_mse' is missing or NaN"),
    ("eval.json", {"test_mse": -1.0}, "'test_mse' is -1.0; it must be finite and >= 0"),
    ("run.json", {"steps": 12.5}, "'steps' must be a non-negative integer"),
    ("run.json", {"format_version": 1}, "is not an eqscale-run record of version 3"),
    ("eval.json", {"model_sha256": "0" * 64}, "evaluated other weights"),
    ("run.json", {"diverged": True}, "run.json says diverged=True but eval.json says diverged=False"),
    ("eval.json", "[1, 2]", "holds a list"),
])
def test_malformed_records_are_refused_naming_the_file(tmp_path, rows, capsys, file, change, message):
    cell = write_cell(tmp_path, rows[0])
    path = cell / file
    if change == "truncate":
        path.write_text(path.read_text()[:40])
    elif isinstance(change, str):
        path.write_text(change)
    else:
        _edit(path, **change)
    assert main(["--runs", str(tmp_path / "runs"), "--out", str(tmp_path / "s.csv")]) == 1
    err = capsys.readouterr().err
    assert str(cell) in err and message in err, err
    assert not (tmp_path / "s.csv").exists()


def test_records_of_another_cell_are_refused(tmp_path, rows):
    a, b = write_cell(tmp_path, rows[0]), write_cell(tmp_path, rows[1])
    shutil.copy(b / "eval.json", a / "eval.json")  # an eval.json copied from another cell
    with pytest.raises(CollectError, match=f"{a / 'eval.json'} names cell .* but sits in the directory of"):
        collect_runs(run_dirs=[a])
    run = json.loads((b / "run.json").read_text())
    run["cell"]["model"] = "transformer" if run["cell"]["model"] == "gatr" else "gatr"
    (b / "run.json").write_text(json.dumps(run))  # a run.json claiming another model
    with pytest.raises(CollectError, match=f"{b / 'run.json'} names cell"):
        collect_runs(run_dirs=[b])


def test_a_diverged_cell_is_a_row_not_a_hole(tmp_path, rows):
    write_cell(tmp_path, rows[0])
    write_cell(tmp_path, {**rows[1], "diverged": True})
    df = collect_runs(tmp_path / "runs")
    assert len(df) == 2 and df["diverged"].sum() == 1
    assert math.isnan(df.loc[df["diverged"], "test_mse"].iloc[0])


def test_empty_tree_is_an_error(tmp_path):
    (tmp_path / "runs").mkdir()
    with pytest.raises(CollectError, match="no cells found under"):
        collect_runs(tmp_path / "runs")
    with pytest.raises(CollectError, match="is not a directory"):
        collect_runs(tmp_path / "nowhere")


def test_sample_losses_are_stacked_on_the_shared_order(tmp_path, rows):
    import numpy as np

    from eqscale.analysis.collect import stack_sample_losses

    dirs = [write_cell(tmp_path, row) for row in rows[:3]]
    out = tmp_path / "summary.csv"
    assert main(["--run-dirs", *map(str, dirs), "--out", str(out)]) == 0
    summary = pd.read_csv(out)
    with np.load(tmp_path / "sample_losses.npz") as losses:
        assert list(losses["cells"]) == list(summary["cell"])
        per_cell = losses["sq_error"].sum(axis=1) / losses["n_values"].sum()
        np.testing.assert_allclose(per_cell, summary["test_mse"], rtol=1e-12)
    # a cell evaluated on other samples, or whose samples do not add up to its eval.json, is refused by name
    first = dirs[0] / "eval_samples.npz"
    with np.load(first) as data:
        shifted = {k: data[k] for k in data.files}
    shifted["sample"] = shifted["sample"] + 1
    np.savez(first, **shifted)
    with pytest.raises(CollectError, match="not a prefix of the other cells' evaluation order"):
        stack_sample_losses(collect_runs(run_dirs=dirs))
    shifted["sample"] = shifted["sample"] - 1
    shifted["sq_error"] = shifted["sq_error"] * 1.01
    np.savez(first, **shifted)
    with pytest.raises(CollectError, match="eval.json states"):
        stack_sample_losses(collect_runs(run_dirs=dirs))
