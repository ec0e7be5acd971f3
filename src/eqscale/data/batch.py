"""The batch every model consumes: a padded set of scenes at (t-1, t) with targets at t+h.

All tensors are batch-first; B scenes, V vertex slots, F face slots, K object slots (padded to
the largest scene in the batch). Positions are world-frame metres, z up, floor at z = 0.

    vertices_prev   (B, V, 3) float   vertex positions at frame t-1
    vertices_curr   (B, V, 3) float   vertex positions at frame t
    vertices_target (B, V, 3) float   vertex positions at frame t+h (what the model predicts)
    vertex_object   (B, V)    long    object slot of each vertex (0 on padding)
    vertex_mask     (B, V)    bool    True for real vertices
    faces           (B, F, 3) long    vertex indices (into V of the same scene) of each face; 0 on padding
    face_object     (B, F)    long    object slot of each face (0 on padding)
    face_mask       (B, F)    bool    True for real faces; each real face is one token
    object_mask     (B, K)    bool    True for real objects

A model maps a batch to predicted target positions (B, V, 3); padded entries are ignored. The loss
is the mean squared error over real vertices (mean over vertices and the 3 coordinates).
"""

from __future__ import annotations

import torch

POSITION_KEYS = ("vertices_prev", "vertices_curr", "vertices_target")
BATCH_KEYS = POSITION_KEYS + ("vertex_object", "vertex_mask", "faces", "face_object", "face_mask", "object_mask")


def validate_batch(batch: dict[str, torch.Tensor]) -> None:
    """Raise ValueError when a batch does not follow the layout above."""
    missing = [k for k in BATCH_KEYS if k not in batch]
    if missing:
        raise ValueError(f"batch is missing keys {missing}")
    b, v, _ = batch["vertices_curr"].shape
    f = batch["faces"].shape[1]
    k = batch["object_mask"].shape[1]
    expected = {
        "vertices_prev": (b, v, 3), "vertices_target": (b, v, 3), "vertex_object": (b, v),
        "vertex_mask": (b, v), "faces": (b, f, 3), "face_object": (b, f), "face_mask": (b, f),
        "object_mask": (b, k),
    }
    for key, shape in expected.items():
        if tuple(batch[key].shape) != shape:
            raise ValueError(f"batch[{key!r}] has shape {tuple(batch[key].shape)}, expected {shape}")


def face_corners(batch: dict[str, torch.Tensor], key: str) -> torch.Tensor:
    """Positions (B, F, 3 corners, 3) of every face's corners, gathered from batch[key] (B, V, 3)."""
    points = batch[key]
    faces = batch["faces"]
    b, f, _ = faces.shape
    idx = faces.reshape(b, f * 3, 1).expand(-1, -1, 3)
    return torch.gather(points, 1, idx).reshape(b, f, 3, 3)


def masked_vertex_mse(pred: torch.Tensor, target: torch.Tensor, vertex_mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error over real vertices and coordinates (the training loss and test metric)."""
    mask = vertex_mask.to(pred.dtype).unsqueeze(-1)
    return ((pred - target) ** 2 * mask).sum() / (mask.sum() * 3).clamp_min(1.0)
