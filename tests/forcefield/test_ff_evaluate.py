"""`eqscale ff-evaluate`: the ratio test loss and its baseline, the shared order, the equivariance error, the files."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from eqscale.forcefield.evaluate import (SAMPLE_KEYS, configuration_errors, equivariance_error, evaluate_cell,
                                         load_molecules)
from eqscale.forcefield.models import build_model
from eqscale.forcefield.train import train_cell
from eqscale.records import MODEL_NAME, RecordError, read_eval, read_run
from eqscale.training.measure import evaluation_order

from test_ff_train import cell_dir, study_config

BUDGET = 8e6  # two or three mpnn or egnn xs steps: evaluation, not training, is under test


@pytest.fixture(scope="module")
def config(ff_config) -> dict:
    # target 0: every test configuration is measured (12 of them); the pilot of 4 is the rest's prefix
    return study_config(ff_config, evaluation={"target_rel_se": 1e-6, "equivariance_samples": 4,
                                               "equivariance_transforms": 2})


@pytest.fixture(scope="module")
def molecules(molecule_stats) -> Path:
    return molecule_stats.parent


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory, config, molecules) -> list[Path]:
    """Two trained and evaluated cells (mpnn and egnn)."""
    root = tmp_path_factory.mktemp("runs")
    cells = [cell_dir(root, "mpnn", BUDGET), cell_dir(root, "egnn", BUDGET)]
    for directory in cells:
        train_cell(directory, molecules, config, device="cpu", progress=False)
        evaluate_cell(directory, molecules, config, device="cpu")
    return cells


def test_test_loss_is_summed_energy_and_force_errors_over_summed_atoms(evaluated, config, molecules):
    directory = evaluated[0]
    record = read_eval(directory)
    data = load_molecules(molecules, "test", config)
    with np.load(directory / "eval_samples.npz") as npz:
        samples = {k: npz[k] for k in npz.files}
    assert sorted(samples) == sorted(SAMPLE_KEYS)
    assert samples["sample"].dtype == np.int64 and samples["n_values"].dtype == np.int64
    assert not samples["in_contact"].any() and record.n_test_samples == len(samples["sample"]) == len(data) == 12
    np.testing.assert_array_equal(samples["sample"], evaluation_order(len(data), config["seed"]))
    np.testing.assert_array_equal(samples["n_values"], data.num_atoms[samples["sample"]])
    # recompute every number from the model's predictions, one configuration at a time, in float64
    model = build_model("mpnn", "xs", config["forcefield"])
    model.load_state_dict(torch.load(directory / MODEL_NAME, weights_only=True))
    model.eval()
    errors, baseline, energy_per_atom, components, norms = [], [], [], [], []
    with torch.no_grad():
        for i in samples["sample"]:
            energy, forces = model(data.batch([i]))
            reference = data.batch([i], dtype=torch.float64)
            de = abs(float(energy[0]) - float(reference["energy"][0]))
            df = forces.double() - reference["forces"]
            errors.append(de + float(df.norm(dim=1).sum()))
            baseline.append(abs(float(reference["energy"][0])) + float(reference["forces"].norm(dim=1).sum()))
            energy_per_atom.append(de / int(data.num_atoms[i]))
            components.append(df.abs().flatten())
            norms.append(df.norm(dim=1))
    np.testing.assert_allclose(samples["sq_error"], errors, rtol=1e-5)
    np.testing.assert_allclose(samples["cv_sq_error"], baseline, rtol=1e-12)
    atoms = samples["n_values"].sum()
    assert record.test_mse == pytest.approx(samples["sq_error"].sum() / atoms, rel=1e-12)
    assert record.test_mse == pytest.approx(sum(errors) / atoms, rel=1e-5)
    assert record.const_velocity_mse == pytest.approx(sum(baseline) / atoms, rel=1e-12)
    assert record.energy_mae == pytest.approx(np.mean(energy_per_atom), rel=1e-5)
    assert record.force_mae == pytest.approx(float(torch.cat(components).mean()), rel=1e-5)
    assert record.force_l2 == pytest.approx(float(torch.cat(norms).mean()), rel=1e-5)
    # the loss is its two parts: atom-weighted energy error per atom plus the force L2 error per atom
    energy_part = sum(e * n for e, n in zip(energy_per_atom, samples["n_values"])) / atoms
    assert record.test_mse == pytest.approx(energy_part + record.force_l2, rel=1e-5)
    assert record.test_mse_lo <= record.test_mse <= record.test_mse_hi and record.test_mse_se > 0
    assert record.samples_file == "eval_samples.npz" and record.model_sha256 == read_run(directory).model_sha256


def test_every_cell_walks_the_same_order(evaluated):
    orders = []
    for directory in evaluated:
        with np.load(directory / "eval_samples.npz") as npz:
            orders.append(npz["sample"])
    np.testing.assert_array_equal(orders[0], orders[1])
    assert not np.array_equal(orders[0], np.sort(orders[0]))  # a permutation, not the split's order


def test_the_pilot_stops_once_the_error_target_is_met(config, molecules):
    data = load_molecules(molecules, "test", config)
    model = build_model("mpnn", "xs", config["forcefield"])
    from eqscale.forcefield.evaluate import measure_test_split

    order = evaluation_order(len(data), config["seed"])
    loose = measure_test_split(model, data, order, {**config["evaluation"], "target_rel_se": 0.99}, torch.device("cpu"))
    assert len(loose["sample"]) == config["evaluation"]["min_samples"] == 4
    capped = measure_test_split(model, data, order, {**config["evaluation"], "max_samples": 6}, torch.device("cpu"))
    np.testing.assert_array_equal(capped["sample"], order[:6])
    whole = configuration_errors(model, data, order, 5, torch.device("cpu"))
    # batching changes only float32 round-off (matrix products blocked differently)
    np.testing.assert_allclose(whole["sq_error"][:6], capped["sq_error"], rtol=1e-6)


def test_equivariance_error_is_round_off_for_egnn_and_order_one_for_an_untrained_mpnn(config, molecules, evaluated):
    data = load_molecules(molecules, "test", config)
    indices = evaluation_order(len(data), config["seed"])[:4]
    errors = {}
    for family in ("egnn", "mpnn"):
        torch.manual_seed(0)
        model = build_model(family, "xs", config["forcefield"])
        errors[family] = equivariance_error(model, data, indices, 3, seed=0, batch_size=2, device=torch.device("cpu"))
    assert errors["egnn"] < 1e-5
    assert errors["mpnn"] > 0.1
    records = {directory: read_eval(directory) for directory in evaluated}
    assert records[evaluated[1]].equivariance_error < 1e-5 < records[evaluated[0]].equivariance_error


def test_weights_that_do_not_match_run_json_are_refused(evaluated, config, molecules, tmp_path):
    import shutil

    directory = tmp_path / evaluated[0].relative_to(evaluated[0].parents[6])
    shutil.copytree(evaluated[0], directory)
    weights = torch.load(directory / MODEL_NAME, weights_only=True)
    next(iter(weights.values())).add_(1.0)
    torch.save(weights, directory / MODEL_NAME)
    with pytest.raises(RecordError, match="does not match the sha256"):
        evaluate_cell(directory, molecules, config, device="cpu")


def test_a_diverged_cell_gets_an_eval_json_without_metrics(evaluated, config, molecules, tmp_path):
    import shutil

    directory = tmp_path / evaluated[0].relative_to(evaluated[0].parents[6])
    shutil.copytree(evaluated[0], directory)
    (directory / "eval_samples.npz").unlink()
    (directory / "eval.json").unlink()
    run = json.loads((directory / "run.json").read_text())
    run.update(diverged=True, diverged_message="training diverged at step 2", final_train_loss=None)
    (directory / "run.json").write_text(json.dumps(run))
    record = evaluate_cell(directory, molecules, config, device="cpu")
    assert record.diverged and math.isnan(record.test_mse) and record.n_test_samples == 0
    assert not (directory / "eval_samples.npz").exists()
