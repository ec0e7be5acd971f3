"""Equivariant layers: equivariance (float64, reflections included), structure, blocks of packed tokens, parity."""

from __future__ import annotations

import math

import pytest
import torch

from eqscale.algebra import embed_point, equi_linear, geometric_product
from eqscale.models.attention import BlockLayout
from eqscale.models.configs import BilinearConfig, BlockConfig
from eqscale.models.layers_equivariant import (
    EquiLayerNorm,
    EquiLinear,
    GATrBlock,
    GeometricAttention,
    GeometricBilinear,
    ScalarGatedGELU,
    distance_features,
)
from eqscale.symmetry import act_mv, act_mv_odd, assert_equivariant, equivariance_error, random_group

# (batch dims, tokens, mv channels, scalar channels)
SHAPES = [((2,), 3, 4, 5), ((3,), 5, 2, 3), ((2, 2), 4, 3, 2)]


def _inputs(batch, tokens, mv, s, seed=0, odd=0):
    gen = torch.Generator().manual_seed(seed)
    x_mv = torch.randn(*batch, tokens, mv, 16, generator=gen, dtype=torch.float64)
    x_s = torch.randn(*batch, tokens, s, generator=gen, dtype=torch.float64)
    if not odd:
        return x_mv, x_s
    points = embed_point(torch.randn(*batch, tokens, odd, 3, generator=gen, dtype=torch.float64))
    return x_mv, x_s, points


# packed tokens in blocks (objects or scenes): block lengths
LAYOUTS = [[2, 3], [4, 1, 1, 3], [5]]


def _per_token(layout: BlockLayout, action):
    """An action on packed tokens: block b's tokens moved by group element b."""
    index = layout.block_index()
    return lambda g, x: action(g.take(index), x)


@pytest.mark.parametrize("batch, tokens, mv, s", SHAPES)
@pytest.mark.parametrize("out_mv, out_s", [(3, 2), (1, 0)])
def test_equilinear_is_equivariant(batch, tokens, mv, s, out_mv, out_s):
    layer = EquiLinear(mv, out_mv, s, out_s).double()
    act_out = ("mv", "invariant") if out_s else ("mv", None)
    fn = (lambda m, x: layer(m, x)) if out_s else (lambda m, x: layer(m, x)[0])
    assert_equivariant(fn, _inputs(batch, tokens, mv, s), ("mv", "invariant"), act_out if out_s else "mv")


def test_equilinear_without_scalars_keeps_parity_odd_inputs_odd():
    layer = EquiLinear(3, 2, bias=False).double()
    _, _, points = _inputs((4,), 3, 1, 1, odd=3)
    assert_equivariant(lambda p: layer(p)[0], (points,), ("mv_odd",), "mv_odd")


def test_equilinear_is_the_basis_map_plus_scalar_paths_and_biases_only_scalars():
    layer = EquiLinear(3, 2, 4, 5).double()
    with torch.no_grad():
        layer.mv_bias.normal_()
        layer.s_bias.normal_()
    x_mv, x_s = _inputs((6,), 1, 3, 4)
    out_mv, out_s = layer(x_mv, x_s)
    expected = equi_linear(x_mv, layer.weight)
    expected[..., 0] += x_s @ layer.s_to_mv.T + layer.mv_bias
    torch.testing.assert_close(out_mv, expected)
    torch.testing.assert_close(out_s, x_mv[..., 0] @ layer.mv_to_s.T + x_s @ layer.s_to_s.T + layer.s_bias)
    zero_mv, _ = layer(torch.zeros_like(x_mv), torch.zeros_like(x_s))
    assert zero_mv[..., 1:].abs().max() == 0 and zero_mv[..., 0].abs().max() > 0


@pytest.mark.parametrize("batch, tokens, mv, s", SHAPES)
def test_gated_gelu_and_layer_norm_are_equivariant(batch, tokens, mv, s):
    inputs = _inputs(batch, tokens, mv, s)
    assert_equivariant(ScalarGatedGELU(), inputs, ("mv", "invariant"), ("mv", "invariant"))
    assert_equivariant(EquiLayerNorm(), inputs, ("mv", "invariant"), ("mv", "invariant"))


def test_layer_norm_normalises_the_mean_squared_norm_over_channels():
    x_mv, x_s = _inputs((3,), 4, 5, 6)
    out_mv, out_s = EquiLayerNorm()(10 * x_mv, x_s)
    euclid = [0, 2, 3, 4, 8, 9, 10, 14]
    torch.testing.assert_close(out_mv[..., euclid].square().sum(-1).mean(-1), torch.ones(3, 4, dtype=torch.float64))
    torch.testing.assert_close(out_s.mean(-1), torch.zeros(3, 4, dtype=torch.float64))


