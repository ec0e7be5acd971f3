"""The baseline: a plain pre-LayerNorm transformer over mesh faces, with the same rigid readout as GATr.

Read top to bottom: `FaceFourierEmbedding` (one token per face from its corners at t-1 and t);
`MultiQueryAttention` and `Block`; `Transformer` (embed, blocks alternating object-local and global
attention over the packed faces of a batch, per-corner displacement head, per-object rigid fit);
`num_params` / `flops_per_step` beside the model. Its config and sizes (`TransformerConfig`,
`TRANSFORMER_SIZES`) live in the torch-free `configs.py`, its analytic counts in `counts.py`.

No symmetry is built in: coordinates enter through random Fourier features, so the network has to
learn (or be shown by augmentation) that physics does not depend on where or how a scene is
oriented. Only the readout is shared with GATr: per-face predicted corners at t+h, turned into one
rigid motion per object by `rigidity.rigid_prediction`, so every object's prediction is exactly rigid.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from eqscale.data.batch import face_corners
from eqscale.models.attention import BlockLayout, batch_layouts, block_attention
from eqscale.models.configs import TRANSFORMER_OUT_FEATURES, TransformerConfig
from eqscale.models.counts import BatchStructure, config_num_params, config_step_flops
from eqscale.models.rigidity import rigid_prediction

# ---------------------------------------------------------------------------------------------
# Embedding


class FaceFourierEmbedding(nn.Module):
    """One token (F, width) per face from random Fourier features of its six corner points.

    Features per face: sin and cos of 2 pi x . b for every corner x (t and t-1) and every column b
    of a fixed Gaussian matrix (3, rff_frequencies), plus the raw corners at t and their velocities,
    so linear functions of position (constant-velocity motion) stay easy to express.
    """

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(config.rff_seed)
        # drawn on the CPU from its own seed (same matrix on every device), then moved to the
        # device the module is being built on
        frequencies = config.rff_scale * torch.randn(3, config.rff_frequencies, generator=gen, device="cpu")
        self.register_buffer("frequencies", frequencies.to(torch.get_default_device()))
        self.linear = nn.Linear(config.embedding_features, config.width)

    def forward(self, corners_prev: torch.Tensor, corners_curr: torch.Tensor) -> torch.Tensor:
        """corners (F, 3, 3) at t-1 and t -> tokens (F, width)."""
        return self.linear(self.features(corners_prev, corners_curr))

    def features(self, corners_prev: torch.Tensor, corners_curr: torch.Tensor) -> torch.Tensor:
        """corners (F, 3, 3) at t-1 and t -> input features (F, embedding_features), float32 or wider."""
        f = corners_curr.shape[0]
        work = torch.promote_types(corners_curr.dtype, torch.float32)
        # phases of metre-scale coordinates need more than bf16's 8 bits: keep them out of autocast
        with torch.autocast(device_type=corners_curr.device.type, enabled=False):
            points = torch.cat([corners_curr, corners_prev], 1).to(work)  # (F, 6, 3)
            phase = 2 * math.pi * (points @ self.frequencies.to(work))  # (F, 6, m)
            velocity = corners_curr.to(work) - corners_prev.to(work)
            return torch.cat([phase.sin().reshape(f, -1), phase.cos().reshape(f, -1),
                              corners_curr.to(work).reshape(f, 9), velocity.reshape(f, 9)], -1)


# ---------------------------------------------------------------------------------------------
# Blocks


class MultiQueryAttention(nn.Module):
    """Self-attention with `num_heads` query heads and one shared key/value head (`attention.block_attention`)."""

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        self.num_heads = config.num_heads
        self.head_dim = config.head_dim
        self.padded_head_dim = config.padded_head_dim
        # all query heads, then the shared key and value, from one GEMM
        self.qkv = nn.Linear(config.width, (config.num_heads + 2) * config.head_dim)
        self.out = nn.Linear(config.num_heads * config.head_dim, config.width)

    def forward(self, x: torch.Tensor, layout: BlockLayout) -> torch.Tensor:
        """Packed tokens x (N, width) attending within the blocks of `layout` -> (N, width)."""
        h, d = self.num_heads, self.head_dim
        qkv = self.qkv(x).unflatten(-1, (h + 2, d))  # (N, H+2, d)
        pad = self.padded_head_dim - d
        if pad:
            qkv = F.pad(qkv, (0, pad))  # zeros change neither the logits nor the (cut) outputs
        # splits, not slices: a split's backward is one concatenation, a slice's zero-fills the whole input
        q, k, v = qkv.split([h, 1, 1], 1)
        out = block_attention(q, k.squeeze(1), v.squeeze(1), layout, scale=1.0 / math.sqrt(d))
        if pad:
            out, _ = out.split([d, pad], -1)
        return self.out(out.reshape(x.shape[0], h * d))


class Block(nn.Module):
    """Pre-LN transformer block: x + attention(LN x), then x + MLP(LN x)."""

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        self.norm_attention = nn.LayerNorm(config.width)
        self.attention = MultiQueryAttention(config)
        self.norm_mlp = nn.LayerNorm(config.width)
        self.mlp = nn.Sequential(nn.Linear(config.width, config.mlp_factor * config.width), nn.GELU(),
                                 nn.Linear(config.mlp_factor * config.width, config.width))

    def forward(self, x: torch.Tensor, layout: BlockLayout) -> torch.Tensor:
        """Packed tokens x (N, width) attending within the blocks of `layout` -> (N, width)."""
        x = x + self.attention(self.norm_attention(x), layout)
        return x + self.mlp(self.norm_mlp(x))


# ---------------------------------------------------------------------------------------------
# Network


class Transformer(nn.Module):
    """Plain transformer baseline: packed batch -> predicted vertex positions at t+h (V, 3)."""

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        self.config = config
        self.embedding = FaceFourierEmbedding(config)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.num_blocks))
        self.norm_out = nn.LayerNorm(config.width)
        self.linear_out = nn.Linear(config.width, TRANSFORMER_OUT_FEATURES)  # a displacement per corner
        with torch.no_grad():
            self.linear_out.weight.mul_(config.output_gain)
            self.linear_out.bias.zero_()

    def predict_corners(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Predicted positions (F, 3, 3) of every face's corners at t+h, before the rigid fit."""
        corners_prev = face_corners(batch, "vertices_prev")
        corners_curr = face_corners(batch, "vertices_curr")
        x = self.embedding(corners_prev, corners_curr)
        local, global_ = batch_layouts(batch)
        for i, block in enumerate(self.blocks):
            x = block(x, local if i % 2 == 0 else global_)
        displacement = self.linear_out(self.norm_out(x)).unflatten(-1, (3, 3))
        # residual over constant-velocity extrapolation (one frame ahead): the network learns the
        # accelerations (gravity, contacts) instead of re-deriving ballistic motion
        return 2 * corners_curr - corners_prev + displacement.to(corners_curr.dtype)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Predicted vertices (V, 3): each object's vertices at t moved by one fitted rigid motion."""
        return rigid_prediction(batch, self.predict_corners(batch))

    # -- counts -----------------------------------------------------------------------------

    def num_params(self) -> int:
        """Trainable parameters (analytic, `counts.py`; the tests check it against the modules)."""
        return config_num_params(self.config)

    def flops_per_step(self, structure: BatchStructure) -> dict:
        """Analytic forward+backward FLOPs of a training step on a batch of this structure (see counts.py)."""
        return config_step_flops(self.config, structure)
