"""GATr for the rigid-body task: config and sizes, the face embedding, the network, its counts.

Read top to bottom: `FaceEmbedding` (the only task-specific part: faces, floor); `GATr` (linear
in, blocks alternating object-local and global attention over the packed faces of a batch, linear
out, per-object rigid fit); `num_params` / `flops_per_step` beside the model. Its config and sizes
(`GATrConfig`, `GATR_SIZES`) live in the torch-free `configs.py`, its analytic counts in `counts.py`.

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

import torch
from torch import nn

from eqscale.algebra import embed_oriented_plane, embed_point, extract_vector, signed_distance_to_plane
from eqscale.data.batch import face_corners, face_scene
from eqscale.models.attention import batch_layouts
from eqscale.models.configs import (
    GATR_EVEN_CHANNELS, GATR_ODD_CHANNELS, GATR_OUT_CHANNELS, GATR_SCALAR_CHANNELS, GATrConfig,
)
from eqscale.models.counts import BatchStructure, config_num_params, config_step_flops
from eqscale.models.layers_equivariant import EquiLinear, GATrBlock
from eqscale.models.rigidity import rigid_prediction

# ---------------------------------------------------------------------------------------------
# Task embedding


class FaceEmbedding(nn.Module):
    """One token per face: parity-even multivectors, invariant scalars, parity-odd corner points.

    even (7):   floor plane; per corner at t, the plane through it normal to its velocity (t minus
                t-1) and the plane through it normal to its outgoing edge
    scalars (12): signed height above the floor of the 6 corners (t-1, t), corner speeds, edge lengths
    odd (6):    the corners at t and t-1 as points
    """

    EVEN_CHANNELS = GATR_EVEN_CHANNELS
    SCALAR_CHANNELS = GATR_SCALAR_CHANNELS
    ODD_CHANNELS = GATR_ODD_CHANNELS

    def forward(self, corners_prev: torch.Tensor, corners_curr: torch.Tensor,
                floor_plane: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """corners (F, 3, 3) and floor planes (F, 16) -> even (F, 7, 16), scalars (F, 12), odd (F, 6, 16)."""
        floor = floor_plane[:, None, :]  # broadcast over corners
        velocity = corners_curr - corners_prev
        edges = corners_curr.roll(-1, dims=1) - corners_curr
        # planes normal to a vector carry it in their (translation-invariant) vector part
        even = torch.cat([floor, embed_oriented_plane(velocity, corners_curr),
                          embed_oriented_plane(edges, corners_curr)], -2)
        heights = signed_distance_to_plane(floor, torch.cat([corners_curr, corners_prev], 1))
        scalars = torch.cat([heights, velocity.norm(dim=-1), edges.norm(dim=-1)], -1)
        odd = embed_point(torch.cat([corners_curr, corners_prev], 1))
        return even, scalars, odd


# ---------------------------------------------------------------------------------------------
# Network


class GATr(nn.Module):
    """Geometric algebra transformer: packed batch -> predicted vertex positions at t+h (V, 3)."""

    def __init__(self, config: GATrConfig) -> None:
        super().__init__()
        self.config = config
        self.embedding = FaceEmbedding()
        self.linear_in = EquiLinear(GATR_EVEN_CHANNELS, config.mv_channels, GATR_SCALAR_CHANNELS, config.s_channels)
        self.blocks = nn.ModuleList(GATrBlock(config.block()) for _ in range(config.num_blocks))
        # one output multivector per corner; small so training starts near "no motion"
        self.linear_out = EquiLinear(config.mv_channels, GATR_OUT_CHANNELS, config.s_channels, 0, gain=0.1)
        normal = torch.tensor(config.floor_normal)
        floor = embed_oriented_plane(normal, -config.floor_offset * normal / normal.square().sum())
        self.register_buffer("floor_plane", floor, persistent=False)

    def predict_corners(self, batch: dict[str, torch.Tensor], floor_plane: torch.Tensor | None = None) -> torch.Tensor:
        """Predicted positions (F, 3, 3) of every face's corners at t+h, before the rigid fit."""
        corners_prev = face_corners(batch, "vertices_prev")
        corners_curr = face_corners(batch, "vertices_curr")
        floor = (self.floor_plane if floor_plane is None else floor_plane).to(corners_curr.dtype)
        if floor.dim() == 2:  # one plane per scene
            floor = floor[face_scene(batch)]
        floor = floor.expand(corners_curr.shape[0], 16)
        even, scalars, odd = self.embedding(corners_prev, corners_curr, floor)
        mv, s = self.linear_in(even, scalars)
        local, global_ = batch_layouts(batch)
        for i, block in enumerate(self.blocks):
            mv, s = block(mv, s, local if i % 2 == 0 else global_, odd=odd)
        out, _ = self.linear_out(mv, s)
        # residual over constant-velocity extrapolation (one frame ahead; an affine combination of
        # points, so exactly equivariant): the network learns accelerations, not ballistic motion
        return 2 * corners_curr - corners_prev + extract_vector(out)

    def forward(self, batch: dict[str, torch.Tensor], floor_plane: torch.Tensor | None = None) -> torch.Tensor:
        """Predicted vertices (V, 3); floor_plane (16,) or one per scene (B, 16) overrides the configured floor."""
        return rigid_prediction(batch, self.predict_corners(batch, floor_plane))

    # -- counts -----------------------------------------------------------------------------

    def num_params(self) -> int:
        """Trainable parameters (analytic, `counts.py`; the tests check it against the modules)."""
        return config_num_params(self.config)

    def flops_per_step(self, structure: BatchStructure) -> dict:
        """Analytic forward+backward FLOPs of a training step on a batch of this structure (see counts.py)."""
        return config_step_flops(self.config, structure)
