"""The batch every model consumes: scenes at (t-1, t) with targets at t+h, packed back to back without padding.

B scenes with K objects, F faces and V vertices in total. Faces are ordered by object, objects by
scene, scenes in batch order (vertices likewise), so every object and every scene is one contiguous
block of faces, given by cu_seqlens-style offsets. Positions are world-frame metres, z up, floor
at z = 0. Indices are int64, global over the batch.

    vertices_prev          (V, 3)   float  vertex positions at frame t-1
    vertices_curr          (V, 3)   float  vertex positions at frame t
    vertices_target        (V, 3)   float  vertex positions at frame t+h (what the model predicts)
    vertex_object          (V,)     long   object of each vertex
    faces                  (F, 3)   long   vertex indices of each face's corners; each face is one token
    face_object            (F,)     long   object of each face (non-decreasing)
    object_scene           (K,)     long   scene of each object (non-decreasing)
    object_offsets         (K+1,)   long   object k owns faces object_offsets[k]:object_offsets[k+1]
    scene_offsets          (B+1,)   long   scene b owns faces scene_offsets[b]:scene_offsets[b+1]
    scene_vertex_offsets   (B+1,)   long   scene b owns vertices scene_vertex_offsets[b]:...[b+1]
    in_contact             (B,)     bool   two objects of the scene touch in a frame of t-1 .. t+h
    floor_contact          (B,)     bool   an object touches the floor in a frame of t-1 .. t+h
    sample                 (B,)     long   index of the sample in its split (TokenDataset numbering)

The scene of a vertex or face is object_scene[vertex_object] / object_scene[face_object]
(`vertex_scene`, `face_scene`). A model maps a batch to predicted target positions (V, 3). The
loss and the test metric are the mean squared error over all vertices and coordinates of the batch
(`vertex_mse`); `per_scene_squared_error` splits its numerator and denominator by scene.

`collate_scenes` builds a batch from per-sample arrays (what `TokenDataset` returns); the tests
build their synthetic scenes through it too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from eqscale.models.counts import BatchStructure
from eqscale.symmetry import GroupElement, Transform, act_points, apply_to_points, equivariance_error

POSITION_KEYS = ("vertices_prev", "vertices_curr", "vertices_target")
INDEX_KEYS = ("vertex_object", "faces", "face_object", "object_scene", "object_offsets", "scene_offsets",
              "scene_vertex_offsets", "sample")
FLAG_KEYS = ("in_contact", "floor_contact")
BATCH_KEYS = POSITION_KEYS + INDEX_KEYS + FLAG_KEYS
SAMPLE_KEYS = POSITION_KEYS + ("vertex_object", "faces", "face_object", "num_objects", "sample") + FLAG_KEYS


# ---------------------------------------------------------------------------------------------
# Building batches


def _starts(counts: Sequence[int]) -> np.ndarray:
    return np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)


def pack_samples(samples: Sequence[dict]) -> dict[str, np.ndarray]:
    """Per-sample arrays -> the packed batch as numpy arrays (positions keep their dtype).

    A sample holds vertices_prev/curr/target (V_i, 3), vertex_object (V_i,) and face_object (F_i,)
    local object numbers 0..num_objects-1, faces (F_i, 3) local vertex indices, num_objects, and
    sample, in_contact, floor_contact.
    """
    if not samples:
        raise ValueError("cannot collate an empty list of samples")
    missing = [k for k in SAMPLE_KEYS if k not in samples[0]]
    if missing:
        raise ValueError(f"a sample is missing keys {missing}")
    vertex_starts = _starts([len(s["vertices_curr"]) for s in samples])
    object_starts = _starts([s["num_objects"] for s in samples])
    out = {key: np.concatenate([s[key] for s in samples]) for key in POSITION_KEYS}
    out["vertex_object"] = np.concatenate([np.asarray(s["vertex_object"], np.int64) + o
                                           for s, o in zip(samples, object_starts)])
    out["faces"] = np.concatenate([np.asarray(s["faces"], np.int64) + v for s, v in zip(samples, vertex_starts)])
    face_object = [np.asarray(s["face_object"], np.int64) for s in samples]
    for s, local in zip(samples, face_object):
        if len(local) and (np.any(np.diff(local) < 0) or local[0] != 0 or local[-1] != s["num_objects"] - 1):
            raise ValueError(f"sample {s['sample']}: faces must be ordered by object, every object 0.."
                             f"{s['num_objects'] - 1} owning at least one face")
    out["face_object"] = np.concatenate([local + o for local, o in zip(face_object, object_starts)])
    object_faces = np.concatenate([np.bincount(local, minlength=s["num_objects"])
                                   for s, local in zip(samples, face_object)])
    out["object_scene"] = np.repeat(np.arange(len(samples), dtype=np.int64), [s["num_objects"] for s in samples])
    out["object_offsets"] = _starts(object_faces)
    out["scene_offsets"] = _starts([len(s["faces"]) for s in samples])
    out["scene_vertex_offsets"] = vertex_starts
    out["sample"] = np.array([s["sample"] for s in samples], dtype=np.int64)
    for key in FLAG_KEYS:
        out[key] = np.array([bool(s[key]) for s in samples], dtype=bool)
    return out


def to_torch(batch: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """numpy batch -> tensors (sharing memory)."""
    return {key: torch.from_numpy(value) for key, value in batch.items()}


def collate_scenes(samples: Sequence[dict]) -> dict[str, torch.Tensor]:
    """Per-sample arrays (see `pack_samples`) -> a packed batch of tensors."""
    return to_torch(pack_samples(samples))


def validate_batch(batch: dict[str, torch.Tensor]) -> None:
    """Raise ValueError when a batch does not follow the layout above."""
    missing = [k for k in BATCH_KEYS if k not in batch]
    if missing:
        raise ValueError(f"batch is missing keys {missing}")
    v = batch["vertices_curr"].shape[0]
    f = batch["faces"].shape[0]
    k = batch["object_scene"].shape[0]
    b = batch["scene_offsets"].shape[0] - 1
    expected = {"vertices_prev": (v, 3), "vertices_curr": (v, 3), "vertices_target": (v, 3), "vertex_object": (v,),
                "faces": (f, 3), "face_object": (f,), "object_offsets": (k + 1,), "scene_vertex_offsets": (b + 1,),
                "in_contact": (b,), "floor_contact": (b,), "sample": (b,)}
    for key, shape in expected.items():
        if tuple(batch[key].shape) != shape:
            raise ValueError(f"batch[{key!r}] has shape {tuple(batch[key].shape)}, expected {shape}")
    for key, total in (("object_offsets", f), ("scene_offsets", f), ("scene_vertex_offsets", v)):
        offsets = batch[key]
        if int(offsets[0]) != 0 or int(offsets[-1]) != total or bool((offsets.diff() < 0).any()):
            raise ValueError(f"batch[{key!r}] must run from 0 to {total} without decreasing")
    object_faces = batch["object_offsets"].diff()
    if not torch.equal(batch["face_object"], torch.repeat_interleave(torch.arange(k, device=object_faces.device),
                                                                     object_faces)):
        raise ValueError("batch['face_object'] does not match batch['object_offsets'] (faces ordered by object)")
    scene_faces = batch["scene_offsets"].diff()
    if not torch.equal(face_scene(batch), torch.repeat_interleave(torch.arange(b, device=scene_faces.device),
                                                                  scene_faces)):
        raise ValueError("batch['object_scene'] does not match batch['scene_offsets'] (objects ordered by scene)")


# ---------------------------------------------------------------------------------------------
# Reading batches


def vertex_scene(batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Scene of every vertex (V,)."""
    return batch["object_scene"][batch["vertex_object"]]


