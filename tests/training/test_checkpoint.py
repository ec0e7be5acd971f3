"""Checkpoint files: verified by sha256, written atomically, one good backup kept, fallbacks said out loud."""

from __future__ import annotations

import logging
import os

import pytest
import torch

from eqscale.training import checkpoint as ckpt
from eqscale.training.checkpoint import CheckpointError, CheckpointStore, encode_checkpoint, read_checkpoint


def _state(step: int) -> dict:
    return {"step": step, "weights": torch.full((4, 3), float(step)), "nested": {"lr": 0.1 * step, "rows": [1, 2]}}


def _flip_byte(path, offset_from_end: int = 10) -> None:
    data = bytearray(path.read_bytes())
    data[-offset_from_end] ^= 0xFF
    path.write_bytes(bytes(data))


def _saved(tmp_path, *steps) -> CheckpointStore:
    store = CheckpointStore(tmp_path)
    for step in steps:
        store.save(_state(step))
    return store


def test_round_trip_keeps_tensors_and_values(tmp_path):
    path = tmp_path / "x.pt"
    path.write_bytes(encode_checkpoint(_state(3)))
    state = read_checkpoint(path)
    assert state["step"] == 3 and state["nested"] == {"lr": pytest.approx(0.3), "rows": [1, 2]}
    assert torch.equal(state["weights"], torch.full((4, 3), 3.0))
    assert path.read_bytes().startswith(b"EQSCALE-CHECKPOINT 1 size=")


@pytest.mark.parametrize("damage, reason", [
    (lambda p: _flip_byte(p), "corrupt (sha256 mismatch)"),
    (lambda p: p.write_bytes(p.read_bytes()[:-100]), "corrupt (truncated"),
    (lambda p: p.write_bytes(b""), "corrupt (no valid header)"),
    (lambda p: p.write_bytes(b"PK\x03\x04 a zip file, not ours\n" + b"x" * 50), "corrupt (no valid header)"),
    (lambda p: p.unlink(), "missing"),
])
def test_damaged_files_are_refused_with_the_reason(tmp_path, damage, reason):
    path = tmp_path / "x.pt"
    path.write_bytes(encode_checkpoint(_state(1)))
    damage(path)
    with pytest.raises(CheckpointError) as err:
        read_checkpoint(path)
    assert str(err.value).startswith(reason)


def test_saving_rotates_the_previous_checkpoint_into_the_backup(tmp_path):
    store = _saved(tmp_path, 1, 2, 3)
    assert read_checkpoint(store.current)["step"] == 3
    assert read_checkpoint(store.previous)["step"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.prev.pt", "checkpoint.pt"]  # no temp files


def test_newest_loaded_when_good(tmp_path, caplog):
    _saved(tmp_path, 1, 2)
    with caplog.at_level(logging.INFO, logger="eqscale.training"):
        resumed = CheckpointStore(tmp_path).load()
    assert resumed.state["step"] == 2 and resumed.path.name == "checkpoint.pt"
    assert resumed.message == "resuming from checkpoint.pt at step 2"
    assert "resuming from checkpoint.pt at step 2" in caplog.text


def test_corrupt_newest_falls_back_to_the_previous_and_says_so(tmp_path, caplog):
    store = _saved(tmp_path, 119, 120, 121)
    _flip_byte(store.current)
    with caplog.at_level(logging.WARNING, logger="eqscale.training"):
        resumed = CheckpointStore(tmp_path).load()
    assert resumed.state["step"] == 120 and resumed.path.name == "checkpoint.prev.pt"
    expected = "checkpoint.pt is corrupt (sha256 mismatch); resuming from checkpoint.prev.pt at step 120"
    assert resumed.message == expected
    assert expected in caplog.text and caplog.records[-1].levelno == logging.WARNING


def test_both_corrupt_starts_from_scratch_and_says_so(tmp_path, caplog):
    store = _saved(tmp_path, 1, 2)
    _flip_byte(store.current)
    store.previous.write_bytes(store.previous.read_bytes()[:50])
    with caplog.at_level(logging.WARNING, logger="eqscale.training"):
        resumed = CheckpointStore(tmp_path).load()
    assert resumed.state is None and resumed.path is None
    assert resumed.message.startswith("checkpoint.pt is corrupt (sha256 mismatch); checkpoint.prev.pt is corrupt (")
    assert resumed.message.endswith("; starting from scratch")
    assert "starting from scratch" in caplog.text


def test_nothing_there_starts_from_scratch_quietly(tmp_path):
    resumed = CheckpointStore(tmp_path / "new").load()
    assert resumed.state is None and resumed.message == "no checkpoint; starting from scratch"


def test_killed_between_the_two_renames_resumes_from_the_backup(tmp_path):
    store = _saved(tmp_path, 4, 5)
    # the state a kill leaves after "current -> prev" and before "temp -> current"
    os.replace(store.current, store.previous)
    (tmp_path / ".checkpoint.pt.abc.tmp").write_bytes(encode_checkpoint(_state(6))[:40])
    resumed = CheckpointStore(tmp_path).load()
    assert resumed.state["step"] == 5
    assert resumed.message == "checkpoint.pt is missing; resuming from checkpoint.prev.pt at step 5"


def test_a_corrupt_newest_never_displaces_the_good_backup(tmp_path):
    store = _saved(tmp_path, 1, 2)
    _flip_byte(store.current)
    fresh = CheckpointStore(tmp_path)
    assert fresh.load().state["step"] == 1
    fresh.save(_state(3))
    assert read_checkpoint(fresh.current)["step"] == 3
    assert read_checkpoint(fresh.previous)["step"] == 1  # not the corrupt step-2 file
    # the same holds for a store that saves without loading first
    _flip_byte(fresh.current)
    CheckpointStore(tmp_path).save(_state(4))
    assert read_checkpoint(fresh.previous)["step"] == 1


def test_a_failed_write_leaves_the_files_as_they_were(tmp_path, monkeypatch):
    store = _saved(tmp_path, 1, 2)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    def broken_fsync(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ckpt.os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="No space"):
        store.save(_state(3))
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_a_checkpoint_of_another_run_is_skipped(tmp_path):
    _saved(tmp_path, 1, 2)
    resumed = CheckpointStore(tmp_path).load(check=lambda s: "other steps" if s["step"] == 2 else None)
    assert resumed.state["step"] == 1
    assert resumed.message == ("checkpoint.pt does not match this run (other steps); "
                               "resuming from checkpoint.prev.pt at step 1")
