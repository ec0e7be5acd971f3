"""Groups acting on 3D points: all of E(3), and the rigid-body problem's own group.

Gravity and the floor leave rotations about z, translations in x-y and mirrors through
vertical planes (the "problem group"). Augmentation, the evaluation's equivariance error and the
tests all draw transforms here, so they agree on what "the symmetry" is.

A transform is a pair (Q, t) with Q orthogonal (det +1 or -1) acting as x -> Q x + t.
"""

from __future__ import annotations

import math

import torch

Transform = tuple[torch.Tensor, torch.Tensor]


def random_orthogonal(n: int, generator: torch.Generator | None = None, dtype=torch.float64,
                      reflections: bool = True) -> torch.Tensor:
    """n Haar-random orthogonal 3x3 matrices (half of them reflections when `reflections`)."""
    a = torch.randn(n, 3, 3, generator=generator, dtype=torch.float64)
    q, r = torch.linalg.qr(a)
    # fix the sign ambiguity of QR so the distribution is Haar
    q = q * torch.sign(torch.diagonal(r, dim1=-2, dim2=-1)).unsqueeze(-2)
    det = torch.linalg.det(q)
    flip = det < 0
    if reflections:
        want_reflection = torch.rand(n, generator=generator, dtype=torch.float64) < 0.5
        flip = flip ^ want_reflection
    q = torch.where(flip[:, None, None], q * torch.tensor([1.0, 1.0, -1.0], dtype=torch.float64), q)
    return q.to(dtype)


def random_e3(n: int, generator: torch.Generator | None = None, dtype=torch.float64,
              translation_scale: float = 3.0) -> Transform:
    """n random elements of E(3): Haar orthogonal part (reflections included) and Gaussian shifts."""
    q = random_orthogonal(n, generator, dtype)
    t = translation_scale * torch.randn(n, 3, generator=generator, dtype=torch.float64)
    return q, t.to(dtype)


def random_problem_transform(n: int, generator: torch.Generator | None = None, dtype=torch.float64,
                             translation_scale: float = 3.0, mirrors: bool = True) -> Transform:
    """n random elements of the problem group: z-rotation, x-y translation, optional vertical mirror."""
    theta = 2 * math.pi * torch.rand(n, generator=generator, dtype=torch.float64)
    c, s = torch.cos(theta), torch.sin(theta)
    zero, one = torch.zeros_like(c), torch.ones_like(c)
    q = torch.stack([c, -s, zero, s, c, zero, zero, zero, one], dim=-1).reshape(n, 3, 3)
    if mirrors:
        mirror = torch.rand(n, generator=generator, dtype=torch.float64) < 0.5
        flip_x = torch.tensor([-1.0, 1.0, 1.0], dtype=torch.float64)  # mirror through the y-z plane
        q = torch.where(mirror[:, None, None], q * flip_x, q)
    t = translation_scale * torch.randn(n, 3, generator=generator, dtype=torch.float64)
    t[:, 2] = 0.0
    return q.to(dtype), t.to(dtype)


def apply_to_points(transform: Transform, points: torch.Tensor) -> torch.Tensor:
    """Apply per-sample transforms (Q: (B,3,3), t: (B,3)) to points (B, ..., 3)."""
    q, t = transform
    q = q.to(points.dtype)
    t = t.to(points.dtype)
    shape = points.shape
    flat = points.reshape(shape[0], -1, 3)
    out = flat @ q.transpose(-1, -2) + t[:, None, :]
    return out.reshape(shape)


def apply_to_vectors(transform: Transform, vectors: torch.Tensor) -> torch.Tensor:
    """Apply the linear part only (for velocities, directions, displacements)."""
    q, _ = transform
    q = q.to(vectors.dtype)
    shape = vectors.shape
    return (vectors.reshape(shape[0], -1, 3) @ q.transpose(-1, -2)).reshape(shape)


def transform_batch(batch: dict[str, torch.Tensor], transform: Transform) -> dict[str, torch.Tensor]:
    """The batch with every position (both input frames and the target) transformed."""
    from eqscale.data.batch import POSITION_KEYS

    out = dict(batch)
    for key in POSITION_KEYS:
        out[key] = apply_to_points(transform, batch[key])
    return out


def equivariance_error(predict, batch: dict[str, torch.Tensor], transforms: list[Transform]) -> float:
    """Mean relative equivariance violation of `predict` (batch -> (B,V,3) positions) on real vertices.

    For each transform g: sqrt(MSE(f(g.x), g.f(x)) / MSE(f(x), x_t)), i.e. the violation measured
    against the size of the predicted motion, averaged over transforms. Zero for an equivariant f.
    """
    from eqscale.data.batch import masked_vertex_mse

    mask = batch["vertex_mask"]
    base = predict(batch)
    motion = masked_vertex_mse(base, batch["vertices_curr"], mask).clamp_min(1e-30)
    errors = []
    for g in transforms:
        moved = predict(transform_batch(batch, g))
        errors.append(torch.sqrt(masked_vertex_mse(moved, apply_to_points(g, base), mask) / motion))
    return float(torch.stack(errors).mean())
