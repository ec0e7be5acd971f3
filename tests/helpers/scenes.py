"""Synthetic rigid scenes in the batch layout of `eqscale.data.batch`, for model tests.

Objects are small closed meshes (tetrahedra, octahedra, boxes) moving rigidly: each gets a random
pose at t-1, a random small rigid motion to t, and the same motion repeated to t+h. Test-only: the
pipeline's data comes from the simulator.
"""

from __future__ import annotations

import math

import torch

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


def random_rigid_scene_batch(batch_size: int = 2, min_objects: int = 2, max_objects: int = 4,
                             seed: int = 0, dtype=torch.float64, speed: float = 0.3) -> dict[str, torch.Tensor]:
    """A padded batch of random rigid scenes (see eqscale.data.batch for the layout)."""
    gen = torch.Generator().manual_seed(seed)
    scenes = []
    for _ in range(batch_size):
        n_obj = int(torch.randint(min_objects, max_objects + 1, (1,), generator=gen))
        verts_prev, verts_curr, verts_tgt, v_obj, faces, f_obj = [], [], [], [], [], []
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
            verts_prev.append(x_prev)
            verts_curr.append(x_curr)
            verts_tgt.append(x_tgt)
            v_obj.append(torch.full((len(shape_v),), k))
            faces.append(torch.tensor(shape_f) + offset)
            f_obj.append(torch.full((len(shape_f),), k))
            offset += len(shape_v)
        scenes.append(dict(prev=torch.cat(verts_prev), curr=torch.cat(verts_curr), tgt=torch.cat(verts_tgt),
                           v_obj=torch.cat(v_obj), faces=torch.cat(faces), f_obj=torch.cat(f_obj), k=n_obj))
    v_max = max(len(s["prev"]) for s in scenes)
    f_max = max(len(s["faces"]) for s in scenes)
    k_max = max(s["k"] for s in scenes)
    out = {
        "vertices_prev": torch.zeros(batch_size, v_max, 3, dtype=dtype),
        "vertices_curr": torch.zeros(batch_size, v_max, 3, dtype=dtype),
        "vertices_target": torch.zeros(batch_size, v_max, 3, dtype=dtype),
        "vertex_object": torch.zeros(batch_size, v_max, dtype=torch.long),
        "vertex_mask": torch.zeros(batch_size, v_max, dtype=torch.bool),
        "faces": torch.zeros(batch_size, f_max, 3, dtype=torch.long),
        "face_object": torch.zeros(batch_size, f_max, dtype=torch.long),
        "face_mask": torch.zeros(batch_size, f_max, dtype=torch.bool),
        "object_mask": torch.zeros(batch_size, k_max, dtype=torch.bool),
    }
    for i, s in enumerate(scenes):
        nv, nf = len(s["prev"]), len(s["faces"])
        out["vertices_prev"][i, :nv] = s["prev"]
        out["vertices_curr"][i, :nv] = s["curr"]
        out["vertices_target"][i, :nv] = s["tgt"]
        out["vertex_object"][i, :nv] = s["v_obj"]
        out["vertex_mask"][i, :nv] = True
        out["faces"][i, :nf] = s["faces"]
        out["face_object"][i, :nf] = s["f_obj"]
        out["face_mask"][i, :nf] = True
        out["object_mask"][i, : s["k"]] = True
    return out
