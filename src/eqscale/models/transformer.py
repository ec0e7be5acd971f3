"""The baseline: a plain pre-LayerNorm transformer over mesh faces, with the same rigid readout as GATr.

Read top to bottom: `TransformerConfig` and `TRANSFORMER_SIZES`; `FaceFourierEmbedding` (one token
per face from its corners at t-1 and t); `MultiQueryAttention` and `Block`; `Transformer` (embed,
blocks alternating object-local and global attention, per-corner displacement head, per-object
rigid fit); `num_params` / `flops_per_step` beside the model.

No symmetry is built in: coordinates enter through random Fourier features, so the network has to
learn (or be shown by augmentation) that physics does not depend on where or how a scene is
oriented. Only the readout is shared with GATr: per-face predicted corners at t+h, turned into one
rigid motion per object by `rigidity.rigid_prediction`, so every object's prediction is exactly rigid.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from eqscale.data.batch import face_corners
from eqscale.models.flops import attention_flops, dense_flops
from eqscale.models.rigidity import rigid_prediction, rigidity_flops

POINTS_PER_FACE = 6  # three corners at t and three at t-1
RAW_FEATURES = 18  # corners at t and their velocities (t minus t-1), 9 numbers each


@dataclass(frozen=True)
class TransformerConfig:
    """Width, depth and heads of the transformer, and its Fourier-feature embedding."""

    width: int
    num_blocks: int
    num_heads: int
    mlp_factor: int = 4
    rff_frequencies: int = 16  # random frequencies per corner point (each gives a sin and a cos)
    rff_scale: float = 1.0  # std of the frequencies in cycles per metre: objects are ~1 m across
    rff_seed: int = 0  # the frequency matrix is fixed by this seed, not by the global RNG
    output_gain: float = 0.1  # small initial displacements: training starts near "no motion"

    def __post_init__(self) -> None:
        if self.width % self.num_heads:
            raise ValueError(f"TransformerConfig: width {self.width} is not divisible by num_heads {self.num_heads}")

    @property
    def head_dim(self) -> int:
        """Width of one query head (and of the shared key/value head)."""
        return self.width // self.num_heads

    @property
    def padded_head_dim(self) -> int:
        """Head width rounded up to a multiple of 8, what the fused attention kernels prefer."""
        return -(-self.head_dim // 8) * 8

    @property
    def embedding_features(self) -> int:
        """Inputs of the embedding's linear layer per face: sin and cos features plus raw numbers."""
        return POINTS_PER_FACE * 2 * self.rff_frequencies + RAW_FEATURES


# Spans ~600x in parameters (about 3e4 to 2e7). Heads are 32 wide (16 for xxs): CPU fused
# attention at the same FLOPs takes ~3x longer with 8-wide heads than with 16, ~4x than with 32.
TRANSFORMER_SIZES: dict[str, TransformerConfig] = {
    "xxs": TransformerConfig(width=32, num_blocks=2, num_heads=2),
    "xs": TransformerConfig(width=64, num_blocks=4, num_heads=2),
    "s": TransformerConfig(width=128, num_blocks=4, num_heads=4),
    "m": TransformerConfig(width=192, num_blocks=6, num_heads=6),
    "l": TransformerConfig(width=256, num_blocks=8, num_heads=8),
    "xl": TransformerConfig(width=384, num_blocks=12, num_heads=12),
}


def transformer_config(name: str) -> TransformerConfig:
    """The named size preset; KeyError lists the valid names."""
    if name not in TRANSFORMER_SIZES:
        raise KeyError(f"unknown transformer size {name!r} (valid: {', '.join(TRANSFORMER_SIZES)})")
    return TRANSFORMER_SIZES[name]


# ---------------------------------------------------------------------------------------------
# Embedding


