"""Geometric meaning of the embeddings, the join, and the versors."""

from __future__ import annotations

import torch

from eqscale import symmetry
from eqscale.algebra import (
    embed_displacement,
    embed_oriented_plane,
    embed_point,
    embed_rotation,
    embed_translation,
    extract_displacement,
    extract_oriented_plane,
    extract_point,
    outer_product,
    regressive_product,
    sandwich,
    signed_distance_to_plane,
    squared_norm,
    versor_from_transform,
)

GEN = torch.Generator().manual_seed(11)


def _randn(*shape):
    return torch.randn(*shape, generator=GEN, dtype=torch.float64)


def test_point_and_plane_round_trip():
    x = _randn(7, 3)
    torch.testing.assert_close(extract_point(embed_point(x)), x)
    torch.testing.assert_close(extract_point(3.0 * embed_point(x)), x)  # homogeneous weight divides out
    normal, position = _randn(7, 3), _randn(7, 3)
    n, d = extract_oriented_plane(embed_oriented_plane(normal, position))
    torch.testing.assert_close(n, normal)
    torch.testing.assert_close(d, -(normal * position).sum(-1))
    torch.testing.assert_close(extract_displacement(embed_displacement(x)), x)


def test_plane_wedge_point_is_the_signed_distance():
    normal = _randn(9, 3)
    normal = normal / normal.norm(dim=-1, keepdim=True)
    position, x = _randn(9, 3), _randn(9, 3)
    plane = embed_oriented_plane(normal, position)
    wedge = outer_product(plane, embed_point(x))
    expected = ((x - position) * normal).sum(-1)
    torch.testing.assert_close(wedge[..., 15], expected)
    torch.testing.assert_close(wedge[..., :15], torch.zeros(9, 15, dtype=torch.float64))
    torch.testing.assert_close(signed_distance_to_plane(plane, x), expected)


def test_join_of_two_points_is_the_line_through_them():
    a, b = _randn(8, 3), _randn(8, 3)
    pa, pb = embed_point(a), embed_point(b)
    line = regressive_product(pa, pb)
    assert (line[..., [5, 6, 7, 8, 9, 10]].abs().sum(-1) > 1e-3).all()  # a bivector, nonzero
    assert line[..., [0, 1, 2, 3, 4, 11, 12, 13, 14, 15]].abs().max() < 1e-12
    # incidence of a line and a point: their join (the plane through both) vanishes. (line ^ point
    # is grade 5, always zero in 4D PGA, so the outer product cannot test this.)
    for p in (pa, pb, embed_point(a + 0.37 * (b - a))):
        assert regressive_product(line, p).abs().max() < 1e-12
    off_line = embed_point(a + torch.linalg.cross(b - a, _randn(8, 3)))
    assert (regressive_product(line, off_line).abs().amax(-1) > 1e-6).all()
    # its Euclidean part has the length of the segment: joins make distances visible to <x, x>
    torch.testing.assert_close(squared_norm(line), ((b - a) ** 2).sum(-1))


def test_join_of_three_points_is_their_plane():
    a, b, c = _randn(3, 6, 3)
    plane = regressive_product(regressive_product(embed_point(a), embed_point(b)), embed_point(c))
    normal, _ = extract_oriented_plane(plane)
    cross = torch.linalg.cross(b - a, c - a)
    # parallel (or antiparallel) to the triangle normal, and every corner lies on it
    torch.testing.assert_close(torch.linalg.cross(normal, cross), torch.zeros(6, 3, dtype=torch.float64), atol=1e-12, rtol=0)
    for p in (a, b, c):
        assert outer_product(plane, embed_point(p)).abs().max() < 1e-12


def test_versors_act_like_their_euclidean_transforms():
    q, t = symmetry.random_e3(6, GEN)
    versor, odd = versor_from_transform(q, t)
    assert odd.any() and (~odd).any()
    x, normal, vec = _randn(6, 3), _randn(6, 3), _randn(6, 3)
    moved = sandwich(versor, embed_point(x), odd)
    torch.testing.assert_close(extract_point(moved), (q @ x[..., None])[..., 0] + t)
    # the homogeneous weight flips under reflections: the reason points are parity-odd objects
    torch.testing.assert_close(moved[..., 14], torch.where(odd, -1.0, 1.0).double())
    plane = sandwich(versor, embed_oriented_plane(normal, x), odd)
    torch.testing.assert_close(plane, embed_oriented_plane((q @ normal[..., None])[..., 0], (q @ x[..., None])[..., 0] + t))
    torch.testing.assert_close(extract_displacement(sandwich(versor, embed_displacement(vec), odd)), (q @ vec[..., None])[..., 0])


def test_rotation_and_translation_embeddings():
    q = symmetry.random_orthogonal(5, GEN, reflections=False)
    x, t = _randn(5, 3), _randn(5, 3)
    torch.testing.assert_close(extract_point(sandwich(embed_rotation(q), embed_point(x))), (q @ x[..., None])[..., 0])
    torch.testing.assert_close(extract_point(sandwich(embed_translation(t), embed_point(x))), x + t)
