"""Equivariance checks shared by the algebra, layer and network tests.

A group element is sampled once per batch entry (`random_group`), carrying both its E(3) form
(x -> Q x + t) and its Pin(3,0,1) versor. Actions say how each argument or output transforms:

    "mv"        multivectors (B, ..., 16) under the Pin sandwich action (parity even)
    "mv_odd"    multivectors that pick up det(Q) on top (parity odd: embedded points)
    "points"    coordinates (B, ..., 3) -> Q x + t
    "vectors"   coordinates (B, ..., 3) -> Q x
    "rotation"  rigid motions (R (B,K,3,3), t (B,K,3)) -> conjugated by (Q, t)
    "batch"     a model batch dict (every position key transformed)
    "invariant" unchanged (scalars, masks, indices)

or any callable (group, x) -> x. `assert_equivariant(f, inputs, act_in, act_out)` checks
f(g.x) == g.f(x) to a relative tolerance (largest deviation over the largest output entry).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import torch

from eqscale import symmetry
from eqscale.algebra import sandwich, versor_from_transform


@dataclass
class GroupElement:
    """Per-batch-entry E(3) elements with their Pin versors."""

    orthogonal: torch.Tensor  # (B, 3, 3)
    translation: torch.Tensor  # (B, 3)
    versor: torch.Tensor  # (B, 16)
    odd: torch.Tensor  # (B,) bool: det Q = -1

    @property
    def det(self) -> torch.Tensor:
        """(B,) +1 or -1."""
        return torch.where(self.odd, -1.0, 1.0).to(self.versor.dtype)

    @property
    def transform(self) -> symmetry.Transform:
        """The (Q, t) pair used by `eqscale.symmetry`."""
        return self.orthogonal, self.translation


def random_group(n: int, seed: int = 0, dtype=torch.float64, kind: str = "e3",
                 reflections: bool = True, translation_scale: float = 3.0) -> GroupElement:
    """n random group elements: kind "e3" (all of E(3)), "problem" (z-rotations, x-y shifts, vertical
    mirrors) or "rotation" (rotations about the origin, no translation)."""
    gen = torch.Generator().manual_seed(seed)
    if kind == "e3":
        q = symmetry.random_orthogonal(n, gen, torch.float64, reflections=reflections)
        t = translation_scale * torch.randn(n, 3, generator=gen, dtype=torch.float64)
    elif kind == "problem":
        q, t = symmetry.random_problem_transform(n, gen, torch.float64, translation_scale, mirrors=reflections)
    elif kind == "rotation":
        q = symmetry.random_orthogonal(n, gen, torch.float64, reflections=False)
        t = torch.zeros(n, 3, dtype=torch.float64)
    else:
        raise ValueError(f"unknown group kind {kind!r} (known: e3, problem, rotation)")
    versor, odd = versor_from_transform(q, t)
    return GroupElement(q.to(dtype), t.to(dtype), versor.to(dtype), odd)


def _per_sample(values: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Reshape (B, *tail) so it broadcasts against x (B, ..., *tail)."""
    tail = values.shape[1:]
    return values.reshape(values.shape[0], *([1] * (x.dim() - 1 - len(tail))), *tail)


def act_mv(g: GroupElement, x: torch.Tensor) -> torch.Tensor:
    """Pin sandwich action on multivectors (B, ..., 16)."""
    versor = _per_sample(g.versor.to(x.dtype), x)
    odd = g.odd.reshape(-1, *([1] * (x.dim() - 2)))
    return sandwich(versor, x, odd)


def act_mv_odd(g: GroupElement, x: torch.Tensor) -> torch.Tensor:
    """Sandwich action times det(Q): how embedded points (trivectors with e123 = 1) transform."""
    return act_mv(g, x) * g.det.to(x.dtype).reshape(-1, *([1] * (x.dim() - 1)))


def act_points(g: GroupElement, x: torch.Tensor) -> torch.Tensor:
    """x -> Q x + t on coordinates (B, ..., 3)."""
    return symmetry.apply_to_points(g.transform, x)


def act_vectors(g: GroupElement, x: torch.Tensor) -> torch.Tensor:
    """x -> Q x on coordinates (B, ..., 3)."""
    return symmetry.apply_to_vectors(g.transform, x)


def act_rigid_motion(g: GroupElement, motion: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """(R, t) per object -> (Q R Q^T, Q t + s - Q R Q^T s): the motion seen in the moved frame."""
    rot, trans = motion
    q = g.orthogonal.to(rot.dtype)[:, None]
    s = g.translation.to(rot.dtype)[:, None, :, None]
    rot_new = q @ rot @ q.transpose(-1, -2)
    trans_new = (q @ trans[..., None] + s - rot_new @ s)[..., 0]
    return rot_new, trans_new


ACTIONS: dict[str, Callable] = {
    "mv": act_mv,
    "mv_odd": act_mv_odd,
    "points": act_points,
    "vectors": act_vectors,
    "rotation": act_rigid_motion,
    "batch": lambda g, batch: symmetry.transform_batch(batch, g.transform),
    "invariant": lambda g, x: x,
}


def _resolve(action) -> Callable:
    if callable(action):
        return action
    if action not in ACTIONS:
        raise KeyError(f"unknown action {action!r} (known: {', '.join(ACTIONS)})")
    return ACTIONS[action]


def _flatten(value) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, dict):
        return [v for v in value.values() if isinstance(v, torch.Tensor)]
    return [t for item in value for t in _flatten(item)]


def _batch_size(inputs: Sequence) -> int:
    first = inputs[0]
    if isinstance(first, dict):
        return first["vertices_curr"].shape[0]
    return _flatten(first)[0].shape[0]


def equivariance_error(fn: Callable, inputs: Sequence, act_in: Sequence, act_out, group: GroupElement) -> float:
    """max |f(g.x) - g.f(x)| / max |g.f(x)| over all outputs (0 for an equivariant f)."""
    single = not isinstance(act_out, (list, tuple))
    acts_out = [act_out] if single else list(act_out)
    transformed = [_resolve(a)(group, x) for a, x in zip(act_in, inputs)]
    out = fn(*inputs)
    out_moved = fn(*transformed)
    if single:
        out, out_moved = [out], [out_moved]
    expected = [_resolve(a)(group, y) for a, y in zip(acts_out, out)]
    flat_expected, flat_moved = _flatten(expected), _flatten(out_moved)
    flat_expected = [e.detach() for e in flat_expected]
    flat_moved = [m.detach() for m in flat_moved]
    scale = max(float(e.abs().max()) for e in flat_expected)
    deviation = max(float((m - e).abs().max()) for m, e in zip(flat_moved, flat_expected))
    return deviation / max(scale, 1e-300)


def assert_equivariant(fn: Callable, inputs: Sequence, act_in: Sequence, act_out, rtol: float = 1e-9,
                       kind: str = "e3", seed: int = 0, reflections: bool = True,
                       group: GroupElement | None = None) -> float:
    """Assert f(g.x) = g.f(x) for random group elements (one per batch entry); returns the error."""
    if group is None:
        first = _flatten(inputs[0])[0] if not isinstance(inputs[0], dict) else inputs[0]["vertices_curr"]
        group = random_group(_batch_size(inputs), seed, first.dtype, kind=kind, reflections=reflections)
    error = equivariance_error(fn, inputs, act_in, act_out, group)
    assert error <= rtol, f"equivariance error {error:.3e} > {rtol:.1e} ({kind}, reflections={reflections})"
    return error
