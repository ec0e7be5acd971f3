"""The workflow's data stages: lint, validation before any job, dry runs and a real tiny run."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from snakemake_helpers import REPO, planned_jobs, snakemake  # noqa: E402

from eqscale.physics.raw_format import open_raw_shard  # noqa: E402


def test_lint_is_clean(tmp_path):
    proc = snakemake(tmp_path, "--lint")
    assert "Congratulations, your workflow is in a good condition" in proc.stdout + proc.stderr


def test_dry_run_plans_the_data_stages(tmp_path):
    jobs = planned_jobs(tmp_path)
    assert jobs["assets"] == 1
    assert jobs["simulate"] == 2  # presets/tiny.yaml: simulation.num_shards = 2


@pytest.mark.parametrize("bad, message", [
    ("simulation:\n  min_objects: 6\n  max_objects: 3\n", "simulation.min_objects"),
    ("simulation:\n  num_shards: -1\n", "simulation.num_shards"),
    ("bogus_section: 1\n", "bogus_section"),
    ("simulation:\n  trajectories_per_shard: many\n", "simulation.trajectories_per_shard"),
    # invalid grids name the cell
    ("grid:\n  scaling_budgets: [1.0e+6]\n", "grid.scaling_budgets: budget 1e+06 gives every gatr size fewer than"),
    ("grid:\n  scaling:\n    gatr: {sizes: [huge]}\n", "grid cell gatr/size~huge"),
    ("grid:\n  scaling:\n    mlp: {sizes: [s]}\n", "grid.scaling.mlp"),
    ("grid:\n  data_efficiency:\n    fractions: [1.5]\n", "grid.data_efficiency.fractions"),
])
def test_invalid_config_fails_before_any_job(tmp_path, bad, message):
    config = tmp_path / "bad.yaml"
    config.write_text(bad)
    proc = snakemake(tmp_path, "--cores", "1", configfile=config, check=False)
    assert proc.returncode != 0
    assert message in proc.stderr
    assert not (tmp_path / "results").exists()


def test_paper_preset_builds_its_dag(tmp_path):
    """The paper-scale study: hundreds of jobs, the same count `eqscale plan` prints."""
    import yaml

    from eqscale.config import validate_config
    from eqscale.plan import plan

    paper = REPO / "presets" / "paper.yaml"
    jobs = planned_jobs(tmp_path, configfile=paper)
    expected = plan(validate_config(yaml.safe_load(paper.read_text())))
    assert sum(jobs.values()) == expected["total_jobs"] >= 300
    # the sweep's runs are jobs of the train rule; plan counts them apart
    assert jobs["train"] == expected["jobs"]["train"] + expected["jobs"]["train_lr_sweep"] > expected["jobs"]["train"]
    assert jobs["lr_rule"] == expected["jobs"]["lr_rule"] == 2


def test_forcefield_paper_preset_builds_its_dag(tmp_path):
    """The force-field study at scale: label shards, one train and one evaluate job per cell, as `eqscale plan` says."""
    import yaml

    from eqscale.config import validate_config
    from eqscale.plan import plan

    paper = REPO / "presets" / "forcefield-paper.yaml"
    jobs = planned_jobs(tmp_path, configfile=paper)
    expected = plan(validate_config(yaml.safe_load(paper.read_text())))
    assert sum(jobs.values()) == expected["total_jobs"] >= 300
    assert jobs["molecules"] == 128 and jobs["molecule_stats"] == 1
    assert jobs["train"] == jobs["evaluate"] == expected["jobs"]["train"]
    assert not {"assets", "simulate", "tokenize", "lr_rule"} & set(jobs)  # the rigid study's stages stay out


def test_a_preset_replaces_config_yaml(tmp_path):
    """--configfile means exactly that file (not an overlay on config.yaml's 8 shards)."""
    assert planned_jobs(tmp_path)["simulate"] == 2
    assert planned_jobs(tmp_path, configfile=None)["simulate"] == 8


@pytest.mark.slow
def test_tiny_data_stages_run_for_real(tmp_path):
    import yaml

    per_shard = yaml.safe_load((REPO / "presets" / "tiny.yaml").read_text())["simulation"]["trajectories_per_shard"]
    snakemake(tmp_path, "--cores", "2", "results/raw/shard-0000.h5", "results/raw/shard-0001.h5")
    for shard in range(2):
        with open_raw_shard(tmp_path / "results" / "raw" / f"shard-{shard:04d}.h5") as fh:
            assert fh.attrs["num_trajectories"] == per_shard
    # a second run has nothing to do
    assert not planned_jobs(tmp_path, "results/raw/shard-0000.h5", "results/raw/shard-0001.h5")
