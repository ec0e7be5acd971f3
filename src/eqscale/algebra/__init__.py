"""Projective geometric algebra G(3,0,1): blades, product tables, equivariant primitives, embeddings.

Layering: `blades` (the multiplication rule) -> `tables` (cached tensors built from it) ->
`products`, `linear`, `versors`, `embedding` (pure functions on (..., 16) tensors).
"""

from eqscale.algebra.blades import BLADE_NAMES, BLADES, GRADES, NUM_COMPONENTS
from eqscale.algebra.embedding import (
    embed_displacement,
    embed_oriented_plane,
    embed_point,
    embed_pseudoscalar,
    embed_reflection,
    embed_rotation,
    embed_scalar,
    embed_translation,
    extract_displacement,
    extract_oriented_plane,
    extract_point,
    extract_scalar,
    extract_vector,
    signed_distance_to_plane,
)
from eqscale.algebra.linear import NUM_LINEAR_BASIS, equi_linear, equi_linear_matrix, linear_basis
from eqscale.algebra.products import (
    dual,
    equivariant_join,
    geometric_product,
    grade_involute,
    grade_project,
    inner_product,
    outer_product,
    regressive_product,
    reverse,
    squared_norm,
    undual,
)
from eqscale.algebra.versors import is_odd_versor, sandwich, versor_from_transform, versor_inverse

__all__ = [
    "BLADES", "BLADE_NAMES", "GRADES", "NUM_COMPONENTS", "NUM_LINEAR_BASIS",
    "dual", "embed_displacement", "embed_oriented_plane", "embed_point", "embed_pseudoscalar",
    "embed_reflection", "embed_rotation", "embed_scalar", "embed_translation", "equi_linear",
    "equi_linear_matrix", "equivariant_join", "extract_displacement", "extract_oriented_plane",
    "extract_point", "extract_scalar", "extract_vector", "geometric_product", "grade_involute", "grade_project",
    "inner_product", "is_odd_versor", "linear_basis", "outer_product", "regressive_product",
    "reverse", "sandwich", "signed_distance_to_plane", "squared_norm", "undual",
    "versor_from_transform", "versor_inverse",
]
