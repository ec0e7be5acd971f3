"""Inertia: the URDFs state the solid's exact principal moments and axes as plain numbers, and PyBullet simulates with
them (its own estimate is the collision shape's bounding box), checked on real shards and by torque-free rotation."""

import tarfile
import xml.etree.ElementTree as ET

import numpy as np
import pybullet as pb
import pytest
import trimesh
from scipy.spatial.transform import Rotation

from eqscale.physics.assets import load_manifest, read_meshes, rpy_matrix
from eqscale.physics.pybullet_view import SharedClient, mesh_frame_xyzw, principal_frame_xyzw, set_exact_inertia
from eqscale.physics.raw_format import open_raw_shard, read_trajectory


def _inertial(urdf_text):
    inertial = ET.fromstring(urdf_text).find("link/inertial")
    rpy = np.array([float(v) for v in inertial.find("origin").get("rpy").split()])
    inertia = inertial.find("inertia")
    moments = np.array([float(inertia.get(k)) for k in ("ixx", "iyy", "izz")])
    assert all(float(inertia.get(k)) == 0.0 for k in ("ixy", "ixz", "iyz"))
    return float(inertial.find("mass").get("value")), moments, rpy


def _urdf_text(asset_dir, name):
    with tarfile.open(asset_dir / f"{name}.tar.gz") as tar:
        return tar.extractfile("object.urdf").read().decode()


def test_urdf_states_the_exact_inertia_as_plain_numbers(asset_dir):
    meshes = read_meshes(asset_dir)
    manifest = load_manifest(asset_dir)
    for name, (vertices, faces) in meshes.items():
        text = _urdf_text(asset_dir, name)
        assert "np." not in text and "float64" not in text
        mass, moments, rpy = _inertial(text)  # float() of every attribute: what PyBullet's parser needs too
        mesh = trimesh.Trimesh(vertices, faces, process=False)
        assert mass == pytest.approx(mesh.volume, rel=1e-12)
        axes = rpy_matrix(rpy)
        np.testing.assert_allclose(axes @ np.diag(moments) @ axes.T, mesh.moment_inertia, rtol=0, atol=1e-12)
        np.testing.assert_allclose(manifest["assets"][name]["metadata"]["principal_moments"], moments, rtol=1e-12)


def test_simulated_bodies_have_the_solids_moments(raw_shards, asset_dir):
    meshes = read_meshes(asset_dir)
    exact = {name: np.sort(np.linalg.eigvalsh(trimesh.Trimesh(v, f, process=False).moment_inertia))
             for name, (v, f) in meshes.items()}
    volume = {name: trimesh.Trimesh(v, f, process=False).volume for name, (v, f) in meshes.items()}
    checked = 0
    with open_raw_shard(raw_shards[0]) as fh:
        for key in fh["trajectories"]:
            t = read_trajectory(fh["trajectories"][key], raw_shards[0])
            for asset, scale, mass, diag in zip(t["asset_ids"], t["scales"], t["masses"], t["inertia_diagonal"]):
                density = mass / (volume[asset] * scale**3)
                np.testing.assert_allclose(np.sort(diag), exact[asset] * density * scale**5, rtol=1e-9)
                checked += 1
    assert checked >= 10


