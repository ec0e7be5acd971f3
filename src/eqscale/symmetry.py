"""Groups acting on 3D data, and the one measurement of equivariance that tests assert and evaluation reports.

Gravity and the floor leave rotations about z, translations in x-y and mirrors through vertical
planes (the "problem group"). Augmentation, the evaluation's equivariance error and the tests all
draw transforms here, so they agree on what "the symmetry" is.

A transform is a pair (Q, t) with Q orthogonal (det +1 or -1) acting as x -> Q x + t; a
`GroupElement` carries n of them (one per scene, or per row of packed data) with their Pin(3,0,1)
versors. Actions say how a function's arguments and outputs transform:

    act_points     coordinates (n, ..., 3) -> Q x + t
    act_vectors    coordinates (n, ..., 3) -> Q x
    act_mv         multivectors (n, ..., 16) under the Pin sandwich action (parity even)
    act_mv_odd     multivectors that pick up det(Q) on top (parity odd: embedded points)
    act_rigid_motion  rigid motions (R (n,3,3), t (n,3)) -> (Q R Q^T, Q t + s - Q R Q^T s)
    act_invariant  unchanged (scalars, indices)

named by these strings ("points", "vectors", "mv", "mv_odd", "rotation", "invariant") or given as
any callable (group, x) -> x (`eqscale.data.batch` has the actions on packed batches).
`equivariance_error` measures sqrt(sum |f(g.x) - g.f(x)|^2 / sum |g.f(x) - g.b(x)|^2) (b a
baseline, default zero), `assert_equivariant` asserts it below a tolerance.

Layering: this module sits below the data and model packages; it imports only the algebra.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from eqscale.algebra.versors import sandwich, versor_from_transform

Transform = tuple[torch.Tensor, torch.Tensor]
Action = Callable[["GroupElement", object], object]


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
    """Apply per-row transforms (Q: (n,3,3), t: (n,3)) to points (n, ..., 3)."""
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


# ---------------------------------------------------------------------------------------------
# Group elements with their versors


@dataclass
class GroupElement:
    """n elements of E(3) (x -> Q x + t) with their Pin(3,0,1) versors."""

    orthogonal: torch.Tensor  # (n, 3, 3)
    translation: torch.Tensor  # (n, 3)
    versor: torch.Tensor  # (n, 16)
    odd: torch.Tensor  # (n,) bool: det Q = -1

    @property
    def det(self) -> torch.Tensor:
        """(n,) +1 or -1."""
        return torch.where(self.odd, -1.0, 1.0).to(self.versor.dtype)

    @property
    def transform(self) -> Transform:
        """The (Q, t) pair."""
        return self.orthogonal, self.translation

    def take(self, index: torch.Tensor) -> GroupElement:
        """Elements index[i] for every i: expand per-scene elements to per-vertex, per-face or per-object rows."""
        index = index.to(self.orthogonal.device)
        return GroupElement(self.orthogonal[index], self.translation[index], self.versor[index], self.odd[index])

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> GroupElement:
        """The same elements on another device or in another floating dtype."""
        return GroupElement(self.orthogonal.to(device, dtype), self.translation.to(device, dtype),
                            self.versor.to(device, dtype), self.odd.to(device))


def random_group(n: int, seed: int | torch.Generator = 0, dtype=torch.float64, kind: str = "e3",
                 reflections: bool = True, translation_scale: float = 3.0) -> GroupElement:
    """n random group elements: kind "e3" (all of E(3)), "problem" (z-rotations, x-y shifts, vertical
    mirrors) or "rotation" (rotations about the origin, no translation)."""
    gen = seed if isinstance(seed, torch.Generator) else torch.Generator().manual_seed(seed)
    if kind == "e3":
        q = random_orthogonal(n, gen, torch.float64, reflections=reflections)
        t = translation_scale * torch.randn(n, 3, generator=gen, dtype=torch.float64)
    elif kind == "problem":
        q, t = random_problem_transform(n, gen, torch.float64, translation_scale, mirrors=reflections)
    elif kind == "rotation":
        q = random_orthogonal(n, gen, torch.float64, reflections=False)
        t = torch.zeros(n, 3, dtype=torch.float64)
    else:
        raise ValueError(f"unknown group kind {kind!r} (known: e3, problem, rotation)")
    versor, odd = versor_from_transform(q, t)
    return GroupElement(q.to(dtype), t.to(dtype), versor.to(dtype), odd)


# ---------------------------------------------------------------------------------------------
# Actions


def _per_row(values: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Reshape (n, *tail) so it broadcasts against x (n, ..., *tail)."""
    tail = values.shape[1:]
    return values.reshape(values.shape[0], *([1] * (x.dim() - 1 - len(tail))), *tail)


