"""Synthetic rigid scenes, packed by the package's own collate (`eqscale.data.batch.collate_scenes`).

Objects are small closed meshes (tetrahedra, octahedra, boxes) moving rigidly: each gets a random
pose at t-1, a random small rigid motion to t, and the same motion repeated to t+h. Test-only: the
pipeline's data comes from the simulator.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from eqscale.data.batch import POSITION_KEYS, collate_scenes

_TETRA_V = [[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]]
_TETRA_F = [[0, 1, 2], [0, 3, 1], [0, 2, 3], [1, 3, 2]]
_OCTA_V = [[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]]
_OCTA_F = [[0, 2, 4], [2, 1, 4], [1, 3, 4], [3, 0, 4], [2, 0, 5], [1, 2, 5], [3, 1, 5], [0, 3, 5]]
_BOX_V = [[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)]
_BOX_F = [[0, 1, 3], [0, 3, 2], [4, 6, 7], [4, 7, 5], [0, 4, 5], [0, 5, 1],
          [2, 3, 7], [2, 7, 6], [0, 2, 6], [0, 6, 4], [1, 5, 7], [1, 7, 3]]
SHAPES = [(_TETRA_V, _TETRA_F), (_OCTA_V, _OCTA_F), (_BOX_V, _BOX_F)]


def _rotation(axis_angle: torch.Tensor) -> torch.Tensor:
    angle = axis_angle.norm()
    if angle < 1e-12:
        return torch.eye(3, dtype=axis_angle.dtype)
    k = axis_angle / angle
    kx = torch.tensor([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]], dtype=axis_angle.dtype)
    return torch.eye(3, dtype=axis_angle.dtype) + math.sin(angle) * kx + (1 - math.cos(angle)) * kx @ kx


def random_rigid_scenes(batch_size: int = 2, min_objects: int = 2, max_objects: int = 4, seed: int = 0,
                        dtype=torch.float64, speed: float = 0.3) -> list[dict]:
    """Per-sample arrays (`eqscale.data.batch.pack_samples` input) of random rigid scenes."""
    gen = torch.Generator().manual_seed(seed)
    scenes = []
    for i in range(batch_size):
        n_obj = int(torch.randint(min_objects, max_objects + 1, (1,), generator=gen))
        parts = {key: [] for key in ("vertices_prev", "vertices_curr", "vertices_target", "vertex_object", "faces",
                                     "face_object")}
        offset = 0
        for k in range(n_obj):
            shape_v, shape_f = SHAPES[int(torch.randint(len(SHAPES), (1,), generator=gen))]
            canon = torch.tensor(shape_v, dtype=dtype) * (0.3 + 0.4 * torch.rand(3, generator=gen, dtype=dtype))
            r0 = _rotation(torch.randn(3, generator=gen, dtype=dtype) * 2)
            c0 = torch.randn(3, generator=gen, dtype=dtype) * 2 + torch.tensor([0, 0, 2.0], dtype=dtype)
            dr = _rotation(torch.randn(3, generator=gen, dtype=dtype) * speed)
            dc = torch.randn(3, generator=gen, dtype=dtype) * speed
            x_prev = canon @ r0.T + c0
            x_curr = (x_prev - c0) @ dr.T + c0 + dc
            x_tgt = (x_curr - c0 - dc) @ dr.T + c0 + 2 * dc
            for key, value in (("vertices_prev", x_prev), ("vertices_curr", x_curr), ("vertices_target", x_tgt)):
                parts[key].append(value.numpy())
            parts["vertex_object"].append(np.full(len(shape_v), k))
            parts["faces"].append(np.asarray(shape_f) + offset)
            parts["face_object"].append(np.full(len(shape_f), k))
            offset += len(shape_v)
        scene = {key: np.concatenate(value) for key, value in parts.items()}
        scene.update(num_objects=n_obj, sample=i, in_contact=False, floor_contact=False)
        scenes.append(scene)
    return scenes


def random_rigid_scene_batch(batch_size: int = 2, min_objects: int = 2, max_objects: int = 4, seed: int = 0,
                             dtype=torch.float64, speed: float = 0.3) -> dict[str, torch.Tensor]:
    """A packed batch of random rigid scenes (see eqscale.data.batch for the layout)."""
    return collate_scenes(random_rigid_scenes(batch_size, min_objects, max_objects, seed, dtype, speed))


def scene_of(batch: dict[str, torch.Tensor], i: int) -> dict[str, torch.Tensor]:
    """Scene i of a packed batch as a batch of its own (offsets and indices rebased)."""
    f0, f1 = (int(x) for x in batch["scene_offsets"][i : i + 2])
    v0, v1 = (int(x) for x in batch["scene_vertex_offsets"][i : i + 2])
    objects = (batch["object_scene"] == i).nonzero()[:, 0]
    k0, k1 = int(objects[0]), int(objects[-1]) + 1
    out = {key: batch[key][v0:v1] for key in POSITION_KEYS}
    out["vertex_object"] = batch["vertex_object"][v0:v1] - k0
    out["faces"] = batch["faces"][f0:f1] - v0
    out["face_object"] = batch["face_object"][f0:f1] - k0
    out["object_scene"] = torch.zeros(k1 - k0, dtype=torch.long)
    out["object_offsets"] = batch["object_offsets"][k0 : k1 + 1] - f0
    out["scene_offsets"] = torch.tensor([0, f1 - f0])
    out["scene_vertex_offsets"] = torch.tensor([0, v1 - v0])
    for key in ("sample", "in_contact", "floor_contact"):
        out[key] = batch[key][i : i + 1]
    return out
