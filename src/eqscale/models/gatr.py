"""GATr for the rigid-body task: config and sizes, the face embedding, the network, its counts.

Read top to bottom: `GATrConfig` and `GATR_SIZES`; `FaceEmbedding` (the only task-specific
part: faces, floor); `GATr` (linear in, blocks alternating object-local and global attention,
linear out, per-object rigid fit); `num_params` / `flops_per_step` beside the model.

Symmetry. Everything is Pin(3,0,1)-equivariant, and the only symmetry-breaking input is the floor
plane (default: z = 0, normal +z, set in `GATrConfig`; no axis is hard-coded elsewhere). Pass a
floor plane to `forward` and transform it together with the scene, and the prediction is
exactly E(3)-equivariant, reflections included; keep it fixed and the prediction is equivariant
under the problem group (rotations about the floor normal, translations along the floor,
mirrors in vertical planes).

Reflections need one departure from the reference GATr: a point embedded with e123 = 1 is
parity-odd (see `layers_equivariant`), so face corners are not mixed into the residual stream.
The stream is parity-even (floor plane; planes through each corner normal to its velocity and
to its edge; invariant scalars), and the corners themselves form a fixed parity-odd input that
every block reads in its attention (distances between points, attended points relative to the
query's) and in its joins. The output is a displacement per corner, read from the vector part
(e1, e2, e3) of one output multivector per corner: the components without e0 are the only
linear readout that translations leave alone for a general multivector (`extract_vector`). It
is added to the current corners; `rigidity` turns the corners into one rigid motion per object.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from eqscale.algebra import (
    embed_oriented_plane,
    embed_point,
    extract_vector,
    signed_distance_to_plane,
)
from eqscale.data.batch import face_corners
from eqscale.models.flops import attention_flops, dense_flops, table_bilinear_flops
from eqscale.models.layers_equivariant import (
    NUM_V_COMPONENTS_PER_ODD,
    BlockConfig,
    EquiLinear,
    GATrBlock,
    additive_attention_mask,
)
from eqscale.models.rigidity import rigid_prediction, rigidity_flops


@dataclass(frozen=True)
class GATrConfig:
    """Widths (multivector and scalar channels of the residual stream), depth and heads of GATr."""

    mv_channels: int
    s_channels: int
    num_blocks: int
    num_heads: int = 8
    head_odd: int = 1  # parity-odd (point) channels per attention head
    hidden_factor: int = 2
    floor_normal: tuple[float, float, float] = (0.0, 0.0, 1.0)  # the batch layout: z up, floor at z = 0
    floor_offset: float = 0.0  # d in n . x + d = 0
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    def block(self) -> BlockConfig:
        """Config of every block."""
        return BlockConfig(self.mv_channels, self.s_channels, self.num_heads, odd_channels=FaceEmbedding.ODD_CHANNELS,
                           head_odd=self.head_odd, hidden_factor=self.hidden_factor)


GATR_SIZES: dict[str, GATrConfig] = {
    "xxs": GATrConfig(mv_channels=4, s_channels=8, num_blocks=2, num_heads=4),
    "xs": GATrConfig(mv_channels=8, s_channels=16, num_blocks=4),
    "s": GATrConfig(mv_channels=16, s_channels=32, num_blocks=4),
    "m": GATrConfig(mv_channels=16, s_channels=64, num_blocks=8),
    "l": GATrConfig(mv_channels=32, s_channels=64, num_blocks=8),
    "xl": GATrConfig(mv_channels=48, s_channels=128, num_blocks=12),
}


def gatr_config(name: str) -> GATrConfig:
    """The named size preset; KeyError lists the valid names."""
    if name not in GATR_SIZES:
        raise KeyError(f"unknown GATr size {name!r} (valid: {', '.join(GATR_SIZES)})")
    return GATR_SIZES[name]


# ---------------------------------------------------------------------------------------------
# Task embedding


class FaceEmbedding(nn.Module):
    """One token per face: parity-even multivectors, invariant scalars, parity-odd corner points.

    even (7):   floor plane; per corner at t, the plane through it normal to its velocity (t minus
                t-1) and the plane through it normal to its outgoing edge
    scalars (12): signed height above the floor of the 6 corners (t-1, t), corner speeds, edge lengths
    odd (6):    the corners at t and t-1 as points
    """

    EVEN_CHANNELS = 7
    SCALAR_CHANNELS = 12
    ODD_CHANNELS = 6

    def forward(self, corners_prev: torch.Tensor, corners_curr: torch.Tensor,
                floor_plane: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """corners (B, F, 3, 3) and floor_plane (B, 16) -> even (B,F,7,16), scalars (B,F,12), odd (B,F,6,16)."""
        floor = floor_plane[:, None, None, :]  # broadcast over faces and corners
        velocity = corners_curr - corners_prev
        edges = corners_curr.roll(-1, dims=2) - corners_curr
        # planes normal to a vector carry it in their (translation-invariant) vector part
        even = torch.cat([
            floor.expand(*corners_curr.shape[:2], 1, 16),
            embed_oriented_plane(velocity, corners_curr),
            embed_oriented_plane(edges, corners_curr),
        ], -2)
        heights = signed_distance_to_plane(floor, torch.cat([corners_curr, corners_prev], 2))
        scalars = torch.cat([heights, velocity.norm(dim=-1), edges.norm(dim=-1)], -1)
        odd = embed_point(torch.cat([corners_curr, corners_prev], 2))
        return even, scalars, odd


def attention_masks(face_object: torch.Tensor, face_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(object-local, global) bool masks (B, F, F): real faces of the same object / all real faces.

    Every token may attend to itself, so padded rows are never empty (no NaN in their outputs).
    """
    real = face_mask[:, :, None] & face_mask[:, None, :]
    self_only = torch.eye(face_mask.shape[1], dtype=torch.bool, device=face_mask.device)
    local = (real & (face_object[:, :, None] == face_object[:, None, :])) | self_only
    return local, real | self_only


