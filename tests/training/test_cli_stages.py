"""The train and evaluate stages as commands: run.json, eval.json, resume, clear errors."""

import json
import subprocess
import sys

import pytest

from eqscale.cells import Cell
from eqscale.config import deep_merge, validate_config
from eqscale.grid import nominal_flops_per_step
from eqscale.records import read_cell_results


def _run(args, **kw):
    return subprocess.run([sys.executable, "-m", "eqscale", *args], capture_output=True, text=True, **kw)


TRAINING = {"batch_size": 2, "log_every": 4}


def _cell_for_steps(tmp_path, token_config, model, steps, **fields):
    """A cell whose budget buys exactly `steps` steps of its model under the test's config."""
    config = validate_config(deep_merge(token_config, {"training": TRAINING}))
    per_step = nominal_flops_per_step(model, fields.get("size", "xxs"), config)
    cell = Cell(model=model, size=fields.get("size", "xxs"), budget=(steps + 0.5) * per_step, data_fraction=1.0,
                augment=fields.get("augment", False), seed=0)
    return tmp_path / cell.dir, cell


@pytest.mark.slow
@pytest.mark.parametrize("model", ["gatr", "transformer"])
def test_train_then_evaluate_a_cell(tmp_path, tokens_dir, token_config, model):
    cell_dir, cell = _cell_for_steps(tmp_path, token_config, model, 12, augment=model == "transformer")
    cfg = json.dumps({"seed": token_config["seed"], "tokens": token_config["tokens"],
                      "assets": token_config["assets"], "simulation": token_config["simulation"],
                      "training": TRAINING,
                      "evaluation": {"batch_size": 4, "max_samples": 8, "equivariance_samples": 4}})
    train = _run(["train", "--config-json", cfg, "--cell-dir", str(cell_dir), "--tokens", str(tokens_dir),
                  "--no-progress"])
    assert train.returncode == 0, train.stderr
    run = json.loads((cell_dir / "run.json").read_text())
    steps = run["steps"]
    assert 9 <= steps <= 15 and run["cell"] == cell.as_record()  # planned for ~12 on the expected batch
    # the steps were chosen from the real batches: the recorded FLOPs land on the budget within one step
    assert abs(run["total_flops"] - cell.budget) <= 0.6 * run["total_flops"] / steps
    assert 0 < run["flops_attention"] < run["total_flops"] and run["params"] > 0
    assert run["num_train_trajectories"] > 0 and run["val_loss"] > 0
    rows = (cell_dir / "metrics.csv").read_text().strip().splitlines()
    assert rows[0].split(",")[:3] == ["step", "train_loss", "lr"] and rows[-1].startswith(f"{steps},")
    # a second run of a finished cell changes nothing
    weights = (cell_dir / "model.pt").read_bytes()
    again = _run(["train", "--config-json", cfg, "--cell-dir", str(cell_dir), "--tokens", str(tokens_dir),
                  "--no-progress"])
    assert again.returncode == 0 and (cell_dir / "model.pt").read_bytes() == weights

    evaluate = _run(["evaluate", "--config-json", cfg, "--cell-dir", str(cell_dir), "--tokens", str(tokens_dir)])
    assert evaluate.returncode == 0, evaluate.stderr
    run, result = read_cell_results(cell_dir)  # both records check out against each other and the directory
    assert result.n_test_samples == 8  # capped by evaluation.max_samples
    assert result.test_mse_lo < result.test_mse < result.test_mse_hi and result.test_mse_se > 0
    assert (cell_dir / "eval_samples.npz").is_file()
    assert result.test_mse > 0 and result.const_velocity_mse > 0
    if model == "gatr":
        assert result.equivariance_error < 1e-4  # float32 round-off only
    else:
        assert result.equivariance_error > 1e-3  # a plain transformer is not equivariant


def test_bad_cell_dirs_fail_clearly(tmp_path, tokens_dir):
    proc = _run(["train", "--cell-dir", str(tmp_path / "runs/gatr/big"), "--tokens", str(tokens_dir)])
    assert proc.returncode == 1 and "not a cell directory" in proc.stderr
    cell = Cell("gatr", "huge", 1e12, 1.0, False, 0)
    proc = _run(["train", "--cell-dir", str(tmp_path / cell.dir), "--tokens", str(tokens_dir)])
    assert proc.returncode == 1 and "unknown gatr size 'huge'" in proc.stderr
    proc = _run(["evaluate", "--cell-dir", str(tmp_path / Cell("gatr", "xxs", 1e12, 1.0, False, 0).dir),
                 "--tokens", str(tokens_dir)])
    assert proc.returncode == 1 and "run.json is missing" in proc.stderr
