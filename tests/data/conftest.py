"""Token shards of the session's real raw shards, tokenized once per module that asks."""

from __future__ import annotations

import pytest

from eqscale.config import deep_merge, validate_config

# small token shards (several per split) and splits large enough to be non-empty with 12 trajectories
TOKENS = {"val_fraction": 0.2, "test_fraction": 0.2, "horizon": 1, "trajectories_per_shard": 3}


@pytest.fixture(scope="session")
def token_config(test_config) -> dict:
    """The session's test config with the tokens section used by the data tests."""
    return validate_config(deep_merge(test_config, {"tokens": TOKENS}))


@pytest.fixture(scope="session")
def tokens_dir(tmp_path_factory, token_config, raw_shards, asset_dir):
    """Token shards + stats.json of both raw shards (read-only for tests: copy before damaging)."""
    from eqscale.data.tokenize import tokenize

    out = tmp_path_factory.mktemp("tokens") / "tokens"
    tokenize(raw_shards, asset_dir, out, token_config, progress=False)
    return out