# ---------------------------------------------------------------------------------------------
# Network


class GATr(nn.Module):
    """Geometric algebra transformer: batch dict -> predicted vertex positions at t+h (B, V, 3)."""

    def __init__(self, config: GATrConfig) -> None:
        super().__init__()
        self.config = config
        self.embedding = FaceEmbedding()
        self.linear_in = EquiLinear(FaceEmbedding.EVEN_CHANNELS, config.mv_channels,
                                    FaceEmbedding.SCALAR_CHANNELS, config.s_channels)
        self.blocks = nn.ModuleList(GATrBlock(config.block()) for _ in range(config.num_blocks))
        # one output multivector per corner; small so training starts near "no motion"
        self.linear_out = EquiLinear(config.mv_channels, 3, config.s_channels, 0, gain=0.1)
        normal = torch.tensor(config.floor_normal)
        self.register_buffer("floor_plane", embed_oriented_plane(normal, -config.floor_offset * normal / normal.square().sum()),
                             persistent=False)

    def predict_corners(self, batch: dict[str, torch.Tensor], floor_plane: torch.Tensor | None = None) -> torch.Tensor:
        """Predicted positions (B, F, 3, 3) of every face's corners at t+h, before the rigid fit."""
        corners_prev = face_corners(batch, "vertices_prev")
        corners_curr = face_corners(batch, "vertices_curr")
        b = corners_curr.shape[0]
        floor = self.floor_plane if floor_plane is None else floor_plane
        floor = floor.to(corners_curr.dtype).expand(b, 16)
        even, scalars, odd = self.embedding(corners_prev, corners_curr, floor)
        mv, s = self.linear_in(even, scalars)
        # additive masks, built once for all blocks
        local, global_ = (additive_attention_mask(m, mv.dtype)
                          for m in attention_masks(batch["face_object"], batch["face_mask"]))
        for i, block in enumerate(self.blocks):
            mv, s = block(mv, s, mask=local if i % 2 == 0 else global_, odd=odd)
        out, _ = self.linear_out(mv, s)
        # residual over constant-velocity extrapolation (one frame ahead; an affine combination of
        # points, so exactly equivariant): the network learns accelerations, not ballistic motion
        return 2 * corners_curr - corners_prev + extract_vector(out)

    def forward(self, batch: dict[str, torch.Tensor], floor_plane: torch.Tensor | None = None) -> torch.Tensor:
        """Predicted vertices (B, V, 3); floor_plane (16,) or (B, 16) overrides the configured floor."""
        return rigid_prediction(batch, self.predict_corners(batch, floor_plane))

    # -- counts -----------------------------------------------------------------------------

    def num_params(self) -> int:
        """Trainable parameters."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def flops_per_step(self, batch_size: int, num_faces: int, num_objects: int = 10) -> int:
        """Analytic forward+backward FLOPs for B scenes padded to `num_faces` face tokens (see flops.py)."""
        return gatr_flops(self.config, batch_size, num_faces, num_objects)

    def flops_per_token(self, num_faces: int) -> float:
        """Forward+backward FLOPs per face token in scenes of `num_faces` tokens."""
        return self.flops_per_step(1, num_faces) / num_faces


def _equilinear_flops(tokens: int, in_mv: int, out_mv: int, in_s: int = 0, out_s: int = 0,
                      input_grad: bool = True) -> int:
    # the packed dense GEMM, plus assembling its matrix from the 9 basis coefficients (per step)
    gemm = dense_flops(tokens, in_mv * 16 + in_s, out_mv * 16 + out_s, input_grad=input_grad)
    assemble = 2 * 2 * out_mv * in_mv * 9 * 256
    return gemm + assemble


def gatr_flops(config: GATrConfig, batch_size: int, num_faces: int, num_objects: int = 10) -> int:
    """Analytic forward+backward FLOPs of `GATr` (matrix products, as FlopCounterMode counts them)."""
    tokens = batch_size * num_faces
    block = config.block()
    att, bil = block.attention(), block.bilinear()
    heads, odd = att.num_heads, block.odd_channels
    per_block = (
        _equilinear_flops(tokens, att.mv_channels, (heads + 2) * att.head_mv, att.s_channels, (heads + 2) * att.head_s)
        + _equilinear_flops(tokens, odd, (heads + 2) * att.head_odd, input_grad=False)
        + attention_flops(batch_size, heads, num_faces, num_faces, att.padded_width)
        + table_bilinear_flops(tokens * heads * att.head_odd, pairs=NUM_V_COMPONENTS_PER_ODD ** 2)
        + _equilinear_flops(tokens, heads * (att.head_mv + att.head_odd), att.mv_channels, heads * att.head_s,
                            att.s_channels)
        + _equilinear_flops(tokens, bil.in_mv, 2 * bil.gp_channels + bil.join_channels, bil.in_s, 0)
        + _equilinear_flops(tokens, odd, bil.join_channels, input_grad=False)
        + table_bilinear_flops(tokens * bil.gp_channels, "gp")
        + table_bilinear_flops(tokens * bil.join_channels, "join")
        + _equilinear_flops(tokens, bil.gp_channels + bil.join_channels, bil.out_mv, bil.in_s, bil.out_s)
        + _equilinear_flops(tokens, bil.out_mv, config.mv_channels, bil.out_s, config.s_channels)
    )
    return int(
        _equilinear_flops(tokens, FaceEmbedding.EVEN_CHANNELS, config.mv_channels, FaceEmbedding.SCALAR_CHANNELS,
                          config.s_channels, input_grad=False)
        + config.num_blocks * per_block
        + _equilinear_flops(tokens, config.mv_channels, 3, config.s_channels, 0)
        + rigidity_flops(batch_size, num_faces, num_objects)
    )
