"""The study grid: IsoFLOP steps, deduplication, readable paths and clear errors naming the cell."""

import pytest

from eqscale.cells import Cell, CellError
from eqscale.config import ConfigError, validate_config
from eqscale.grid import DATA_EFFICIENCY, LR_SWEEP, SCALING, GridError, build_grid, nominal_structure, sweep_cells

PER_STEP = {("gatr", "xxs"): 1e9, ("gatr", "xs"): 4e9, ("gatr", "s"): 1.6e10,
            ("transformer", "xxs"): 5e8, ("transformer", "xs"): 2e9, ("transformer", "s"): 8e9}


def fake_flops(model, size, structure):
    if (model, size) not in PER_STEP:
        raise KeyError(f"unknown {model} size {size!r}")
    return PER_STEP[model, size] * structure.scenes / 8


def grid_config(**grid):
    return validate_config({"grid": grid})


def test_scaling_cells_are_isoflop_lines():
    config = grid_config(scaling_budgets=[1e12], min_steps=1,
                         data_efficiency={"fractions": [1.0], "arms": ["gatr"], "budget": 1e12, "converge": False})
    cells = build_grid(config, fake_flops)
    scaling = [c for c in cells if c.data_fraction == 1.0]
    for cell in scaling:
        assert cell.steps == int(1e12 // PER_STEP[cell.model, cell.size])
        assert cell.budget == 1e12
    # the data-efficiency GATr cell at the same budget and fraction 1 is the same cell: it runs once,
    # planned by both designs
    assert len(cells) == len({c.dir for c in cells}) == 6
    both = [c for c in cells if c.designs == {SCALING, DATA_EFFICIENCY}]
    assert len(both) == 1 and both[0].model == "gatr" and both[0].size == "xs"


def test_data_efficiency_cells_converge_under_their_cap():
    config = grid_config(scaling_budgets=[1e12], min_steps=1,
                         data_efficiency={"fractions": [0.5, 1.0], "arms": ["gatr", "transformer+aug"], "budget": 1e12})
    cells = build_grid(config, fake_flops)
    converging = [c for c in cells if c.converge]
    assert {c.designs for c in converging} == {frozenset({DATA_EFFICIENCY})}
    assert len(converging) == 4 and all("/converge~1e12/" in c.dir for c in converging)
    # a converging cell at full data is another cell than the scaling cell of the same size and budget
    assert len(cells) == 6 + 4


def test_replicate_seeds_only_at_their_budgets():
    config = grid_config(scaling_budgets=[1e12, 4e12], min_steps=1, replicates={"seeds": [7], "budgets": [4e12]},
                         data_efficiency={"fractions": [0.5], "arms": ["gatr"]})
    cells = [c for c in build_grid(config, fake_flops) if SCALING in c.designs]
    assert {c.budget for c in cells if c.seed == 7} == {4e12}
    assert len([c for c in cells if c.seed == 7]) == len([c for c in cells if c.budget == 4e12 and c.seed == 0])
    with pytest.raises(GridError, match=r"grid.replicates.budgets: \[5e\+12\] are not scaling budgets"):
        build_grid(grid_config(replicates={"seeds": [1], "budgets": [5e12]}), fake_flops)


def test_learning_rate_sweep_cells():
    config = validate_config({"grid": {"scaling_budgets": [1e12], "min_steps": 1},
                              "training": {"lr": {"gatr": 0.002, "transformer": 0.001}},
                              "lr_sweep": {"enabled": True, "budget": 5e11, "factors": [0.5, 1, 2],
                                           "sizes": {"gatr": ["xxs", "xs"], "transformer": ["xxs", "s"]}}})
    sweep = sweep_cells(build_grid(config, fake_flops))
    assert len(sweep) == 2 * 2 * 3
    assert {c.lr for c in sweep if c.model == "gatr"} == {0.001, 0.002, 0.004}
    assert all(c.budget == 5e11 and c.designs == {LR_SWEEP} and not c.converge for c in sweep)
    assert all("/lr~auto/" in c.dir for c in build_grid(config, fake_flops) if c not in sweep)


def test_min_steps_drops_too_large_models_but_not_whole_budgets():
    config = grid_config(scaling_budgets=[2e11], min_steps=20, data_efficiency={"arms": ["gatr"], "fractions": [0.5]})
    cells = build_grid(config, fake_flops)
    gatr_sizes = {c.size for c in cells if c.model == "gatr" and c.data_fraction == 1.0}
    assert gatr_sizes == {"xxs", "xs"}  # 200 and 50 steps; s gets 12 < 20: off its IsoFLOP line
    assert {c.size for c in cells if c.model == "transformer"} == {"xxs", "xs", "s"}  # 400, 100, 25


def test_budget_below_one_step_names_the_cell():
    # a scaling budget below one step of every size leaves its line empty: named with the key
    with pytest.raises(GridError, match=r"grid.scaling_budgets: budget 1e\+08 gives every gatr size fewer than"):
        build_grid(grid_config(scaling_budgets=[1e8]), fake_flops)
    # a data-efficiency cell is planned on its own: below one step names the cell
    config = grid_config(scaling_budgets=[1e12], min_steps=1,
                         data_efficiency={"budget": 1e8, "arms": ["gatr"], "fractions": [1.0], "converge": False})
    with pytest.raises(GridError, match=r"grid cell gatr/size~xs/budget~1e08/.*: budget 1e\+08 FLOPs is less than one optimizer step"):
        build_grid(config, fake_flops)


def test_data_fraction_outside_unit_interval_names_the_key():
    with pytest.raises(ConfigError, match=r"grid.data_efficiency.fractions.1: 1.5 is greater than the maximum of 1"):
        grid_config(data_efficiency={"fractions": [0.5, 1.5], "arms": ["transformer+aug"]})


def test_unknown_model_and_size_fail_clearly():
    with pytest.raises(ConfigError, match="grid.scaling.mlp: unknown key"):
        grid_config(scaling={"mlp": {"sizes": ["s"]}})
    config = grid_config(scaling={"gatr": {"sizes": ["huge"]}, "transformer": {"sizes": ["xs"]}})
    with pytest.raises(GridError, match="gatr/size~huge.*unknown gatr size 'huge'"):
        build_grid(config, fake_flops)


def test_seeds_multiply_cells_and_paths_round_trip():
    config = grid_config(seeds=[0, 1], scaling_budgets=[1e12], min_steps=1)
    cells = build_grid(config, fake_flops)
    assert {c.seed for c in cells} == {0, 1}
    for cell in cells:
        assert Cell.from_dir(cell.dir) == cell
        assert Cell.from_dir("/some/prefix/" + cell.dir + "/") == cell
        assert Cell.from_wildcards(cell.wildcards) == cell
        assert Cell.from_record(cell.as_record()) == cell
    cell = Cell("gatr", "s", 2.5e12, 0.25, False, 0)
    assert cell.dir == "results/runs/gatr/size~s/budget~2.5e12/data~0.25/aug~0/lr~auto/seed~0"
    tuned = Cell("gatr", "s", 2.5e12, 0.25, False, 0, converge=True, lr=3e-3)
    assert tuned.dir == "results/runs/gatr/size~s/converge~2.5e12/data~0.25/aug~0/lr~0.003/seed~0"
    assert Cell.from_dir(tuned.dir) == tuned != cell
    assert cell.arm == "gatr" and Cell("transformer", "s", 1e12, 1.0, True, 0).arm == "transformer+aug"
    with pytest.raises(CellError, match="not a cell directory"):
        Cell.from_dir("results/runs/gatr/s/2400")


@pytest.mark.parametrize("fields, reason", [
    (dict(model="mlp"), "unknown model 'mlp'"),
    (dict(size="a/b"), "may only hold"),
    (dict(budget=float("nan")), "not a positive finite"),
    (dict(budget=-1.0), "not a positive finite"),
    (dict(data_fraction=0.0), "outside"),
    (dict(seed=-1), "not a non-negative integer"),
])
def test_impossible_cells_are_refused(fields, reason):
    base = dict(model="gatr", size="xs", budget=1e12, data_fraction=1.0, augment=False, seed=0)
    with pytest.raises(CellError, match=reason):
        Cell(**{**base, **fields})


def test_nominal_structure_is_the_expected_packed_batch():
    config = validate_config({"simulation": {"min_objects": 2, "max_objects": 4}, "assets": {"max_faces": 200,
                              "shapes": ["cube", "sphere"]}, "training": {"batch_size": 8}})
    s = nominal_structure(config)
    # 3 objects per scene on average, half of them cubes (12 faces), half spheres (the budget, 200)
    assert s.scenes == 8 and s.objects == pytest.approx(24) and s.tokens == pytest.approx(24 * 106)
    assert s.object_tokens_sq == pytest.approx(24 * (12**2 + 200**2) / 2)


def test_planning_imports_no_torch():
    import subprocess
    import sys

    code = ("import sys, yaml; from eqscale.validate import check_study; "
            "check_study(yaml.safe_load(open('presets/paper.yaml'))); print('torch' in sys.modules)")
    root = __import__("pathlib").Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root, check=True)
    assert out.stdout.strip() == "False"