@pytest.mark.parametrize("batch, tokens, mv, s", SHAPES)
@pytest.mark.parametrize("odd", [0, 2])
def test_geometric_bilinear_is_equivariant(batch, tokens, mv, s, odd):
    layer = GeometricBilinear(BilinearConfig(mv, s, 3, 4, gp_channels=2, join_channels=2, odd_channels=odd)).double()
    if odd:
        inputs = _inputs(batch, tokens, mv, s, odd=odd)
        assert_equivariant(lambda m, x, p: layer(m, x, odd=p), inputs, ("mv", "invariant", "mv_odd"), ("mv", "invariant"))
    else:
        ref = torch.randn(*batch, tokens, 16, dtype=torch.float64)
        inputs = (*_inputs(batch, tokens, mv, s), ref)
        assert_equivariant(lambda m, x, r: layer(m, x, reference=r), inputs, ("mv", "invariant", "mv"), ("mv", "invariant"))


def test_distance_features_give_minus_squared_distance_for_either_point_weight():
    gen = torch.Generator().manual_seed(3)
    a, b = torch.randn(2, 10, 3, generator=gen, dtype=torch.float64)
    sign = torch.where(torch.rand(10, generator=gen) < 0.5, -1.0, 1.0).double()[:, None]
    pa, pb = embed_point(a)[..., 11:15], sign * embed_point(b)[..., 11:15]  # weights +1 / -1
    dot = (distance_features(pa, 0.0, key=False) * distance_features(pb, 0.0, key=True)).sum(-1)
    torch.testing.assert_close(dot, -((a - b) ** 2).sum(-1))


@pytest.mark.parametrize("lengths", LAYOUTS)
@pytest.mark.parametrize("mv, s", [(4, 6), (8, 8)])
@pytest.mark.parametrize("odd", [0, 3])
def test_geometric_attention_is_equivariant_per_block(lengths, mv, s, odd):
    layout = BlockLayout(torch.tensor([0, *lengths]).cumsum(0))
    layer = GeometricAttention(BlockConfig(mv, s, num_heads=2, odd_channels=odd).attention()).double()
    group = random_group(len(lengths), seed=len(lengths))
    on_mv, on_odd = _per_token(layout, act_mv), _per_token(layout, act_mv_odd)
    if odd:
        inputs = _inputs((), layout.num_tokens, mv, s, odd=odd)
        fn = lambda m, x, p: layer(m, x, layout, odd=p)  # noqa: E731
        acts = (on_mv, "invariant", on_odd)
    else:
        inputs = _inputs((), layout.num_tokens, mv, s)
        fn = lambda m, x: layer(m, x, layout)  # noqa: E731
        acts = (on_mv, "invariant")
    assert_equivariant(fn, inputs, acts, (on_mv, "invariant"), group=group)


def _naive_attention(layer: GeometricAttention, mv, s, mask, odd):
    """Per head: explicit logits, masked softmax, weighted sums (no SDPA, no padding, no folding)."""
    c = layer.config
    heads = c.num_heads
    qkv_mv, qkv_s = layer.qkv(mv, s)
    qkv_odd, _ = layer.qkv_odd(odd)
    weights = layer.log_distance_weight.exp()
    ip = [0, 2, 3, 4, 8, 9, 10]

    def split(x, width):
        return x[..., : heads * width, :].unflatten(-2, (heads, width)), x[..., heads * width: (heads + 1) * width, :], x[..., (heads + 1) * width:, :]

    q_mv, k_mv, v_mv = split(qkv_mv, c.head_mv)
    q_odd, k_odd, v_odd = split(qkv_odd, c.head_odd)
    q_s = qkv_s[..., : heads * c.head_s].unflatten(-1, (heads, c.head_s))
    k_s, v_s = qkv_s[..., heads * c.head_s: (heads + 1) * c.head_s], qkv_s[..., (heads + 1) * c.head_s:]
    outs_mv, outs_odd, outs_s = [], [], []
    for h in range(heads):
        logits = torch.einsum("bicx,bjcx->bij", q_mv[:, :, h][..., ip], k_mv[..., ip])
        for q_part, k_part, w in ((q_mv[:, :, h], k_mv, weights[h, : c.head_mv]), (q_odd[:, :, h], k_odd, weights[h, c.head_mv:])):
            dq = distance_features(q_part[..., 11:15], c.normalizer_eps, key=False) * w[:, None]
            dk = distance_features(k_part[..., 11:15], c.normalizer_eps, key=True)
            logits = logits + torch.einsum("bicx,bjcx->bij", dq, dk)
        logits = (logits + torch.einsum("bix,bjx->bij", q_s[:, :, h], k_s)) / math.sqrt(c.qk_width)
        attn = logits.masked_fill(~mask, float("-inf")).softmax(-1)
        outs_mv.append(torch.einsum("bij,bjcx->bicx", attn, v_mv))
        # odd channels are points: only grades 3-4 (components 11..15) are attended and multiplied
        points_q = q_odd[:, :, h] * (torch.arange(16) >= 11)
        points_v = v_odd * (torch.arange(16) >= 11)
        outs_odd.append(geometric_product(points_q, torch.einsum("bij,bjcx->bicx", attn, points_v)))
        outs_s.append(torch.einsum("bij,bjx->bix", attn, v_s))
    hidden_mv = torch.cat([torch.stack(outs_mv, 2).flatten(2, 3), torch.stack(outs_odd, 2).flatten(2, 3)], -2)
    return layer.out(hidden_mv, torch.stack(outs_s, 2).flatten(-2))