def act_mv(g: GroupElement, x: torch.Tensor) -> torch.Tensor:
    """Pin sandwich action on multivectors (n, ..., 16)."""
    versor = _per_row(g.versor.to(x.dtype), x)
    odd = g.odd.reshape(-1, *([1] * (x.dim() - 2)))
    return sandwich(versor, x, odd)


def act_mv_odd(g: GroupElement, x: torch.Tensor) -> torch.Tensor:
    """Sandwich action times det(Q): how embedded points (trivectors with e123 = 1) transform."""
    return act_mv(g, x) * g.det.to(x.dtype).reshape(-1, *([1] * (x.dim() - 1)))


def act_points(g: GroupElement, x: torch.Tensor) -> torch.Tensor:
    """x -> Q x + t on coordinates (n, ..., 3)."""
    return apply_to_points(g.transform, x)


def act_vectors(g: GroupElement, x: torch.Tensor) -> torch.Tensor:
    """x -> Q x on coordinates (n, ..., 3)."""
    return apply_to_vectors(g.transform, x)


def act_rigid_motion(g: GroupElement, motion: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """(R (n,3,3), t (n,3)) -> (Q R Q^T, Q t + s - Q R Q^T s): the motion seen in the moved frame."""
    rot, trans = motion
    q = g.orthogonal.to(rot.dtype)
    s = g.translation.to(rot.dtype)[..., None]
    rot_new = q @ rot @ q.transpose(-1, -2)
    trans_new = (q @ trans[..., None] + s - rot_new @ s)[..., 0]
    return rot_new, trans_new


def act_invariant(g: GroupElement, x):
    """The trivial action."""
    return x


ACTIONS: dict[str, Action] = {"points": act_points, "vectors": act_vectors, "mv": act_mv, "mv_odd": act_mv_odd,
                              "rotation": act_rigid_motion, "invariant": act_invariant}


def _action(action: str | Action | None) -> Action | None:
    if action is None or callable(action):
        return action
    if action not in ACTIONS:
        raise KeyError(f"unknown action {action!r} (known: {', '.join(ACTIONS)}, or a callable)")
    return ACTIONS[action]


# ---------------------------------------------------------------------------------------------
# The measurement


def _tensors(value) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value]
    if value is None:
        return []
    if isinstance(value, dict):
        return [v for v in value.values() if isinstance(v, torch.Tensor)]
    return [t for item in value for t in _tensors(item)]


def _sum_sq(tensors: Sequence[torch.Tensor]) -> float:
    return float(sum(t.detach().double().square().sum() for t in tensors))


def equivariance_error(fn: Callable, inputs: Sequence, act_in: Sequence[str | Action],
                       act_out: str | Action | Sequence[str | Action | None],
                       group: GroupElement, baseline: Callable | None = None) -> float:
    """sqrt(sum |f(g.x) - g.f(x)|^2 / sum |g.f(x) - g.b(x)|^2) over every output entry (0 if f is equivariant).

    act_in: one action per input; act_out: one action, or one per output when f returns a tuple
    (None where an output is absent). baseline(*inputs) -> outputs to measure against (default
    zero), e.g. the current positions, so the error is relative to the predicted motion.
    """
    single = not isinstance(act_out, (list, tuple))
    acts_out = [_action(act_out)] if single else [_action(a) for a in act_out]
    transformed = [_action(act)(group, x) for act, x in zip(act_in, inputs)]
    out, out_moved = fn(*inputs), fn(*transformed)
    if single:
        out, out_moved = [out], [out_moved]
    expected = [act(group, y) if y is not None else None for act, y in zip(acts_out, out)]
    deviation = _sum_sq([m - e for m, e in zip(_tensors(out_moved), _tensors(expected))])
    if baseline is None:
        scale = _sum_sq(_tensors(expected))
    else:
        base = baseline(*inputs)
        base = [base] if single else list(base)
        moved_base = [act(group, y) if y is not None else None for act, y in zip(acts_out, base)]
        scale = _sum_sq([e - b for e, b in zip(_tensors(expected), _tensors(moved_base))])
    return math.sqrt(deviation / max(scale, 1e-300))


def assert_equivariant(fn: Callable, inputs: Sequence, act_in: Sequence[str | Action],
                       act_out: str | Action | Sequence[str | Action | None],
                       group: GroupElement | None = None, rtol: float = 1e-9, baseline: Callable | None = None,
                       kind: str = "e3", seed: int = 0) -> float:
    """Assert `equivariance_error` <= rtol; returns the error.

    Without `group`, one random element of `kind` per row of the first input (its leading dimension)
    is drawn from `seed`, in the first input's dtype.
    """
    if group is None:
        first = _tensors(inputs[0])[0]
        group = random_group(first.shape[0], seed, first.dtype, kind=kind)
    error = equivariance_error(fn, inputs, act_in, act_out, group, baseline)
    odd = int(group.odd.sum())
    assert error <= rtol, f"equivariance error {error:.3e} > {rtol:.1e} ({odd} of {len(group.odd)} elements odd)"
    return error