def test_plan_reads_config_yaml_of_the_working_directory(tmp_path, monkeypatch, capsys):
    from eqscale import plan

    (tmp_path / "config.yaml").write_text("simulation:\n  num_shards: 3\n")
    monkeypatch.chdir(tmp_path)
    assert plan.main([]) == 0
    out = capsys.readouterr().out
    assert "config: config.yaml" in out and "simulate 3" in out


def test_a_budget_can_have_its_own_ladder():
    config = grid_config(scaling_budgets=[1e12, 8e12], min_steps=1,
                         scaling={"gatr": {"sizes": ["xxs", "xs"], "ladders": [{"budget": 8e12, "sizes": ["xs", "s"]}]},
                                  "transformer": {"sizes": ["xxs"]}},
                         data_efficiency={"fractions": [0.5], "arms": ["gatr"], "sizes": {"gatr": "xxs"}})
    gatr = [c for c in build_grid(config, fake_flops) if c.model == "gatr" and SCALING in c.designs]
    assert {c.size for c in gatr if c.budget == 1e12} == {"xxs", "xs"}
    assert {c.size for c in gatr if c.budget == 8e12} == {"xs", "s"}
    for bad, message in [([{"budget": 3e12, "sizes": ["s"]}], r"ladders\[0\].budget: 3e\+12 is not one of"),
                         ([{"budget": 8e12, "sizes": ["s"]}] * 2, r"ladders\[1\].budget: budget 8e\+12 has two")]:
        config["grid"]["scaling"]["gatr"]["ladders"] = bad
        with pytest.raises(GridError, match=message):
            build_grid(config, fake_flops)