def face_scene(batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Scene of every face (F,)."""
    return batch["object_scene"][batch["face_object"]]


def num_scenes(batch: dict[str, torch.Tensor]) -> int:
    """B, the number of scenes."""
    return batch["scene_offsets"].shape[0] - 1


def face_corners(batch: dict[str, torch.Tensor], key: str) -> torch.Tensor:
    """Positions (F, 3 corners, 3) of every face's corners, gathered from batch[key] (V, 3)."""
    return batch[key][batch["faces"]]


def batch_structure(batch: dict[str, torch.Tensor]) -> BatchStructure:
    """The totals that decide a batch's cost (`eqscale.models.counts.step_flops`)."""
    object_faces = batch["object_offsets"].diff().tolist()
    scene_faces = batch["scene_offsets"].diff().tolist()
    return BatchStructure(tokens=sum(scene_faces), scene_tokens_sq=sum(n * n for n in scene_faces),
                          object_tokens_sq=sum(n * n for n in object_faces), objects=len(object_faces),
                          scenes=len(scene_faces))


def vertex_mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error over every vertex and coordinate of the batch (the training loss and test metric)."""
    return (pred - target).square().mean()


def per_scene_squared_error(pred: torch.Tensor, target: torch.Tensor,
                            batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """(sum of squared errors (B,), number of values (B,)) per scene: sq_sum / n_values is its MSE."""
    squared = (pred - target).square().sum(-1)
    b = num_scenes(batch)
    sq_sum = squared.new_zeros(b).index_add_(0, vertex_scene(batch), squared)
    n_values = 3 * batch["scene_vertex_offsets"].diff()
    return sq_sum, n_values


# ---------------------------------------------------------------------------------------------
# Symmetry on batches


def transform_batch(batch: dict[str, torch.Tensor], transform: GroupElement | Transform) -> dict[str, torch.Tensor]:
    """The batch with every position of scene b (both input frames and the target) moved by element b."""
    if isinstance(transform, GroupElement):
        transform = transform.transform
    q, t = transform
    index = vertex_scene(batch)
    per_vertex = (q[index], t[index])
    out = dict(batch)
    for key in POSITION_KEYS:
        out[key] = apply_to_points(per_vertex, batch[key])
    return out


def act_on_batch(group: GroupElement, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The group action on a batch (element b on scene b), as `symmetry.equivariance_error` takes it."""
    return transform_batch(batch, group)


def act_on_vertices(batch: dict[str, torch.Tensor]) -> Callable[[GroupElement, torch.Tensor], torch.Tensor]:
    """The group action on per-vertex points (V, 3) of `batch` (element b on the vertices of scene b)."""
    index = vertex_scene(batch)
    return lambda group, points: act_points(group.take(index), points)


def prediction_equivariance_error(predict: Callable[[dict], torch.Tensor], batch: dict[str, torch.Tensor],
                                  group: GroupElement) -> float:
    """`symmetry.equivariance_error` of a batch -> vertices model, relative to the motion it predicts.

    sqrt(sum |f(g.x) - g.f(x)|^2 / sum |f(x) - x_t|^2) over every vertex: the evaluation's number.
    """
    return equivariance_error(predict, (batch,), (act_on_batch,), act_on_vertices(batch), group,
                              baseline=lambda b: b["vertices_curr"])
