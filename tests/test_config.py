"""Config validation: defaults fill in, and bad input names the key and the reason."""

import json
import subprocess
import sys

import pytest

from eqscale.config import ConfigError, config_hash, load_config, validate_config


def test_defaults_fill_every_section():
    config = validate_config({})
    assert config["seed"] == 0
    assert config["simulation"]["num_frames"] == 96
    assert config["simulation"]["frame_rate"] == 48
    assert len(config["assets"]["shapes"]) == 11


@pytest.mark.parametrize(
    "bad, key, reason",
    [
        ({"simulation": {"bogus": 1}}, "simulation.bogus", "unknown key"),
        ({"nonsense": 1}, "nonsense", "unknown key"),
        ({"simulation": {"num_shards": -2}}, "simulation.num_shards", "less than the minimum"),
        ({"simulation": {"trajectories_per_shard": "ten"}}, "simulation.trajectories_per_shard", "not of type"),
        ({"simulation": {"min_objects": 6, "max_objects": 4}}, "simulation.min_objects", "must not exceed"),
        ({"simulation": {"step_rate": 250}}, "simulation.step_rate", "not a multiple"),
        ({"assets": {"shapes": ["cube", "dodecahedron"]}}, "assets.shapes.1", "is not one of"),
    ],
)
def test_invalid_config_names_key_and_reason(bad, key, reason):
    with pytest.raises(ConfigError) as err:
        validate_config(bad)
    assert key in str(err.value)
    assert reason in str(err.value)


def test_validate_does_not_mutate_input_and_hash_is_stable():
    raw = {"simulation": {"num_shards": 2}}
    a = validate_config(raw)
    assert raw == {"simulation": {"num_shards": 2}}
    assert config_hash(a, ["simulation"]) == config_hash(validate_config(raw), ["simulation"])
    assert config_hash(a, ["simulation"]) != config_hash(validate_config({"simulation": {"num_shards": 3}}), ["simulation"])


def test_overrides_merge_over_file(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("simulation:\n  num_shards: 2\n  num_frames: 10\n")
    config = load_config(path, {"simulation": {"num_frames": 12}})
    assert config["simulation"]["num_shards"] == 2
    assert config["simulation"]["num_frames"] == 12


def test_validate_cli_reports_error(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(json.dumps({"simulation": {"min_objects": 0}}))
    proc = subprocess.run([sys.executable, "-m", "eqscale", "validate", "--configfile", str(path)],
                          capture_output=True, text=True)
    assert proc.returncode == 1
    assert "simulation.min_objects" in proc.stderr