def test_attention_matches_a_naive_multi_query_implementation():
    layer = GeometricAttention(BlockConfig(4, 6, num_heads=2, odd_channels=3).attention()).double()
    with torch.no_grad():
        layer.log_distance_weight.normal_(0, 0.5)
    lengths = [4, 1, 3, 4]
    layout = BlockLayout(torch.tensor([0, *lengths]).cumsum(0))
    mv, s, odd = _inputs((), layout.num_tokens, 4, 6, odd=3)
    block = layout.block_index()
    same_block = (block[:, None] == block[None, :])[None]
    got = layer(mv, s, layout, odd=odd)
    expected = _naive_attention(layer, mv[None], s[None], same_block, odd[None])
    for g, e in zip(got, expected):
        torch.testing.assert_close(g, e[0], rtol=1e-10, atol=1e-12)
    # one shared key/value head: the fused projection holds queries for every head plus one k and one v
    assert layer.qkv.out_mv == (layer.config.num_heads + 2) * layer.config.head_mv


@pytest.mark.parametrize("odd", [0, 2])
def test_block_is_equivariant(odd):
    config = BlockConfig(4, 6, num_heads=2, odd_channels=odd)
    block = GATrBlock(config).double()
    layout = BlockLayout([0, 2, 5, 9])
    group = random_group(3, seed=7)
    on_mv = _per_token(layout, act_mv)
    if odd:
        inputs = _inputs((), 9, 4, 6, odd=odd)
        assert_equivariant(lambda m, x, p: block(m, x, layout, odd=p), inputs,
                           (on_mv, "invariant", _per_token(layout, act_mv_odd)), (on_mv, "invariant"), group=group)
    else:
        reference = torch.randn(9, 16, dtype=torch.float64)
        inputs = (*_inputs((), 9, 4, 6), reference)
        assert_equivariant(lambda m, x, r: block(m, x, layout, reference=r), inputs, (on_mv, "invariant", on_mv),
                           (on_mv, "invariant"), group=group)


def test_block_tokens_see_only_their_own_block():
    block = GATrBlock(BlockConfig(4, 6, num_heads=2, odd_channels=2)).double()
    layout = BlockLayout([0, 4, 6])
    mv, s, odd = _inputs((), 6, 4, 6, odd=2)
    out = block(mv, s, layout, odd=odd)
    mv2, s2, odd2 = mv.clone(), s.clone(), odd.clone()
    mv2[4:], s2[4:], odd2[4:] = 1e3, -1e3, 7.0
    out2 = block(mv2, s2, layout, odd=odd2)
    for a, b in zip(out, out2):
        torch.testing.assert_close(a[:4], b[:4], rtol=1e-12, atol=1e-12)
        assert (a[4:] - b[4:]).abs().max() > 1


def test_treating_points_as_parity_even_breaks_reflection_equivariance():
    """Why the odd input exists: a vanilla block fed embedded points as ordinary multivectors (join
    reference = their mean) is SE(3)-equivariant, but not equivariant under reflections."""
    block = GATrBlock(BlockConfig(4, 6, num_heads=2)).double()
    gen = torch.Generator().manual_seed(8)
    coords = torch.randn(5, 4, 3, generator=gen, dtype=torch.float64)  # one block of 5 tokens
    s = torch.randn(5, 6, generator=gen, dtype=torch.float64)
    layout = BlockLayout([0, 5])

    def vanilla(x, scalars):
        points = embed_point(x)
        return block(points, scalars, layout, reference=points.mean(dim=(0, 1)).expand(5, 16))

    def one(group):  # the same element for every token
        return group.take(torch.zeros(5, dtype=torch.long))

    acts = ("points", "invariant")
    rotations = one(random_group(1, kind="e3", reflections=False))
    assert equivariance_error(vanilla, (coords, s), acts, ("mv", "invariant"), rotations) < 1e-9
    mirrors = one(random_group(1, seed=2, kind="e3"))
    assert mirrors.odd.all()
    for parity in ("mv", "mv_odd"):
        assert equivariance_error(vanilla, (coords, s), acts, (parity, "invariant"), mirrors) > 1e-2
