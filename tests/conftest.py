"""Shared fixtures: deterministic seeds, one torch thread, temporary work dirs."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "tests"))  # `from helpers import ...`
os.environ.setdefault("EPATH_USE_TF", "false")


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Tests marked `cuda` need a CUDA GPU: skipped, saying so, where there is none."""
    if item.get_closest_marker("cuda") is not None:
        import torch

        if not torch.cuda.is_available():
            pytest.skip("needs a CUDA GPU")


@pytest.fixture(autouse=True)
def _deterministic():
    import numpy as np
    import torch

    torch.manual_seed(0)
    np.random.seed(0)
    torch.set_num_threads(1)
    yield


@pytest.fixture
def repo_root() -> Path:
    return REPO_ROOT


# ---- real data fixtures, built once per test session (small: tiny face budget, few trajectories)

TEST_CONFIG = {
    "seed": 7,
    "assets": {"max_faces": 96, "vhacd_resolution": 20000},
    "simulation": {"num_shards": 2, "trajectories_per_shard": 6, "num_frames": 48, "frame_rate": 48,
                   "min_objects": 2, "max_objects": 5},
}


@pytest.fixture(scope="session")
def test_config() -> dict:
    """A validated small config shared by the data tests."""
    from eqscale.config import validate_config

    return validate_config(TEST_CONFIG)


@pytest.fixture(scope="session")
def asset_dir(tmp_path_factory, test_config) -> Path:
    """Real procedural assets (all 11 shapes) at a small face budget."""
    from eqscale.physics.assets import build_asset_dir

    out = tmp_path_factory.mktemp("assets") / "assets"
    a = test_config["assets"]
    build_asset_dir(out, a["shapes"], a["max_faces"], a["vhacd_resolution"])
    return out


@pytest.fixture(scope="session")
def raw_shards(tmp_path_factory, test_config, asset_dir) -> list[Path]:
    """Both raw shards of the test config, simulated for real."""
    from eqscale.physics.simulate import simulate_shard

    out = tmp_path_factory.mktemp("raw")
    return [simulate_shard(test_config, asset_dir, s, out / f"shard-{s:04d}.h5", progress=False)
            for s in range(test_config["simulation"]["num_shards"])]


# ---- token shards of the session's raw shards (shared by the data and training tests)

# small token shards (several per split) and splits large enough to be non-empty with 12 trajectories
TOKENS = {"val_fraction": 0.2, "test_fraction": 0.2, "horizon": 1, "trajectories_per_shard": 3}


@pytest.fixture(scope="session")
def token_config(test_config) -> dict:
    """The session's test config with the tokens section used by the data tests."""
    from eqscale.config import deep_merge, validate_config

    return validate_config(deep_merge(test_config, {"tokens": TOKENS}))


@pytest.fixture(scope="session")
def tokens_dir(tmp_path_factory, token_config, raw_shards, asset_dir):
    """Token shards + stats.json of both raw shards (read-only for tests: copy before damaging)."""
    from eqscale.data.tokenize import tokenize

    out = tmp_path_factory.mktemp("tokens") / "tokens"
    tokenize(raw_shards, asset_dir, out, token_config, progress=False)
    return out
