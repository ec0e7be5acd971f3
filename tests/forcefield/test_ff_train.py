"""`eqscale ff-train`: one epoch to the budget, exact FLOPs, the width rule, schedule-free weights, arms, resume."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from eqscale.cells import Cell
from eqscale.cli import main as eqscale_main
from eqscale.config import validate_config
from eqscale.forcefield.evaluate import load_molecules
from eqscale.forcefield.loss import forcefield_loss
from eqscale.forcefield.models import build_model
from eqscale.forcefield.models.common import GraphCounts
from eqscale.forcefield.train import (ConfigurationStream, configuration_counts, learning_rate, plan_epoch,
                                      train_cell, training_flops)
from eqscale.records import MODEL_NAME, read_run
from eqscale.training.checkpoint import read_checkpoint
from eqscale.training.loop import TIMING_COLUMNS, build_schedulefree_optimizer, read_metrics, train_loop

BATCH = 4  # configurations per step: the 30 training configurations of the test molecules make 7 batches
BUDGET = 9e6  # FLOPs: three to four mpnn xs steps


def study_config(ff_config: dict, **sections) -> dict:
    """A force-field study config over the test molecules: tiny batches, every step checkpointed."""
    config = {"study": "forcefield", "seed": ff_config["seed"], "molecules": ff_config["molecules"],
              # rates fixed here, not the defaults: the tests below state them
              "forcefield": {"batch_size": BATCH, "warmup_steps": 2,
                             "lr": {"mpnn": 3e-3, "invariant": 3e-3, "egnn": 3e-3, "tensor2": 1e-2, "tensor4": 1e-2}},
              "grid": {"scaling": {"mpnn": {"sizes": ["xs"]}}},
              "training": {"threads": 1, "log_every": 1, "checkpoint_every_s": 1e-9},
              "evaluation": {"batch_size": 8, "min_samples": 4}}
    for name, values in sections.items():
        config[name] = {**config.get(name, {}), **values}
    return validate_config(config)


def cell_dir(root: Path, model: str = "mpnn", budget: float = BUDGET, **fields) -> Path:
    """The run directory of a cell under `root`."""
    return root / Cell(model=model, size="xs", budget=budget, data_fraction=1.0, seed=0,
                       **{"augment": False, **fields}).id


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def config(ff_config) -> dict:
    return study_config(ff_config)


@pytest.fixture(scope="module")
def molecules(molecule_stats) -> Path:
    return molecule_stats.parent


@pytest.fixture(scope="module")
def trained(tmp_path_factory, config, molecules) -> Path:
    """An mpnn xs cell trained once, uninterrupted (the reference of several tests)."""
    directory = cell_dir(tmp_path_factory.mktemp("runs"))
    train_cell(directory, molecules, config, device="cpu", progress=False)
    return directory


@pytest.mark.parametrize("family", ["mpnn", "invariant"])
def test_per_configuration_counts_sum_to_the_networks_own_count_of_a_batch(config, molecules, family):
    data = load_molecules(molecules, "train", config)
    model = build_model(family, "xs", config["forcefield"])
    counts = configuration_counts(model, data)
    assert (counts[:, 0] == data.num_atoms).all() and (counts[:, 2] == 1).all()
    assert (counts[:, 3] > 0).any() == (family == "invariant")  # triplets only where the network forms angles
    for indices in (np.arange(len(data)), np.array([7, 2, 19, 11, 3])):
        batch = data.batch(indices)
        expected = model.graph_counts(batch)
        assert GraphCounts(*(int(x) for x in counts[indices].sum(axis=0))) == expected
        assert training_flops(model, counts[indices]) == 3 * model.analytic_forward_flops(expected)
        assert training_flops(model, counts[indices], passes=6) == 18 * model.analytic_forward_flops(expected)


def test_learning_rate_scales_the_xs_rate_with_width(config):
    ff = config["forcefield"]
    assert learning_rate("mpnn", "xs", ff) == ff["lr"]["mpnn"] == 3e-3
    assert learning_rate("mpnn", "m", ff) == pytest.approx(3e-3 * 16 / 64)  # hidden 16 -> 64
    assert learning_rate("egnn", "l", ff) == pytest.approx(3e-3 * 16 / 128)  # egnn scales with hidden, not channels
    from eqscale.forcefield.models import size_config

    channels = size_config("tensor2", "xs").channels, size_config("tensor2", "s").channels
    assert learning_rate("tensor2", "s", ff) == pytest.approx(1e-2 * channels[0] / channels[1])
    flat = {**ff, "lr_width_exponent": 0.0}
    assert learning_rate("tensor4", "xl", flat) == 1e-2
    assert learning_rate("mpnn", "m", {**ff, "lr_width_exponent": 0.5}) == pytest.approx(3e-3 * 0.5)


def test_run_records_the_flops_of_exactly_the_batches_trained_within_the_budget(trained, config, molecules):
    run = read_run(trained)
    data = load_molecules(molecules, "train", config)
    model = build_model("mpnn", "xs", config["forcefield"])
    plan = plan_epoch(run.cell, model, data, config)
    counts = configuration_counts(model, data)
    # each batch's FLOPs = 3 x the network's analytic count of that batch, in the epoch's order
    assert plan.batch_flops == [3 * model.analytic_forward_flops(model.graph_counts(data.batch(plan.indices(k))))
                                for k in range(len(data) // BATCH)]
    assert run.steps == plan.steps >= 2
    assert run.total_flops == sum(plan.batch_flops[:run.steps])
    assert run.total_flops == sum(training_flops(model, counts[plan.indices(k)]) for k in range(run.steps))
    assert run.total_flops <= BUDGET < run.total_flops + plan.batch_flops[run.steps]
    rows = read_metrics(trained / "metrics.csv")
    assert [r["step"] for r in rows] == list(range(1, run.steps + 1))
    assert rows[-1]["flops"] == run.total_flops
    assert run.batch_size == BATCH and run.num_train_samples == len(data) == 30
    assert run.train_tokens == int(data.num_atoms[plan.order[:run.steps * BATCH]].sum())
    assert run.num_train_trajectories == len(np.unique(data.molecule_id))
    assert run.lr == 3e-3 and run.params == sum(p.numel() for p in model.parameters())
    assert run.flops_per_step_nominal > 0 and run.val_loss is not None and run.final_train_loss > 0
    assert {"schedulefree", "e3nn", "torch"} <= set(run.versions)
    assert run.config["forcefield"]["batch_size"] == BATCH and "molecules" in run.config
    assert [line.split(",")[0] for line in (trained / "val.csv").read_text().splitlines()] == ["step", str(run.steps)]


def test_one_epoch_sees_each_configuration_at_most_once(config, molecules):
    data = load_molecules(molecules, "train", config)
    model = build_model("mpnn", "xs", config["forcefield"])
    cell = Cell("mpnn", "xs", BUDGET, 1.0, False, 0)
    plan = plan_epoch(cell, model, data, config)
    stream = ConfigurationStream(data, plan, False, config["seed"], cell.seed)
    batches = list(stream(0))
    assert len(batches) == len(data) // BATCH  # the stream ends with the epoch: no second pass
    assert [int(b["step"]) for b in batches] == list(range(len(batches)))
    seen = np.concatenate([plan.indices(k) for k in range(len(batches))])
    assert len(np.unique(seen)) == len(seen) == len(batches) * BATCH
    # the batches are those configurations, and stream(k) starts where stream(0) is after k batches
    torch.testing.assert_close(batches[2]["positions"], data.batch(plan.indices(2))["positions"])
    torch.testing.assert_close(next(iter(stream(2)))["positions"], batches[2]["positions"])
    # the permutation depends on the cell's seed and the global seed
    other = plan_epoch(replace(cell, seed=1), model, data, config).order
    assert not np.array_equal(other, plan.order)


def test_a_budget_beyond_one_epoch_is_refused_naming_the_cell(config, molecules):
    data = load_molecules(molecules, "train", config)
    model = build_model("mpnn", "xs", config["forcefield"])
    cell = Cell("mpnn", "xs", 1e9, 1.0, False, 0)
    with pytest.raises(ValueError, match="more training configurations") as info:
        plan_epoch(cell, model, data, config)
    message = str(info.value)
    assert cell.id in message and "gives" in message and "molecules section" in message


def test_training_is_deterministic(trained, tmp_path, config, molecules):
    again = cell_dir(tmp_path)
    record = train_cell(again, molecules, config, device="cpu", progress=False)
    assert record.model_sha256 == read_run(trained).model_sha256 == sha256(again / MODEL_NAME)


def test_a_run_killed_mid_epoch_resumes_to_the_same_weights(trained, tmp_path, config, molecules, monkeypatch):
    class Killed(Exception):
        pass

    original = ConfigurationStream.__call__

    def dying(self, start):
        for step, batch in zip(range(start, 10**9), original(self, start)):
            if step == 2:
                raise Killed
            yield batch

    directory = cell_dir(tmp_path)
    monkeypatch.setattr(ConfigurationStream, "__call__", dying)
    with pytest.raises(Killed):
        train_cell(directory, molecules, config, device="cpu", progress=False)
    assert read_checkpoint(directory / "checkpoint.pt")["step"] == 2
    assert not (directory / "run.json").exists()
    monkeypatch.setattr(ConfigurationStream, "__call__", original)
    record = train_cell(directory, molecules, config, device="cpu", progress=False)
    assert record.resumed_from_step == 2
    assert record.model_sha256 == read_run(trained).model_sha256

    def without_timing(path: Path) -> list[dict]:
        return [{k: v for k, v in row.items() if k not in TIMING_COLUMNS} for row in read_metrics(path)]

    assert without_timing(directory / "metrics.csv") == without_timing(trained / "metrics.csv")
    assert (directory / "val.csv").read_text() == (trained / "val.csv").read_text()


def test_a_schedule_free_validation_leaves_the_training_point_exactly_as_it_was(config, molecules, tmp_path):
    data = load_molecules(molecules, "train", config)
    cell = Cell("mpnn", "xs", BUDGET, 1.0, False, 0)
    plan = plan_epoch(cell, build_model("mpnn", "xs", config["forcefield"]), data, config)
    seen = []

    def run(out: Path, **validation) -> dict:
        torch.manual_seed(0)
        model = build_model("mpnn", "xs", config["forcefield"])
        train_loop(model, ConfigurationStream(data, plan, False, 5, 0), steps=plan.steps, lr=3e-3, warmup_steps=2,
                   weight_decay=0.0, grad_clip=10.0, optimizer="schedulefree", out_dir=out, checkpoint_every_s=None,
                   loss_fn=lambda m, b: forcefield_loss(m(b), b), tokens_fn=lambda b: int(b["numbers"].shape[0]),
                   progress=False, **validation)
        return model.state_dict()

    def validate(model):  # records the weights it is shown: the averaged ones
        seen.append({k: v.clone() for k, v in model.state_dict().items()})
        return 1.0

    plain = run(tmp_path / "plain")
    validated = run(tmp_path / "validated", validate_fn=validate, validate_every=1)
    assert all(torch.equal(plain[k], validated[k]) for k in plain)
    assert len(seen) == plan.steps and all(torch.equal(seen[-1][k], plain[k]) for k in plain)


def test_model_pt_holds_the_schedule_free_average_not_the_training_point(trained, config):
    run = read_run(trained)
    state = read_checkpoint(trained / "checkpoint.pt")
    final = torch.load(trained / MODEL_NAME, weights_only=True)
    assert state["signature"]["optimizer"] == "schedulefree"
    # the checkpoint holds the training point y; the averaged x, computed from it, is what model.pt holds
    assert any(not torch.equal(state["model"][k], final[k]) for k in final)
    model = build_model("mpnn", "xs", config["forcefield"])
    model.load_state_dict(state["model"])
    optimizer = build_schedulefree_optimizer(model, run.lr, 0.0, 2)
    optimizer.load_state_dict(state["optimizer"])
    optimizer.eval()
    assert all(torch.equal(model.state_dict()[k], final[k]) for k in final)
    # warm-up of 2 steps: the logged rate is the one each step used
    assert [r["lr"] for r in read_metrics(trained / "metrics.csv")][:3] == [1.5e-3, 3e-3, 3e-3]


def test_symmetry_arms_train_and_the_symmetry_loss_is_charged_its_copies(ff_config, trained, tmp_path, molecules):
    config = study_config(ff_config, forcefield={"symmetry_loss_copies": 2},
                          grid={"scaling": {"mpnn": {"sizes": ["xs"], "symmetry_arms": ["augment", "symmetry_loss"]}}})
    plain = read_run(trained)
    augmented = train_cell(cell_dir(tmp_path, augment=True), molecules, config, device="cpu", progress=False)
    assert augmented.total_flops == plain.total_flops and augmented.steps == plain.steps  # same batches, rotated
    assert augmented.model_sha256 != plain.model_sha256
    data = load_molecules(molecules, "train", config)
    model = build_model("mpnn", "xs", config["forcefield"])
    budget = 3 * BUDGET
    sym_cell = cell_dir(tmp_path, budget=budget, symmetry_loss=True)
    symmetric = train_cell(sym_cell, molecules, config, device="cpu", progress=False)
    plan = plan_epoch(Cell("mpnn", "xs", BUDGET, 1.0, False, 0), model, data, config)  # the plain arm's batches
    assert symmetric.total_flops == 3 * sum(plan.batch_flops[:symmetric.steps])  # 1 + M = 3 passes a step
    assert symmetric.total_flops <= budget < symmetric.total_flops + 3 * plan.batch_flops[symmetric.steps]
    assert symmetric.cell.symmetry_loss and json.loads((sym_cell / "run.json").read_text())["cell"]["symmetry_loss"]
    # metrics.csv logs the plain loss L of the symmetry arm (what it trains on is L + lambda L_sym)
    assert 0 < symmetric.final_train_loss < 10


def test_the_cli_stages_are_registered(capsys):
    for stage in ("ff-train", "ff-evaluate"):
        with pytest.raises(SystemExit) as info:
            eqscale_main([stage, "--help"])
        assert info.value.code == 0
        assert "--molecules" in capsys.readouterr().out
