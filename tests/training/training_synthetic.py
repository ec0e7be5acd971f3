"""Shared pieces of the training tests: a tiny real model and a deterministic, restartable batch stream.

Imported by the tests in this directory (pytest puts it on sys.path) and by the scripts they run.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import torch

from eqscale.models.transformer import Transformer, TransformerConfig
from helpers.scenes import random_rigid_scene_batch

TINY = TransformerConfig(width=16, num_blocks=2, num_heads=2, rff_frequencies=4)


class SyntheticStream:
    """`stream(start)` -> batches for steps start, start+1, ...: batch k depends only on (seed, k)."""

    num_trajectories = 1000

    def __init__(self, seed: int = 0, batch_size: int = 2) -> None:
        self.seed = seed
        self.batch_size = batch_size

    def __call__(self, start: int) -> Iterator[dict[str, torch.Tensor]]:
        for step in itertools.count(start):
            yield random_rigid_scene_batch(self.batch_size, seed=1000 * self.seed + step, dtype=torch.float32)


def tiny_model(seed: int = 0) -> Transformer:
    """The same freshly initialised tiny transformer for a given seed."""
    torch.manual_seed(seed)
    return Transformer(TINY)
