"""Embedding geometric objects as multivectors and extracting them again.

Conventions (Dorst's plane-based PGA, as in the reference GATr):
- scalar s: component 1.
- oriented plane n . x + d = 0: vector d e0 + n1 e1 + n2 e2 + n3 e3 (normal side positive).
- point x: trivector e123 = 1, e023 = -x1, e013 = x2, e012 = -x3, so that plane ^ point =
  (n . x + d) e0123 (zero exactly when the point lies on the plane).
- displacement v (a translation-invariant 3-vector such as a velocity or an edge): ideal
  bivector v1 e01 + v2 e02 + v3 e03; the Pin action rotates and reflects it like a vector and
  translations leave it unchanged. Reading a vector back from the e0i components of a *general*
  multivector is not equivariant, though: translations mix its Euclidean bivector part into
  them. The equivariant linear readout of a vector is `extract_vector`, the normal of the
  vector (plane) part: translations never change components without e0.
- translation / rotation / reflection: the versors of `eqscale.algebra.versors`.
"""

from __future__ import annotations

import torch

from eqscale.algebra.blades import BLADE_INDEX
from eqscale.algebra.versors import (
    quaternion_from_matrix,
    reflection_versor,
    rotation_versor_from_quaternion,
    translation_versor,
)

_E0 = BLADE_INDEX[(0,)]
_NORMAL = [BLADE_INDEX[(1,)], BLADE_INDEX[(2,)], BLADE_INDEX[(3,)]]
_DISPLACEMENT = [BLADE_INDEX[(0, 1)], BLADE_INDEX[(0, 2)], BLADE_INDEX[(0, 3)]]
_E123 = BLADE_INDEX[(1, 2, 3)]
_E023, _E013, _E012 = BLADE_INDEX[(0, 2, 3)], BLADE_INDEX[(0, 1, 3)], BLADE_INDEX[(0, 1, 2)]
_POINT = [_E023, _E013, _E012]
_POINT_SIGNS = (-1.0, 1.0, -1.0)

embed_translation = translation_versor
embed_reflection = reflection_versor


def _zeros(like: torch.Tensor) -> torch.Tensor:
    return torch.zeros(*like.shape[:-1], 16, dtype=like.dtype, device=like.device)


def embed_scalar(scalar: torch.Tensor) -> torch.Tensor:
    """Scalars (..., 1) -> multivectors (..., 16)."""
    out = _zeros(scalar)
    out[..., :1] = scalar
    return out


def extract_scalar(multivector: torch.Tensor) -> torch.Tensor:
    """The scalar component (..., 1)."""
    return multivector[..., :1]


def embed_point(coordinates: torch.Tensor) -> torch.Tensor:
    """Points (..., 3) -> trivectors (..., 16) with e123 = 1."""
    out = _zeros(coordinates)
    out[..., _E123] = 1.0
    out[..., _POINT] = coordinates * coordinates.new_tensor(_POINT_SIGNS)
    return out


def extract_point(multivector: torch.Tensor, eps: float = 0.0) -> torch.Tensor:
    """Coordinates (..., 3) of the point in the trivector part, divided by its weight e123."""
    weight = multivector[..., _E123 : _E123 + 1]
    if eps:
        # keep the sign (reflections flip the weight) while keeping the magnitude away from zero
        weight = torch.where(weight >= 0, weight.clamp_min(eps), weight.clamp_max(-eps))
    return multivector[..., _POINT] * multivector.new_tensor(_POINT_SIGNS) / weight


def embed_oriented_plane(normal: torch.Tensor, position: torch.Tensor) -> torch.Tensor:
    """Oriented plane with `normal` (..., 3) through `position` (..., 3) -> vector (..., 16)."""
    out = _zeros(normal)
    out[..., _NORMAL] = normal
    out[..., _E0] = -(normal * position).sum(-1)
    return out


def extract_oriented_plane(multivector: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(normal (..., 3), offset d (...,)) of the plane n . x + d = 0 in the vector part."""
    return multivector[..., _NORMAL], multivector[..., _E0]


def signed_distance_to_plane(plane: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Signed distance (...,) of points (..., 3) to planes (..., 16), positive on the normal side."""
    normal, offset = extract_oriented_plane(plane)
    return ((normal * points).sum(-1) + offset) / normal.norm(dim=-1)


def embed_displacement(vector: torch.Tensor) -> torch.Tensor:
    """Translation-invariant vectors (..., 3) -> ideal bivectors v1 e01 + v2 e02 + v3 e03."""
    out = _zeros(vector)
    out[..., _DISPLACEMENT] = vector
    return out


def extract_displacement(multivector: torch.Tensor) -> torch.Tensor:
    """The vector (..., 3) in the e01, e02, e03 components (equivariant for every Pin element)."""
    return multivector[..., _DISPLACEMENT]


def extract_vector(multivector: torch.Tensor) -> torch.Tensor:
    """The e1, e2, e3 components (..., 3): translation-invariant, rotated and reflected like a vector
    under the Pin action, for any multivector (the normal of its plane part)."""
    return multivector[..., _NORMAL]


def embed_rotation(rotation: torch.Tensor) -> torch.Tensor:
    """Rotors (..., 16) from proper rotation matrices (..., 3, 3) or unit quaternions wxyz (..., 4)."""
    if rotation.shape[-2:] == (3, 3):
        rotation = quaternion_from_matrix(rotation)
    return rotation_versor_from_quaternion(rotation)


def embed_pseudoscalar(value: torch.Tensor) -> torch.Tensor:
    """Values (..., 1) -> multiples of e0123."""
    out = _zeros(value)
    out[..., 15:16] = value
    return out
