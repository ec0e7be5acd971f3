"""Data augmentation by the problem's own symmetry group (z-rotations, x-y translations, vertical mirrors).

Transforms come from `eqscale.symmetry.random_problem_transform`, the sampler the evaluation's
equivariance error uses too, so training and evaluation agree on the group. A sample's transform
is a pure function of (seed, epoch, sample index): the same whichever worker loads it, however
many workers there are, and after a restart.
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch

from eqscale.symmetry import Transform, random_problem_transform

# Gaussian x-y shift in metres: scenes start within +-5 m of the origin, so shifts of a few metres
# move them across the whole range the simulation covers
TRANSLATION_SCALE = 3.0


def transform_seed(seed: int, epoch: int, index: int) -> int:
    """A 63-bit generator seed for sample `index` in `epoch` of a run seeded `seed`."""
    digest = hashlib.blake2b(f"eqscale-augment:{seed}:{epoch}:{index}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


def sample_transform(seed: int, epoch: int, index: int) -> Transform:
    """The problem-group transform (Q (1,3,3), t (1,3), float64) of one sample."""
    generator = torch.Generator().manual_seed(transform_seed(seed, epoch, index))
    return random_problem_transform(1, generator=generator, dtype=torch.float64,
                                    translation_scale=TRANSLATION_SCALE, mirrors=True)


def transform_points(transform: Transform, points: np.ndarray) -> np.ndarray:
    """Apply one transform (x -> Q x + t, as `eqscale.symmetry.apply_to_points`) to float64 points (..., 3)."""
    q, t = (x.detach().cpu().numpy().astype(np.float64).reshape(s) for x, s in zip(transform, ((3, 3), (3,))))
    # numpy, not torch: torch's small float64 batched matmul costs milliseconds per sample here
    return np.asarray(points, np.float64) @ q.T + t
