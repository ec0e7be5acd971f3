"""Verified, atomic training checkpoints with one generation of backup.

A run directory holds `checkpoint.pt` (newest) and `checkpoint.prev.pt` (the one before). Each file
is a one-line header naming the payload's length and sha256, then the payload (`torch.save` of a
dict of tensors and plain values, loadable with `weights_only=True`):

    EQSCALE-CHECKPOINT 1 size=<bytes> sha256=<hex>\\n<payload>

Saving writes a temp file in the same directory, fsyncs it, moves the current checkpoint to
`.prev` (only if it is known to be good, so a corrupt file never displaces a good backup), renames
the temp file into place and fsyncs the directory: a kill at any moment leaves at least one
complete, verifiable checkpoint. Loading tries the newest, then the backup, then gives up (the
caller starts from scratch), and says which it used and why.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from eqscale.io_utils import atomic_write_bytes

log = logging.getLogger("eqscale.training")

MAGIC = b"EQSCALE-CHECKPOINT 1"
CHECKPOINT_NAME = "checkpoint.pt"
PREVIOUS_NAME = "checkpoint.prev.pt"


class CheckpointError(Exception):
    """A checkpoint file cannot be used; the message says why (missing, truncated, sha256 mismatch, ...)."""


def encode_checkpoint(state: dict) -> bytes:
    """Header + payload bytes of a checkpoint holding `state`."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    payload = buffer.getvalue()
    header = MAGIC + b" size=%d sha256=%s\n" % (len(payload), hashlib.sha256(payload).hexdigest().encode())
    return header + payload


def read_checkpoint(path: str | Path) -> dict:
    """The verified state stored at `path`; CheckpointError says what is wrong with it."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise CheckpointError("missing") from None
    except OSError as err:
        raise CheckpointError(f"unreadable ({err.strerror})") from None
    head, newline, payload = data.partition(b"\n")
    fields = head.split(b" ")
    if not newline or not head.startswith(MAGIC + b" ") or len(fields) != 4:
        raise CheckpointError("corrupt (no valid header)")
    try:
        size = int(fields[2].removeprefix(b"size="))
        digest = fields[3].removeprefix(b"sha256=").decode()
    except (ValueError, UnicodeDecodeError):
        raise CheckpointError("corrupt (no valid header)") from None
    if len(payload) != size:
        raise CheckpointError(f"corrupt (truncated: {len(payload)} of {size} payload bytes)")
    if hashlib.sha256(payload).hexdigest() != digest:
        raise CheckpointError("corrupt (sha256 mismatch)")
    try:
        return torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
    except Exception as err:  # a verified payload that torch cannot read: written by an incompatible version
        raise CheckpointError(f"unreadable by this torch ({type(err).__name__}: {err})") from None


@dataclass
class Resumed:
    """What `CheckpointStore.load` found: the state (None: start from scratch), its file, and why."""

    state: dict | None
    path: Path | None
    message: str


class CheckpointStore:
    """`checkpoint.pt` and `checkpoint.prev.pt` in one run directory."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.current = self.directory / CHECKPOINT_NAME
        self.previous = self.directory / PREVIOUS_NAME
        self._current_is_good: bool | None = None  # unknown until loaded, verified or written

    def save(self, state: dict) -> Path:
        """Write `state` atomically as the newest checkpoint, keeping the last good one as the backup."""
        self.directory.mkdir(parents=True, exist_ok=True)

        def keep_previous() -> None:
            if self._current_is_good is None:
                self._current_is_good = self._verifies(self.current)
            if self._current_is_good:
                os.replace(self.current, self.previous)

        atomic_write_bytes(self.current, encode_checkpoint(state), before_replace=keep_previous)
        self._current_is_good = True
        return self.current

    def load(self, check: Callable[[dict], str | None] | None = None) -> Resumed:
        """The newest usable checkpoint, else the backup, else none; logs which one and why.

        `check(state)` may reject a verified state that belongs to a different run by returning
        the reason (e.g. "it is from a run of 200 steps, this run has 100").
        """
        if not self.current.exists() and not self.previous.exists():
            self._current_is_good = False
            message = "no checkpoint; starting from scratch"
            log.info("%s: %s", self.directory, message)
            return Resumed(None, None, message)
        problems = []
        for path in (self.current, self.previous):
            try:
                state = read_checkpoint(path)
            except CheckpointError as err:
                if path == self.current:
                    self._current_is_good = False
                problems.append(f"{path.name} is {err}")
                continue
            reason = check(state) if check is not None else None
            if reason:
                problems.append(f"{path.name} does not match this run ({reason})")
                if path == self.current:
                    self._current_is_good = False
                continue
            if path == self.current:
                self._current_is_good = True
            step = state.get("step", "?")
            message = "; ".join(problems + [f"resuming from {path.name} at step {step}"])
            (log.warning if problems else log.info)("%s: %s", self.directory, message)
            return Resumed(state, path, message)
        message = "; ".join(problems + ["starting from scratch"])
        log.warning("%s: %s", self.directory, message)
        return Resumed(None, None, message)

    @staticmethod
    def _verifies(path: Path) -> bool:
        try:
            read_checkpoint(path)
        except CheckpointError:
            return False
        return True
