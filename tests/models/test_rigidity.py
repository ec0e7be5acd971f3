"""Per-object rigid fits on packed batches: exactness, proper rotations, E(3) equivariance, gradients."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from eqscale import symmetry
from eqscale.data.batch import act_on_batch, act_on_vertices, face_corners, face_scene
from eqscale.models.rigidity import apply_object_motion, rigid_motion_from_corners, rigid_prediction
from eqscale.symmetry import assert_equivariant, random_group
from helpers.scenes import random_rigid_scene_batch

GEN = torch.Generator().manual_seed(5)


def _icosahedron() -> tuple[torch.Tensor, torch.Tensor]:
    phi = (1 + math.sqrt(5)) / 2
    verts = []
    for s1, s2 in itertools.product((-1.0, 1.0), repeat=2):
        verts += [(0.0, s1, s2 * phi), (s1, s2 * phi, 0.0), (s2 * phi, 0.0, s1)]
    verts = torch.tensor(verts, dtype=torch.float64)
    dist = torch.cdist(verts, verts)
    faces = [f for f in itertools.combinations(range(12), 3)
             if all(abs(dist[i, j] - 2.0) < 1e-9 for i, j in itertools.combinations(f, 2))]
    assert len(faces) == 20
    return verts, torch.tensor(faces)


def _kabsch_svd(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    ac, bc = a - a.mean(0), b - b.mean(0)
    u, _, vh = torch.linalg.svd(ac.T @ bc)
    d = torch.sign(torch.linalg.det(vh.T @ u.T))
    return vh.T @ torch.diag(torch.stack([torch.ones_like(d), torch.ones_like(d), d])) @ u.T


def _corners_moved(corners, rot, shift):
    return corners @ rot.transpose(-1, -2) + shift


def test_recovers_exact_motion_of_every_object():
    batch = random_rigid_scene_batch(batch_size=3, min_objects=2, max_objects=4, seed=1)
    pred = rigid_prediction(batch, face_corners(batch, "vertices_target"))
    assert (pred - batch["vertices_target"]).abs().max() < 1e-10


def test_matches_svd_kabsch_on_noisy_predictions():
    curr = torch.randn(7, 3, 3, generator=GEN, dtype=torch.float64)
    rot = symmetry.random_orthogonal(1, GEN, reflections=False)[0]
    pred = _corners_moved(curr, rot, torch.randn(3, generator=GEN, dtype=torch.float64))
    pred = pred + 0.05 * torch.randn(pred.shape, generator=GEN, dtype=torch.float64)
    r, t = rigid_motion_from_corners(curr, pred, torch.zeros(7, dtype=torch.long), 1)
    torch.testing.assert_close(r[0], _kabsch_svd(curr.reshape(-1, 3), pred.reshape(-1, 3)), rtol=0, atol=1e-12)


def test_mirrored_prediction_still_gives_a_proper_rotation():
    curr = torch.randn(6, 3, 3, generator=GEN, dtype=torch.float64)
    pred = curr * torch.tensor([-1.0, 1.0, 1.0], dtype=torch.float64)
    r, _ = rigid_motion_from_corners(curr, pred, torch.zeros(6, dtype=torch.long), 1)
    assert torch.linalg.det(r[0]) == pytest.approx(1.0, abs=1e-12)
    torch.testing.assert_close(r[0] @ r[0].T, torch.eye(3, dtype=torch.float64))


def test_objects_without_faces_get_the_identity_and_finite_gradients():
    batch = random_rigid_scene_batch(batch_size=2, min_objects=1, max_objects=3, seed=2)
    corners = face_corners(batch, "vertices_target").requires_grad_(True)
    num_objects = batch["object_scene"].shape[0] + 2  # two objects that no face belongs to
    r, t = rigid_motion_from_corners(face_corners(batch, "vertices_curr"), corners, batch["face_object"], num_objects)
    torch.testing.assert_close(r[-2:], torch.eye(3, dtype=torch.float64).expand(2, 3, 3))
    assert t[-2:].abs().max() == 0
    (r.sum() + t.sum()).backward()
    assert torch.isfinite(corners.grad).all()


@pytest.mark.parametrize("kind", ["e3", "problem"])
def test_rigid_motion_is_equivariant_including_reflections(kind):
    batch = random_rigid_scene_batch(batch_size=4, min_objects=2, max_objects=3, seed=3)
    curr = face_corners(batch, "vertices_curr")
    pred = face_corners(batch, "vertices_target") + 0.1 * torch.randn(curr.shape, generator=GEN, dtype=torch.float64)
    k = batch["object_scene"].shape[0]
    group = random_group(4, seed=4, kind=kind)  # one element per scene
    assert group.odd.any()
    per_face = face_scene(batch)

    def on_faces(g, corners):
        return symmetry.act_points(g.take(per_face), corners)

    def on_objects(g, motion):
        return symmetry.act_rigid_motion(g.take(batch["object_scene"]), motion)

    def fit(c, p):
        return rigid_motion_from_corners(c, p, batch["face_object"], k)

    assert_equivariant(fit, (curr, pred), (on_faces, on_faces), on_objects, group=group, rtol=1e-12)
    assert_equivariant(rigid_prediction, (batch, pred), (act_on_batch, on_faces), act_on_vertices(batch), group=group,
                       rtol=1e-12)


def _icosahedron_inputs():
    verts, faces = _icosahedron()
    corners = verts[faces]  # (20, 3, 3): a perfectly isotropic point set
    return corners, torch.zeros(20, dtype=torch.long)


def test_gradients_are_finite_and_correct_for_an_isotropic_object():
    corners, face_object = _icosahedron_inputs()
    # its cross-covariance with itself is a multiple of the identity: triple singular value
    a = corners.reshape(-1, 3)
    torch.testing.assert_close(a.T @ a, (a.T @ a)[0, 0] * torch.eye(3, dtype=torch.float64))
    weights = torch.randn(3, 3, generator=GEN, dtype=torch.float64)

    def loss(pred):
        r, t = rigid_motion_from_corners(corners, pred, face_object, 1)
        return (r[0] * weights).sum() + t.sum()

    pred = corners.clone().requires_grad_(True)
    loss(pred).backward()
    assert torch.isfinite(pred.grad).all() and pred.grad.abs().max() > 0
    # and they are the true derivative, also exactly at the isotropic configuration
    assert torch.autograd.gradcheck(loss, (corners.clone().requires_grad_(True),), eps=1e-6, atol=1e-7)
    rot = symmetry.random_orthogonal(1, GEN, reflections=False)[0]
    moved = _corners_moved(corners, rot, torch.ones(3, dtype=torch.float64))
    assert torch.autograd.gradcheck(loss, (moved.requires_grad_(True),), eps=1e-6, atol=1e-7)


def test_apply_object_motion_moves_each_point_with_its_object():
    rot = symmetry.random_orthogonal(2, GEN, reflections=False)
    shift = torch.randn(2, 3, generator=GEN, dtype=torch.float64)
    points = torch.randn(5, 3, generator=GEN, dtype=torch.float64)
    owner = torch.tensor([0, 1, 1, 0, 1])
    moved = apply_object_motion(rot, shift, points, owner)
    for v in range(5):
        k = int(owner[v])
        torch.testing.assert_close(moved[v], rot[k] @ points[v] + shift[k])