def test_plan_says_whether_each_ladder_brackets_the_predicted_optimum(monkeypatch):
    from eqscale import plan
    from eqscale.models.counts import num_params

    config = grid_config(scaling_budgets=[1e12, 1e13], min_steps=1,
                         scaling={"gatr": {"sizes": ["xxs", "xs", "s"]}, "transformer": {"sizes": ["xxs", "xs"]}})
    cells = [c for c in build_grid(config, fake_flops) if SCALING in c.designs]
    middle = num_params("gatr", "xs")
    # a prior law N*(C) that sits on xs at 1e12 and far above the ladder at 1e13
    monkeypatch.setattr(plan, "predicted_optimum",
                        lambda _: {"gatr": lambda c: (middle * (c / 1e12) ** 3, c > 1e12)})
    lines = {(line.model, line.budget): line for line in plan.ladders(cells, "somewhere")}
    assert lines["gatr", 1e12].bracketing == "bracketed"
    assert lines["gatr", 1e13].bracketing == "above the largest size" and lines["gatr", 1e13].extrapolated
    assert lines["transformer", 1e12].bracketing.startswith("cannot be bracketed")
    assert plan.Ladder("gatr", 1.0, [("a", 10), ("b", 20), ("c", 30)]).bracketing.startswith("not predicted")
    assert plan.Ladder("gatr", 1.0, [("a", 10), ("b", 20), ("c", 30)], predicted_n=5).bracketing == "below the smallest size"


def ff_config(**grid):
    return validate_config({"study": "forcefield", "molecules": {"num_molecules": 40, "num_shards": 2},
                            "grid": {"min_steps": 2, **grid}})


def test_forcefield_grid_puts_symmetry_arms_beside_every_plain_cell_and_charges_their_passes():
    from eqscale.forcefield import plan

    config = ff_config(scaling_budgets=[3e8, 1e9], scaling={"mpnn": {"sizes": ["xs", "s"],
                                                                       "symmetry_arms": ["augment", "symmetry_loss"]}})
    cells = build_grid(config)
    plain = {(c.size, c.budget): c for c in cells if c.arm == "mpnn"}
    aug = {(c.size, c.budget): c for c in cells if c.arm == "mpnn+aug"}
    sym = {(c.size, c.budget): c for c in cells if c.arm == "mpnn+sym"}
    assert set(aug) == set(plain) and set(sym) <= set(plain)
    for key, cell in sym.items():
        assert cell.dir.endswith("/aug~sym/lr~auto/seed~0") and cell.symmetry_loss and not cell.augment
        # each step runs the network on 1 + M copies: M = 5 by default
        assert cell.flops_per_step == pytest.approx(6 * plain[key].flops_per_step)
    # the symmetry arm's steps drop below min_steps first: left off that line, the plain cells stay
    assert len(sym) < len(plain)
    per_config = plan.flops_per_configuration("mpnn", "xs", config)
    assert plain["xs", 1e9].steps == int(1e9 // (per_config * config["forcefield"]["batch_size"]))
    assert not any(c.data_fraction != 1.0 or c.converge for c in cells)  # no data-efficiency design: one epoch


def test_forcefield_budget_beyond_one_epoch_is_refused_before_any_job():
    with pytest.raises(GridError, match=r"grid cell mpnn/size~xs/budget~1e12/.*one epoch .* needs [\d,]+ training "
                                        r"configurations .* the config labels about 960"):
        build_grid(ff_config(scaling_budgets=[1e12], scaling={"mpnn": {"sizes": ["xs"]}}))


def test_training_pool_is_the_split_the_labels_will_have():
    """The plan's pool equals what `eqscale molecules --stats` assigns: the same molecules, split rule and seed."""
    from eqscale.forcefield.molecules import load_molecule_list, select_molecules
    from eqscale.forcefield.plan import training_pool
    from eqscale.forcefield.splits import assign_splits

    config = ff_config(scaling={"mpnn": {"sizes": ["xs"]}})
    pool = training_pool(config)
    selected = select_molecules(load_molecule_list(""), 40, config["molecules"]["max_atoms"], config["seed"])
    train = assign_splits([m.molecule_id for m in selected], config["seed"], 0.1, 0.1)["train"]
    assert pool.molecules == len(train) == 32
    assert pool.configurations == 32 * 3 * 10  # molecules x temperatures x configurations per run
    assert pool.mean_atoms == pytest.approx(sum(m.num_atoms for m in selected if m.molecule_id in train) / 32)