@pytest.mark.parametrize("exact_inertia", [True, False])
def test_torque_free_rotation_conserves_the_solids_angular_momentum(asset_dir, tmp_path, exact_inertia):
    """A tumbling spot (no gravity, no contacts) keeps L = R I R^T w with I its exact tensor: only if PyBullet
    simulates with that tensor, principal axes included. With PyBullet's box estimate L drifts (the test's teeth)."""
    name, scale, density = "spot", 1.2, 2.7
    with tarfile.open(asset_dir / f"{name}.tar.gz") as tar:
        tar.extractall(tmp_path, filter="data")
    vertices, faces = read_meshes(asset_dir)[name]
    mesh = trimesh.Trimesh(vertices, faces, process=False)
    meta = load_manifest(asset_dir)["assets"][name]["metadata"]
    mass = density * mesh.volume * scale**3
    tensor = np.asarray(mesh.moment_inertia) * density * scale**5  # body frame, kg m^2
    client = SharedClient()
    try:
        cid = client._client
        pb.setGravity(0, 0, 0, physicsClientId=cid)
        body = client.loadURDF(str(tmp_path / "object.urdf"), globalScaling=scale, useMaximalCoordinates=True)
        pb.changeDynamics(body, -1, mass=mass, linearDamping=0, angularDamping=0, physicsClientId=cid)  # as Kubric
        if exact_inertia:
            set_exact_inertia(cid, body, meta["principal_moments"], meta["volume"], mass, scale)
        pb.resetBaseVelocity(body, [0, 0, 0], [1.0, 2.0, 3.0], physicsClientId=cid)

        principal = principal_frame_xyzw(meta["principal_axes_rpy"])

        def momentum():
            _, quat = pb.getBasePositionAndOrientation(body, physicsClientId=cid)
            _, omega = pb.getBaseVelocity(body, physicsClientId=cid)
            rot = Rotation.from_quat(mesh_frame_xyzw(np.array(quat), principal)).as_matrix()  # the mesh's frame
            return rot @ tensor @ rot.T @ np.asarray(omega)

        start = momentum()
        drift = 0.0
        for _ in range(4):
            for _ in range(120):
                pb.stepSimulation(physicsClientId=cid)
            drift = max(drift, np.linalg.norm(momentum() - start) / np.linalg.norm(start))
    finally:
        client.close()
    if exact_inertia:
        assert drift < 0.01, drift
    else:
        assert drift > 0.05, drift  # the box estimate is a different body: the check above would catch it


def test_recorded_orientation_is_the_mesh_frame(asset_dir, tmp_path):
    """PyBullet reports a body's base in its principal-axes frame: converted back, the canonical mesh posed with the
    recorded orientation lies on PyBullet's own collision geometry (probed with a tiny sphere at its vertices)."""
    name = "spot"
    with tarfile.open(asset_dir / f"{name}.tar.gz") as tar:
        tar.extractall(tmp_path, filter="data")
    vertices, _ = read_meshes(asset_dir)[name]
    principal = principal_frame_xyzw(load_manifest(asset_dir)["assets"][name]["metadata"]["principal_axes_rpy"])
    client = SharedClient()
    try:
        cid = client._client
        body = client.loadURDF(str(tmp_path / "object.urdf"), useMaximalCoordinates=True)
        probe = pb.createMultiBody(0, pb.createCollisionShape(pb.GEOM_SPHERE, radius=1e-3, physicsClientId=cid),
                                   physicsClientId=cid)

        def farthest_outside(points):
            distances = []
            for point in points:
                pb.resetBasePositionAndOrientation(probe, point.tolist(), [0, 0, 0, 1], physicsClientId=cid)
                closest = pb.getClosestPoints(body, probe, 1.0, physicsClientId=cid)
                distances.append(min(c[8] for c in closest) if closest else 1.0)
            return max(distances)

        for quat in Rotation.random(3, random_state=1).as_quat():
            pb.resetBasePositionAndOrientation(body, [1.0, 2.0, 3.0], quat, physicsClientId=cid)
            pos, reported = pb.getBasePositionAndOrientation(body, physicsClientId=cid)
            rot = Rotation.from_quat(mesh_frame_xyzw(np.array(reported), principal)).as_matrix()
            assert farthest_outside(vertices[::4] @ rot.T + np.array(pos)) < 0.02  # VHACD hulls hug the mesh
            raw = Rotation.from_quat(reported).as_matrix()  # the report taken as the mesh frame: clearly off
            assert farthest_outside(vertices[::4] @ raw.T + np.array(pos)) > 0.1
    finally:
        client.close()
