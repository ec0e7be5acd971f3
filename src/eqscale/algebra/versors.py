"""Versors of Pin(3,0,1) and their sandwich action on multivectors.

A versor u is a product of planes (grade-1 elements); it is even (rotations, translations,
screws) or odd (reflections, roto-reflections). Its action on a multivector is

    rho_u(x) = u x u^-1             for even u
    rho_u(x) = u grade_involute(x) u^-1   for odd u,

which maps planes (vectors) to the reflected/rotated/translated planes with the right
orientation and is an algebra automorphism, so every product is equivariant. A point embedded
as a trivector with e123 = 1 comes out of an odd versor with e123 = -1: the same point with
negated homogeneous weight (`extract_point` divides it out). See `eqscale.models.gatr` for why
that matters for networks.
"""

from __future__ import annotations

import torch

from eqscale.algebra.blades import BLADE_INDEX, GRADE_INDICES
from eqscale.algebra.products import geometric_product, grade_involute, reverse

_E01, _E02, _E03 = BLADE_INDEX[(0, 1)], BLADE_INDEX[(0, 2)], BLADE_INDEX[(0, 3)]
_E12, _E13, _E23 = BLADE_INDEX[(1, 2)], BLADE_INDEX[(1, 3)], BLADE_INDEX[(2, 3)]
_E0 = BLADE_INDEX[(0,)]
_NORMAL = [BLADE_INDEX[(1,)], BLADE_INDEX[(2,)], BLADE_INDEX[(3,)]]
_ODD = list(GRADE_INDICES[1]) + list(GRADE_INDICES[3])


def versor_inverse(versor: torch.Tensor) -> torch.Tensor:
    """u^-1 = reverse(u) / (u reverse(u)), valid for versors (u reverse(u) is a scalar)."""
    rev = reverse(versor)
    norm = geometric_product(versor, rev)[..., :1]
    return rev / norm


def is_odd_versor(versor: torch.Tensor) -> torch.Tensor:
    """Bool (...,): whether the versor is odd (a versor is purely even or purely odd)."""
    odd = versor[..., _ODD].square().sum(-1)
    return odd > versor.square().sum(-1) - odd


def sandwich(versor: torch.Tensor, x: torch.Tensor, odd: torch.Tensor | bool | None = None) -> torch.Tensor:
    """Pin action rho_u(x) of versors (..., 16) on broadcastable multivectors (..., 16)."""
    if odd is None:
        odd = is_odd_versor(versor)
    odd = torch.as_tensor(odd, device=x.device)
    x_twisted = torch.where(odd[..., None], grade_involute(x), x)
    return geometric_product(geometric_product(versor, x_twisted), versor_inverse(versor))


def translation_versor(translation: torch.Tensor) -> torch.Tensor:
    """Translator (..., 16) moving points by `translation` (..., 3): 1 - (t1 e01 + t2 e02 + t3 e03) / 2."""
    out = torch.zeros(*translation.shape[:-1], 16, dtype=translation.dtype, device=translation.device)
    out[..., 0] = 1.0
    out[..., [_E01, _E02, _E03]] = -0.5 * translation
    return out


def rotation_versor_from_quaternion(quaternion: torch.Tensor) -> torch.Tensor:
    """Rotor (..., 16) of a unit quaternion (w, x, y, z) (..., 4), acting like its rotation matrix."""
    w, x, y, z = quaternion.unbind(-1)
    out = torch.zeros(*quaternion.shape[:-1], 16, dtype=quaternion.dtype, device=quaternion.device)
    out[..., 0] = w
    # the bivector dual to the rotation axis (x, y, z): e23 <-> x, e31 = -e13 <-> y, e12 <-> z
    out[..., _E23] = -x
    out[..., _E13] = y
    out[..., _E12] = -z
    return out


def quaternion_from_matrix(rotation: torch.Tensor) -> torch.Tensor:
    """Unit quaternions (w, x, y, z) (..., 4) of proper rotation matrices (..., 3, 3)."""
    m = rotation
    m00, m11, m22 = m[..., 0, 0], m[..., 1, 1], m[..., 2, 2]
    # four candidate formulas; use the one with the largest (well-conditioned) diagonal term
    candidates = torch.stack([
        torch.stack([1 + m00 + m11 + m22, m[..., 2, 1] - m[..., 1, 2], m[..., 0, 2] - m[..., 2, 0],
                     m[..., 1, 0] - m[..., 0, 1]], -1),
        torch.stack([m[..., 2, 1] - m[..., 1, 2], 1 + m00 - m11 - m22, m[..., 0, 1] + m[..., 1, 0],
                     m[..., 0, 2] + m[..., 2, 0]], -1),
        torch.stack([m[..., 0, 2] - m[..., 2, 0], m[..., 0, 1] + m[..., 1, 0], 1 - m00 + m11 - m22,
                     m[..., 1, 2] + m[..., 2, 1]], -1),
        torch.stack([m[..., 1, 0] - m[..., 0, 1], m[..., 0, 2] + m[..., 2, 0], m[..., 1, 2] + m[..., 2, 1],
                     1 - m00 - m11 + m22], -1),
    ], -2)  # (..., 4 candidates, 4)
    best = torch.stack([1 + m00 + m11 + m22, 1 + m00 - m11 - m22, 1 - m00 + m11 - m22, 1 - m00 - m11 + m22], -1)
    choice = best.argmax(-1)
    q = torch.gather(candidates, -2, choice[..., None, None].expand(*choice.shape, 1, 4)).squeeze(-2)
    return q / q.norm(dim=-1, keepdim=True)


def reflection_versor(normal: torch.Tensor, position: torch.Tensor | None = None) -> torch.Tensor:
    """Odd versor (..., 16) reflecting in the plane with `normal` (..., 3) through `position`.

    The versor is the plane itself, n1 e1 + n2 e2 + n3 e3 - (n . position) e0 with |n| = 1 (the
    convention of `embedding.embed_oriented_plane`, written out here so versors need no embedding).
    """
    unit = normal / normal.norm(dim=-1, keepdim=True)
    out = torch.zeros(*unit.shape[:-1], 16, dtype=unit.dtype, device=unit.device)
    out[..., _NORMAL] = unit
    if position is not None:
        out[..., _E0] = -(unit * position).sum(-1)
    return out


def versor_from_transform(orthogonal: torch.Tensor, translation: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Versors (n, 16) and oddness (n,) of x -> Q x + t for Q (n, 3, 3) orthogonal and t (n, 3).

    det Q = -1 is written Q = (Q F) F with F the mirror x -> -x (versor e1), so the versor is
    translator * rotor(Q F) * e1.
    """
    q = orthogonal
    odd = torch.linalg.det(q) < 0
    mirror = torch.diag(torch.tensor([-1.0, 1.0, 1.0], dtype=q.dtype, device=q.device))
    proper = torch.where(odd[:, None, None], q @ mirror, q)
    versor = rotation_versor_from_quaternion(quaternion_from_matrix(proper))
    e1 = torch.zeros(16, dtype=q.dtype, device=q.device)
    e1[BLADE_INDEX[(1,)]] = 1.0
    versor = torch.where(odd[:, None], geometric_product(versor, e1), versor)
    versor = geometric_product(translation_versor(translation.to(q.dtype)), versor)
    return versor, odd
