"""The train and evaluate stages as commands: run.json, eval.json, resume, clear errors."""

import json
import subprocess
import sys

import pytest

from eqscale.grid import cell_dir


def _run(args, **kw):
    return subprocess.run([sys.executable, "-m", "eqscale", *args], capture_output=True, text=True, **kw)


@pytest.mark.slow
@pytest.mark.parametrize("model", ["gatr", "transformer"])
def test_train_then_evaluate_a_cell(tmp_path, tokens_dir, token_config, model):
    cell = tmp_path / cell_dir(model, "xxs", 12, 1.0, model == "transformer", 0)
    cfg = json.dumps({"seed": token_config["seed"], "tokens": token_config["tokens"],
                      "training": {"batch_size": 2, "log_every": 4},
                      "evaluation": {"batch_size": 4, "max_samples": 8, "equivariance_samples": 4}})
    train = _run(["train", "--config-json", cfg, "--cell-dir", str(cell), "--tokens", str(tokens_dir),
                  "--budget", "1e10", "--no-progress"])
    assert train.returncode == 0, train.stderr
    run = json.loads((cell / "run.json").read_text())
    assert run["cell"]["steps"] == 12 and run["cell"]["model"] == model and run["cell"]["budget"] == 1e10
    assert run["params"] > 0 and run["total_flops"] > 0
    assert run["num_train_trajectories"] > 0
    rows = (cell / "metrics.csv").read_text().strip().splitlines()
    assert rows[0].split(",")[:3] == ["step", "train_loss", "lr"] and rows[-1].startswith("12,")
    # a second run of a finished cell changes nothing
    weights = (cell / "model.pt").read_bytes()
    again = _run(["train", "--config-json", cfg, "--cell-dir", str(cell), "--tokens", str(tokens_dir), "--no-progress"])
    assert again.returncode == 0 and (cell / "model.pt").read_bytes() == weights

    evaluate = _run(["evaluate", "--config-json", cfg, "--cell-dir", str(cell), "--tokens", str(tokens_dir)])
    assert evaluate.returncode == 0, evaluate.stderr
    result = json.loads((cell / "eval.json").read_text())
    assert result["num_test_samples"] == 8
    assert result["test_mse"] > 0 and result["const_velocity_mse"] > 0
    if model == "gatr":
        assert result["equivariance_error"] < 1e-4  # float32 round-off only
    else:
        assert result["equivariance_error"] > 1e-3  # a plain transformer is not equivariant


def test_bad_cell_dirs_fail_clearly(tmp_path, tokens_dir):
    proc = _run(["train", "--cell-dir", str(tmp_path / "runs/gatr/big"), "--tokens", str(tokens_dir)])
    assert proc.returncode == 1 and "not a cell directory" in proc.stderr
    cell = tmp_path / cell_dir("gatr", "huge", 5, 1.0, False, 0)
    proc = _run(["train", "--cell-dir", str(cell), "--tokens", str(tokens_dir)])
    assert proc.returncode == 1 and "unknown gatr size 'huge'" in proc.stderr
    proc = _run(["evaluate", "--cell-dir", str(tmp_path / cell_dir("gatr", "xxs", 5, 1.0, False, 0)),
                 "--tokens", str(tokens_dir)])
    assert proc.returncode == 1 and "model.pt not found" in proc.stderr
