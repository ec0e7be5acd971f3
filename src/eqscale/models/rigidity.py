"""One rigid motion per object from per-face corner predictions (shared by GATr and the transformer).

Per object, the least-squares proper rigid motion x -> R x + t mapping the current corners of
its faces onto the predicted corners (Kabsch / absolute orientation), solved with Horn's
unit-quaternion method: R comes from the top eigenvector of a symmetric 4x4 matrix built from
the 3x3 cross-covariance. Why not an SVD: the SVD backward divides by differences of singular
values, which are equal for isotropic objects (a sphere, a cube's corners) and give inf/NaN;
the optimal rotation only depends on the *top* eigenvalue of Horn's matrix, which stays simple
in those cases, so our backward uses only the gaps to the top eigenvalue (clamped, so an
ambiguous fit gives large but finite gradients). The result is a proper rotation (det +1) and
exactly E(3)-equivariant: under x -> Q x + s (det Q = +-1) the motion becomes
(Q R Q^T, Q t + s - Q R Q^T s). Objects without faces get the identity.
"""

from __future__ import annotations

import torch

from eqscale.data.batch import face_corners

_GAP_RTOL = 1e-6  # relative floor on eigenvalue gaps in the backward


class _TopEigenvector(torch.autograd.Function):
    """Unit eigenvector (..., 4) of the largest eigenvalue of symmetric matrices (..., 4, 4)."""

    @staticmethod
    def forward(ctx, sym: torch.Tensor) -> torch.Tensor:
        evals, evecs = torch.linalg.eigh(sym)
        ctx.save_for_backward(evals, evecs)
        return evecs[..., -1]

    @staticmethod
    def backward(ctx, grad_top: torch.Tensor) -> torch.Tensor:
        evals, evecs = ctx.saved_tensors
        top = evecs[..., -1]
        scale = evals.abs().amax(-1, keepdim=True)
        gaps = (evals[..., -1:] - evals[..., :-1]).clamp_min(_GAP_RTOL * scale + torch.finfo(evals.dtype).tiny)
        # d top = sum_{j != top} v_j (v_j^T dS top) / (lambda_top - lambda_j)
        coeffs = (evecs[..., :-1] * grad_top[..., :, None]).sum(-2) / gaps  # (..., 3)
        grad = (evecs[..., :-1] * coeffs[..., None, :]).sum(-1)[..., :, None] * top[..., None, :]
        return 0.5 * (grad + grad.transpose(-1, -2))


def _horn_matrix(cov: torch.Tensor) -> torch.Tensor:
    """Horn's symmetric 4x4 matrix of the cross-covariance S = sum a b^T (source a, target b)."""
    sxx, sxy, sxz = cov[..., 0, 0], cov[..., 0, 1], cov[..., 0, 2]
    syx, syy, syz = cov[..., 1, 0], cov[..., 1, 1], cov[..., 1, 2]
    szx, szy, szz = cov[..., 2, 0], cov[..., 2, 1], cov[..., 2, 2]
    rows = [
        [sxx + syy + szz, syz - szy, szx - sxz, sxy - syx],
        [syz - szy, sxx - syy - szz, sxy + syx, szx + sxz],
        [szx - sxz, sxy + syx, -sxx + syy - szz, syz + szy],
        [sxy - syx, szx + sxz, syz + szy, -sxx - syy + szz],
    ]
    return torch.stack([torch.stack(r, -1) for r in rows], -2)


def _rotation_from_quaternion(q: torch.Tensor) -> torch.Tensor:
    w, x, y, z = q.unbind(-1)
    rows = [
        [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
    ]
    return torch.stack([torch.stack(r, -1) for r in rows], -2)


def rigid_motion_from_corners(corners_curr: torch.Tensor, corners_pred: torch.Tensor, face_object: torch.Tensor,
                              num_objects: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per object the least-squares rigid motion (R (K,3,3), t (K,3)) taking corners_curr to corners_pred.

    corners_* (F, 3, 3) face corners of a packed batch; face_object (F,) object of each face.
    The 3x3 arithmetic is elementwise (no bmm of tiny matrices): cheaper, and not counted as FLOPs.
    """
    out_dtype = corners_pred.dtype
    # eigh has no half-precision kernels, and the fit is cheap: always solve in float32 or better
    work = torch.promote_types(out_dtype, torch.float32)
    with torch.autocast(device_type=corners_pred.device.type, enabled=False):
        curr, pred = corners_curr.to(work), corners_pred.to(work)
        counts = 3.0 * torch.bincount(face_object, minlength=num_objects).to(work)  # corners per object
        denom = counts.clamp_min(1.0)
        centre_curr = curr.new_zeros(num_objects, 3).index_add(0, face_object, curr.sum(1)) / denom[:, None]
        centre_pred = pred.new_zeros(num_objects, 3).index_add(0, face_object, pred.sum(1)) / denom[:, None]
        a = curr - centre_curr[face_object][:, None]  # (F, 3, 3)
        b = pred - centre_pred[face_object][:, None]
        outer = (a[..., :, None] * b[..., None, :]).sum(1)  # (F, 3, 3): sum over corners of a b^T
        cov = pred.new_zeros(num_objects, 3, 3).index_add(0, face_object, outer) / denom[:, None, None]
        quaternion = _TopEigenvector.apply(_horn_matrix(cov))
        rotation = _rotation_from_quaternion(quaternion)
        empty = counts == 0
        eye = torch.eye(3, dtype=work, device=rotation.device).expand_as(rotation)
        rotation = torch.where(empty[:, None, None], eye, rotation)
        translation = centre_pred - (rotation * centre_curr[:, None, :]).sum(-1)
        translation = torch.where(empty[:, None], torch.zeros_like(translation), translation)
    return rotation.to(out_dtype), translation.to(out_dtype)


def apply_object_motion(rotation: torch.Tensor, translation: torch.Tensor, points: torch.Tensor,
                        point_object: torch.Tensor) -> torch.Tensor:
    """Move points (V, 3) by their object's motion (R (K,3,3), t (K,3)); point_object (V,)."""
    rot = rotation[point_object].to(points.dtype)  # (V, 3, 3)
    return (rot * points[:, None, :]).sum(-1) + translation[point_object].to(points.dtype)


def rigid_prediction(batch: dict[str, torch.Tensor], corners_pred: torch.Tensor) -> torch.Tensor:
    """Predicted vertices (V, 3): each object's vertices at t moved by its fitted rigid motion."""
    corners_curr = face_corners(batch, "vertices_curr")
    rotation, translation = rigid_motion_from_corners(corners_curr, corners_pred, batch["face_object"],
                                                      batch["object_scene"].shape[0])
    return apply_object_motion(rotation, translation, batch["vertices_curr"], batch["vertex_object"])