class FaceFourierEmbedding(nn.Module):
    """One token (B, F, width) per face from random Fourier features of its six corner points.

    Features per face: sin and cos of 2 pi x . b for every corner x (t and t-1) and every column b
    of a fixed Gaussian matrix (3, rff_frequencies), plus the raw corners at t and their velocities,
    so linear functions of position (constant-velocity motion) stay easy to express.
    """

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(config.rff_seed)
        # drawn on the CPU from its own seed (same matrix on every device), then moved where the
        # module is being built (the registry builds on "meta" to count)
        frequencies = config.rff_scale * torch.randn(3, config.rff_frequencies, generator=gen, device="cpu")
        self.register_buffer("frequencies", frequencies.to(torch.get_default_device()))
        self.linear = nn.Linear(config.embedding_features, config.width)

    def forward(self, corners_prev: torch.Tensor, corners_curr: torch.Tensor) -> torch.Tensor:
        """corners (B, F, 3, 3) at t-1 and t -> tokens (B, F, width)."""
        return self.linear(self.features(corners_prev, corners_curr))

    def features(self, corners_prev: torch.Tensor, corners_curr: torch.Tensor) -> torch.Tensor:
        """corners (B, F, 3, 3) at t-1 and t -> input features (B, F, embedding_features), float32 or wider."""
        b, f = corners_curr.shape[:2]
        work = torch.promote_types(corners_curr.dtype, torch.float32)
        # phases of metre-scale coordinates need more than bf16's 8 bits: keep them out of autocast
        with torch.autocast(device_type=corners_curr.device.type, enabled=False):
            points = torch.cat([corners_curr, corners_prev], 2).to(work)  # (B, F, 6, 3)
            phase = 2 * math.pi * (points @ self.frequencies.to(work))  # (B, F, 6, m)
            velocity = corners_curr.to(work) - corners_prev.to(work)
            return torch.cat([phase.sin().reshape(b, f, -1), phase.cos().reshape(b, f, -1),
                              corners_curr.to(work).reshape(b, f, 9), velocity.reshape(b, f, 9)], -1)


