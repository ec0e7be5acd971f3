"""Bad token shards are refused with a message naming the file; split and subset rules."""

import re
import shutil

import h5py
import numpy as np
import pytest

from eqscale.config import validate_config
from eqscale.data.dataset import TokenDataset
from eqscale.data.token_format import (
    TokenShardError, open_token_shard, planned_split_counts, split_of, subset_size, verify_token_shard,
)
from eqscale.physics.raw_format import ShardError


@pytest.fixture
def tokens_copy(tokens_dir, tmp_path):
    """A private copy of the session's token directory, free to damage."""
    out = tmp_path / "tokens"
    shutil.copytree(tokens_dir, out)
    return out


def _flip_byte_in_positions(path):
    with h5py.File(path, "r") as fh:
        offset = fh["objects/positions"].id.get_chunk_info(0).byte_offset
    data = bytearray(path.read_bytes())
    data[offset + 100] ^= 0xFF
    path.write_bytes(bytes(data))


def test_flipped_bytes_fail_the_checksum(tokens_copy):
    path = tokens_copy / "train-0000.h5"
    verify_token_shard(path)
    _flip_byte_in_positions(path)
    with pytest.raises(TokenShardError, match="checksum") as err:
        verify_token_shard(path)
    assert str(path) in str(err.value)
    # the loader refuses the shard up front (its sha256 is not the one stats.json recorded) ...
    with pytest.raises(TokenShardError, match="sha256") as err:
        TokenDataset(tokens_copy, "train", 1)
    assert str(path) in str(err.value)
    # ... and without that check meets the damage when it reads the poses, and says which file
    ds = TokenDataset(tokens_copy, "train", 1, verify=False)
    with pytest.raises(ShardError) as err:
        ds.get_sample(0, 1)
    assert str(path) in str(err.value)


def test_truncated_shard_is_refused(tokens_copy):
    path = tokens_copy / "train-0001.h5"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(TokenShardError, match="truncated or corrupt") as err:
        open_token_shard(path)
    assert str(path) in str(err.value)
    with pytest.raises(ShardError, match=re.escape(str(path))):
        TokenDataset(tokens_copy, "train", 1, verify=False)


def test_missing_shard_is_refused(tokens_copy):
    path = tokens_copy / "test-0000.h5"
    path.unlink()
    with pytest.raises(TokenShardError, match="does not exist") as err:
        TokenDataset(tokens_copy, "test", 1)
    assert str(path) in str(err.value)


@pytest.mark.parametrize("attr, value, message", [
    ("format", "eqscale-raw", "not an eqscale token shard"),
    ("format_version", 99, "format_version 99"),
    ("format_version", 1, "format_version 1; this eqscale reads 2: re-run eqscale tokenize"),
    ("complete", False, "incomplete"),
    ("num_trajectories", 1000, "header says 1000"),
])
def test_foreign_wrong_version_and_incomplete_shards_are_refused(tokens_copy, attr, value, message):
    path = tokens_copy / "val-0000.h5"
    with h5py.File(path, "a") as fh:
        fh.attrs[attr] = value
    with pytest.raises(TokenShardError, match=message) as err:
        open_token_shard(path)
    assert str(path) in str(err.value)


def test_non_hdf5_file_is_refused(tmp_path):
    path = tmp_path / "train-0000.h5"
    path.write_text("not a token shard")
    with pytest.raises(TokenShardError, match=re.escape(str(path))):
        open_token_shard(path)


def test_split_rule_is_fixed_and_nested_in_the_fractions():
    keys = [(shard, index) for shard in range(4) for index in range(50)]
    small = {k: split_of(0, *k, val_fraction=0.1, test_fraction=0.1) for k in keys}
    larger_val = {k: split_of(0, *k, val_fraction=0.3, test_fraction=0.1) for k in keys}
    # the test split never changes with val_fraction; val only grows
    assert {k for k, s in small.items() if s == "test"} == {k for k, s in larger_val.items() if s == "test"}
    assert {k for k, s in small.items() if s == "val"} < {k for k, s in larger_val.items() if s == "val"}
    assert small == {k: split_of(0, *k, val_fraction=0.1, test_fraction=0.1) for k in keys}
    assert small != {k: split_of(1, *k, val_fraction=0.1, test_fraction=0.1) for k in keys}
    counts = planned_split_counts(validate_config({"simulation": {"num_shards": 4, "trajectories_per_shard": 50}}))
    assert counts == {s: sum(v == s for v in small.values()) for s in ("train", "val", "test")}
    assert 0.7 < counts["train"] / len(keys) < 0.9


@pytest.mark.parametrize("fraction", [0.0, -0.5, 1.5, float("nan")])
def test_subset_size_refuses_fractions_outside_0_1(fraction):
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        subset_size(fraction, 10)


def test_subset_size_rounds_up():
    assert [subset_size(f, 10) for f in (0.01, 0.1, 0.25, 0.5, 1.0)] == [1, 1, 3, 5, 10]
    assert subset_size(1 / 3, 3) == 1 and subset_size(0.125, 8) == 1
    assert np.all(np.diff([subset_size(f, 1000) for f in np.linspace(0.001, 1, 50)]) >= 0)
