"""Pin(3,0,1)-equivariant layers for GATr: linear, bilinear, gated GELU, layer norm, attention, block.

Activations are pairs (mv, s): multivectors (..., tokens, channels, 16) and auxiliary invariant
scalars (..., tokens, channels). Every layer is equivariant under the sandwich action on `mv`
with `s` invariant.

Parity. An embedded point (trivector with e123 = 1) does not transform like the other
multivectors under reflections: an odd versor maps it to the mirrored point with weight -1, so
points from coordinates are "parity-odd" (they pick up det(g) on top of the sandwich action),
while planes and displacements are parity-even. A vanilla GATr mixes both and is therefore only
SE(3)-equivariant. Here the residual stream is parity-even, and a token's embedded points enter
as a separate parity-odd input `odd` (..., tokens, odd_channels, 16) that is only used in
parity-consistent ways:
- odd -> odd through `EquiLinear` (no scalars, no bias: an odd multivector's scalar part is a
  pseudoscalar),
- distances between the points of odd queries and keys in the attention logits (det^2 = 1),
- geometric product odd * odd -> even (attended points are brought back relative to the query),
- join even v odd -> even (the regressive product itself picks up det(g), which the odd operand
  cancels: no reference multivector is needed).
Without an odd input the bilinear falls back to the reference GATr's join with a reference
multivector's e123 component.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from eqscale.algebra import equi_linear_matrix, equivariant_join, geometric_product, regressive_product
from eqscale.algebra.blades import EUCLIDEAN_INDICES, GRADE_INDICES
from eqscale.algebra.products import geometric_product_of_parts
from eqscale.algebra.tables import NUM_LINEAR_BASIS, table
from eqscale.models.attention import BlockLayout, block_attention
from eqscale.models.configs import NUM_V_COMPONENTS_PER_ODD, AttentionConfig, BilinearConfig, BlockConfig

# components seen by the attention inner product, without e123 (points enter via distances)
IP_INDICES = [i for i in EUCLIDEAN_INDICES if i != 14]  # 1, e1, e2, e3, e12, e13, e23
TRIVECTOR_INDICES = list(GRADE_INDICES[3])  # e012, e013, e023, e123 (weight last)
POINT_START = TRIVECTOR_INDICES[0]  # grades 3 and 4 (components 11..15): all an odd point projection has


# ---------------------------------------------------------------------------------------------
# Linear


class EquiLinear(nn.Module):
    """Equivariant linear map (mv, s) -> (mv, s): 9 basis maps per multivector channel pair, plus
    scalars <-> scalar components; biases only on scalar components and scalar channels.

    Computed as one dense GEMM on the packed [mv (in*16), s (in_s)] features, so a multivector
    channel pair costs a dense 16x16 block (what `flops.py` counts).
    """

    def __init__(self, in_mv: int, out_mv: int, in_s: int = 0, out_s: int = 0, bias: bool = True,
                 gain: float = 1.0) -> None:
        super().__init__()
        self.in_mv, self.out_mv, self.in_s, self.out_s = in_mv, out_mv, in_s, out_s
        self.weight = nn.Parameter(torch.empty(out_mv, in_mv, NUM_LINEAR_BASIS))
        self.s_to_mv = nn.Parameter(torch.empty(out_mv, in_s))
        self.mv_to_s = nn.Parameter(torch.empty(out_s, in_mv))
        self.s_to_s = nn.Parameter(torch.empty(out_s, in_s))
        self.mv_bias = nn.Parameter(torch.zeros(out_mv)) if bias else None
        self.s_bias = nn.Parameter(torch.zeros(out_s)) if bias and out_s else None
        self.reset_parameters(gain)

    @torch.no_grad()
    def reset_parameters(self, gain: float = 1.0) -> None:
        """Uniform init preserving activation variance per grade (times `gain`)."""
        # each basis map sums over input channels only, so its fan-in is in_mv; the scalar
        # component also receives the scalar channels, so its sources share the variance
        mv_bound = gain * math.sqrt(3.0 / max(self.in_mv, 1))
        nn.init.uniform_(self.weight, -mv_bound, mv_bound)
        scalar_fan = max(self.in_mv + self.in_s, 1)
        s_bound = gain * math.sqrt(3.0 / scalar_fan)
        if self.in_s:
            self.weight[..., 0].uniform_(-s_bound, s_bound)
        for param in (self.s_to_mv, self.mv_to_s, self.s_to_s):
            nn.init.uniform_(param, -s_bound, s_bound)

    def dense_matrix(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The packed (out_mv*16 + out_s, in_mv*16 + in_s) matrix and bias of this map."""
        rows = [equi_linear_matrix(self.weight)]
        scalar_slot = torch.zeros(16, dtype=self.weight.dtype, device=self.weight.device)
        scalar_slot[0] = 1.0
        if self.in_s:
            # scalar channels feed only the scalar component of each output multivector
            s_cols = (self.s_to_mv[:, None, :] * scalar_slot[None, :, None]).reshape(self.out_mv * 16, self.in_s)
            rows = [torch.cat([rows[0], s_cols], 1)]
        if self.out_s:
            mv_cols = (self.mv_to_s[:, :, None] * scalar_slot).reshape(self.out_s, self.in_mv * 16)
            rows.append(torch.cat([mv_cols, self.s_to_s], 1) if self.in_s else mv_cols)
        matrix = torch.cat(rows, 0)
        bias = None
        if self.mv_bias is not None:
            mv_bias = (self.mv_bias[:, None] * scalar_slot).reshape(-1)
            bias = torch.cat([mv_bias, self.s_bias]) if self.s_bias is not None else mv_bias
        return matrix, bias

    def forward(self, mv: torch.Tensor, s: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """mv (..., in_mv, 16), s (..., in_s) -> (..., out_mv, 16), (..., out_s) or None."""
        matrix, bias = self.dense_matrix()
        features = mv.flatten(-2)
        if self.in_s:
            features = torch.cat([features, s], -1)
        out = F.linear(features, matrix, bias)
        if not self.out_s:
            return out.unflatten(-1, (self.out_mv, 16)), None
        # one split, not two slices: its backward is one concatenation, where each slice's backward
        # zero-fills a tensor of the whole output's size
        out_mv, out_s = out.split([self.out_mv * 16, self.out_s], -1)
        return out_mv.unflatten(-1, (self.out_mv, 16)), out_s

    def num_params(self) -> int:
        """Trainable parameters."""
        return sum(p.numel() for p in self.parameters())


# ---------------------------------------------------------------------------------------------
# Nonlinearity and normalisation


def gated_gelu(mv: torch.Tensor, s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Scalar-gated GELU: each multivector times GELU(its scalar component); GELU on scalars."""
    return mv * F.gelu(mv[..., :1]), F.gelu(s)


class ScalarGatedGELU(nn.Module):
    """Module form of `gated_gelu`."""

    def forward(self, mv: torch.Tensor, s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return gated_gelu(mv, s)


def equi_layer_norm(mv: torch.Tensor, eps: float = 0.01) -> torch.Tensor:
    """mv / sqrt(mean over channels of <mv, mv>), the inner product blind to the e0 components.

    eps is large on purpose: a channel can be all-ideal (e.g. pure displacements), which the inner
    product cannot see, and must not be blown up.
    """
    inner = table("inner", mv.dtype, mv.device)
    mean_sq = (mv.square() * inner).sum(-1).mean(-1, keepdim=True)
    return mv / mean_sq.clamp_min(eps).sqrt()[..., None]


class EquiLayerNorm(nn.Module):
    """Equivariant layer norm on multivectors, ordinary (affine-free) LayerNorm on scalars."""

    def __init__(self, eps: float = 0.01) -> None:
        super().__init__()
        self.eps = eps

    def forward(self, mv: torch.Tensor, s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return equi_layer_norm(mv, self.eps), F.layer_norm(s, s.shape[-1:])


# ---------------------------------------------------------------------------------------------
# Bilinear


class GeometricBilinear(nn.Module):
    """Geometric products and joins of separate EquiLinear projections, concatenated and projected."""

    def __init__(self, config: BilinearConfig) -> None:
        super().__init__()
        self.config = c = config
        self.uses_odd = c.odd_channels > 0
        # left and right GP operands and the even join operand from one fused projection
        n_even = 2 * c.gp_channels + c.join_channels * (1 if self.uses_odd else 2)
        self.proj = EquiLinear(c.in_mv, n_even, c.in_s, 0)
        self.proj_odd = EquiLinear(c.odd_channels, c.join_channels, bias=False) if self.uses_odd else None
        self.out = EquiLinear(c.gp_channels + c.join_channels, c.out_mv, c.in_s, c.out_s)

    def forward(self, mv: torch.Tensor, s: torch.Tensor, odd: torch.Tensor | None = None,
                reference: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """mv (..., in_mv, 16), s (..., in_s); odd (..., odd_channels, 16) or reference (..., 16)."""
        c = self.config
        operands, _ = self.proj(mv, s)
        gp_left, gp_right, join_left, *join_rest = operands.split(
            [c.gp_channels, c.gp_channels, c.join_channels] + ([] if self.uses_odd else [c.join_channels]), -2)
        products = geometric_product(gp_left, gp_right)
        if self.uses_odd:
            if odd is None:
                raise ValueError("this GeometricBilinear joins with the parity-odd input: pass odd=")
            join_right, _ = self.proj_odd(odd)
            joins = regressive_product(join_left, join_right)
        else:
            if reference is None:
                raise ValueError("a GeometricBilinear without odd input needs a reference multivector")
            (join_right,) = join_rest
            joins = equivariant_join(join_left, join_right, reference.unsqueeze(-2))
        return self.out(torch.cat([products, joins], -2), s)


# ---------------------------------------------------------------------------------------------
# Attention


def distance_features(tri: torch.Tensor, eps: float, key: bool) -> torch.Tensor:
    """5 features per trivector (..., 4) [e012, e013, e023, e123] whose query . key product is
    -|x_q - x_k|^2 for unit-weight points (weights normalised away, ideal points to ~0)."""
    weight = tri[..., 3:]
    normed = tri * (weight / (weight.square() + eps))  # ~ tri / weight, bounded near weight 0
    coords, w = normed[..., :3], normed[..., 3:]
    sq = coords.square().sum(-1, keepdim=True)
    if key:
        return torch.cat([-w.square(), -sq, 2 * w * coords], -1)
    return torch.cat([sq, w.square(), w * coords], -1)


class GeometricAttention(nn.Module):
    """Multi-query geometric self-attention with SDPA.

    Logits per head: inner products of query/key multivectors (components without e0 and e123),
    learned-weighted negative squared distances between their points, and scalar dot products;
    scaled by 1/sqrt(feature width). The parity-odd projections are points: only their trivector
    part enters the logits (as distances) and only grades 3-4 are attended; the attended points
    are brought back to the parity-even stream by the geometric product with the query's own.
    """

    def __init__(self, config: AttentionConfig) -> None:
        super().__init__()
        self.config = c = config
        self.has_odd = c.odd_channels > 0
        heads = c.num_heads
        # queries (all heads), then the shared key and value, from one fused projection
        self.qkv = EquiLinear(c.mv_channels, (heads + 2) * c.head_mv, c.s_channels, (heads + 2) * c.head_s)
        self.qkv_odd = (EquiLinear(c.odd_channels, (heads + 2) * c.head_odd, bias=False) if self.has_odd else None)
        n_odd_out = heads * c.head_odd if self.has_odd else 0
        self.out = EquiLinear(heads * c.head_mv + n_odd_out, c.mv_channels, heads * c.head_s, c.s_channels,
                              gain=c.out_gain)
        # per head and channel weight of the distance term (log-parametrised, starts at 1)
        self.log_distance_weight = nn.Parameter(torch.zeros(heads, c.head_mv + (c.head_odd if self.has_odd else 0)))

    def _qk_features(self, mv: torch.Tensor, weight: torch.Tensor | None, key: bool,
                     with_inner_product: bool = True) -> torch.Tensor:
        dist = distance_features(mv[..., TRIVECTOR_INDICES], self.config.normalizer_eps, key)
        if weight is not None:
            dist = dist * weight[..., None]
        if not with_inner_product:
            return dist.flatten(-2)
        return torch.cat([mv[..., IP_INDICES], dist], -1).flatten(-2)

    def forward(self, mv: torch.Tensor, s: torch.Tensor, layout: BlockLayout,
                odd: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Packed tokens mv (N, C, 16), s (N, S), odd (N, P, 16) attending within the blocks of `layout`."""
        c = self.config
        heads = c.num_heads
        qkv_mv, qkv_s = self.qkv(mv, s)
        q_mv, k_mv, v_mv = qkv_mv.split([heads * c.head_mv, c.head_mv, c.head_mv], -2)
        q_mv = q_mv.unflatten(-2, (heads, c.head_mv))
        q_s, k_s, v_s = qkv_s.split([heads * c.head_s, c.head_s, c.head_s], -1)
        q_s = q_s.unflatten(-1, (heads, c.head_s))

        weights = self.log_distance_weight.exp()
        q_parts = [self._qk_features(q_mv, weights[:, : c.head_mv], key=False)]
        k_parts = [self._qk_features(k_mv, None, key=True)]
        v_parts = [v_mv.flatten(-2)]
        if self.has_odd:
            qkv_odd, _ = self.qkv_odd(odd)
            q_odd, k_odd, v_odd = qkv_odd.split([heads * c.head_odd, c.head_odd, c.head_odd], -2)
            q_odd = q_odd.unflatten(-2, (heads, c.head_odd))
            q_parts.append(self._qk_features(q_odd, weights[:, c.head_mv :], key=False, with_inner_product=False))
            k_parts.append(self._qk_features(k_odd, None, key=True, with_inner_product=False))
            v_parts.append(v_odd[..., POINT_START:].flatten(-2))
        q_parts.append(q_s)
        k_parts.append(k_s)
        v_parts.append(v_s)

        width = c.padded_width
        q = F.pad(torch.cat(q_parts, -1), (0, width - c.qk_width))  # (N, H, W)
        k = F.pad(torch.cat(k_parts, -1), (0, width - c.qk_width))  # (N, W)
        v = F.pad(torch.cat(v_parts, -1), (0, width - c.v_width))
        # multi-query: one key/value head shared by all query heads
        out = block_attention(q, k, v, layout, scale=1.0 / math.sqrt(c.qk_width))  # (N, H, W)

        width_odd = c.head_odd * NUM_V_COMPONENTS_PER_ODD if self.has_odd else 0
        h_mv, h_odd, h_s, _ = out.split([c.head_mv * 16, width_odd, c.head_s, width - c.v_width], -1)
        parts = [h_mv.unflatten(-1, (c.head_mv, 16)).flatten(-3, -2)]
        if self.has_odd:
            h_odd = h_odd.unflatten(-1, (c.head_odd, NUM_V_COMPONENTS_PER_ODD))
            # odd * odd -> even; points have grades 3-4 only, so 25 component pairs suffice
            parts.append(geometric_product_of_parts(q_odd[..., POINT_START:], h_odd, POINT_START).flatten(-3, -2))
        return self.out(torch.cat(parts, -2), h_s.flatten(-2))


# ---------------------------------------------------------------------------------------------
# Block


class GATrBlock(nn.Module):
    """Pre-norm block: x + attention(norm(x)), then x + MLP(norm(x)) with MLP = bilinear, gated GELU, linear."""

    def __init__(self, config: BlockConfig) -> None:
        super().__init__()
        self.config = config
        self.norm = EquiLayerNorm()
        self.attention = GeometricAttention(config.attention())
        bilinear = config.bilinear()
        self.bilinear = GeometricBilinear(bilinear)
        self.mlp_out = EquiLinear(bilinear.out_mv, config.mv_channels, bilinear.out_s, config.s_channels, gain=0.1)

    def forward(self, mv: torch.Tensor, s: torch.Tensor, layout: BlockLayout, odd: torch.Tensor | None = None,
                reference: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Packed tokens mv (N, C, 16), s (N, S) attending within the blocks of `layout` -> same shapes."""
        h_mv, h_s = self.norm(mv, s)
        h_mv, h_s = self.attention(h_mv, h_s, layout, odd=odd)
        mv, s = mv + h_mv, s + h_s
        h_mv, h_s = self.norm(mv, s)
        h_mv, h_s = self.bilinear(h_mv, h_s, odd=odd, reference=reference)
        h_mv, h_s = gated_gelu(h_mv, h_s)
        h_mv, h_s = self.mlp_out(h_mv, h_s)
        return mv + h_mv, s + h_s