def attention_masks(face_object: torch.Tensor, face_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(object-local, global) bool masks (B, 1, F, F), True = may attend; shared by all heads.

    Local: real faces of the same object; global: all real faces. Every token may also attend to
    itself, so padded rows are never empty (no NaN), and no real token ever attends to padding.
    """
    real = face_mask[:, :, None] & face_mask[:, None, :]
    self_only = torch.eye(face_mask.shape[1], dtype=torch.bool, device=face_mask.device)
    local = (real & (face_object[:, :, None] == face_object[:, None, :])) | self_only
    return local[:, None], (real | self_only)[:, None]


def additive_mask(mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Bool mask (True = may attend) -> 0 / -inf in `dtype` (SDPA would convert a bool mask on every call)."""
    return torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill_(~mask, float("-inf"))


# ---------------------------------------------------------------------------------------------
# Blocks


class MultiQueryAttention(nn.Module):
    """Self-attention with `num_heads` query heads and one shared key/value head (SDPA, GQA mode)."""

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        self.num_heads = config.num_heads
        self.head_dim = config.head_dim
        self.padded_head_dim = config.padded_head_dim
        # all query heads, then the shared key and value, from one GEMM
        self.qkv = nn.Linear(config.width, (config.num_heads + 2) * config.head_dim)
        self.out = nn.Linear(config.num_heads * config.head_dim, config.width)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x (B, N, width), mask (B, 1, N, N): bool (True = may attend) or additive -> (B, N, width)."""
        b, n, _ = x.shape
        h, d = self.num_heads, self.head_dim
        qkv = self.qkv(x).unflatten(-1, (h + 2, d)).transpose(1, 2)  # (B, H+2, N, d)
        pad = self.padded_head_dim - d
        if pad:
            qkv = F.pad(qkv, (0, pad))  # zeros change neither the logits nor the (cut) outputs
        q, k, v = qkv[:, :h], qkv[:, h : h + 1], qkv[:, h + 1 :]
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=1.0 / math.sqrt(d), enable_gqa=True)
        return self.out(out[..., :d].transpose(1, 2).reshape(b, n, h * d))


class Block(nn.Module):
    """Pre-LN transformer block: x + attention(LN x), then x + MLP(LN x)."""

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        self.norm_attention = nn.LayerNorm(config.width)
        self.attention = MultiQueryAttention(config)
        self.norm_mlp = nn.LayerNorm(config.width)
        self.mlp = nn.Sequential(nn.Linear(config.width, config.mlp_factor * config.width), nn.GELU(),
                                 nn.Linear(config.mlp_factor * config.width, config.width))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x (B, N, width), mask (B, 1, N, N) as for `MultiQueryAttention` -> (B, N, width)."""
        x = x + self.attention(self.norm_attention(x), mask)
        return x + self.mlp(self.norm_mlp(x))


# ---------------------------------------------------------------------------------------------
# Network


class Transformer(nn.Module):
    """Plain transformer baseline: batch dict -> predicted vertex positions at t+h (B, V, 3)."""

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        self.config = config
        self.embedding = FaceFourierEmbedding(config)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.num_blocks))
        self.norm_out = nn.LayerNorm(config.width)
        self.linear_out = nn.Linear(config.width, 9)  # a displacement per corner
        with torch.no_grad():
            self.linear_out.weight.mul_(config.output_gain)
            self.linear_out.bias.zero_()

    def predict_corners(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Predicted positions (B, F, 3, 3) of every face's corners at t+h, before the rigid fit."""
        corners_prev = face_corners(batch, "vertices_prev")
        corners_curr = face_corners(batch, "vertices_curr")
        x = self.embedding(corners_prev, corners_curr)
        device = x.device.type
        # SDPA wants an additive mask in the dtype of q: the autocast dtype when autocast is on
        dtype = torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else x.dtype
        local, global_ = (additive_mask(m, dtype) for m in attention_masks(batch["face_object"], batch["face_mask"]))
        for i, block in enumerate(self.blocks):
            x = block(x, local if i % 2 == 0 else global_)
        displacement = self.linear_out(self.norm_out(x)).unflatten(-1, (3, 3))
        # residual over constant-velocity extrapolation (one frame ahead): the network learns the
        # accelerations (gravity, contacts) instead of re-deriving ballistic motion
        return 2 * corners_curr - corners_prev + displacement.to(corners_curr.dtype)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Predicted vertices (B, V, 3): each object's vertices at t moved by one fitted rigid motion."""
        return rigid_prediction(batch, self.predict_corners(batch))

    # -- counts -----------------------------------------------------------------------------

    def num_params(self) -> int:
        """Trainable parameters."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def flops_per_step(self, batch_size: int, num_faces: int, num_objects: int = 10) -> int:
        """Analytic forward+backward FLOPs for B scenes padded to `num_faces` face tokens (see flops.py)."""
        return transformer_flops(self.config, batch_size, num_faces, num_objects)

    def flops_per_token(self, num_faces: int) -> float:
        """Forward+backward FLOPs per face token in scenes of `num_faces` tokens."""
        return self.flops_per_step(1, num_faces) / num_faces


def transformer_flops(config: TransformerConfig, batch_size: int, num_faces: int, num_objects: int = 10) -> int:
    """Analytic forward+backward FLOPs of `Transformer` (matrix products, as FlopCounterMode counts them)."""
    tokens = batch_size * num_faces
    c = config
    # the frequency projection is a constant on a constant input: forward only
    fourier = 2 * tokens * POINTS_PER_FACE * 3 * c.rff_frequencies
    embed = dense_flops(tokens, c.embedding_features, c.width, input_grad=False)
    per_block = (
        dense_flops(tokens, c.width, (c.num_heads + 2) * c.head_dim)
        + attention_flops(batch_size, c.num_heads, num_faces, num_faces, c.padded_head_dim)
        + dense_flops(tokens, c.num_heads * c.head_dim, c.width)
        + dense_flops(tokens, c.width, c.mlp_factor * c.width)
        + dense_flops(tokens, c.mlp_factor * c.width, c.width)
    )
    head = dense_flops(tokens, c.width, 9)
    return int(fourier + embed + c.num_blocks * per_block + head
               + rigidity_flops(batch_size, num_faces, num_objects))
