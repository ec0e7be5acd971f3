"""Assets: closed meshes, a Kubric-loadable manifest, and collision shapes that keep the torus's hole."""

import json
import tarfile

import numpy as np
import pybullet as pb
import pytest
import trimesh

from eqscale.physics.assets import load_manifest, read_meshes


def test_every_asset_is_closed_with_positive_volume(asset_dir, test_config):
    meshes = read_meshes(asset_dir)
    assert sorted(meshes) == sorted(test_config["assets"]["shapes"])
    for name, (vertices, faces) in meshes.items():
        mesh = trimesh.Trimesh(vertices, faces, process=False)
        assert mesh.is_watertight, name
        assert mesh.volume > 0, name
        assert len(faces) <= test_config["assets"]["max_faces"], name
        assert np.isclose(mesh.extents.max(), 1.0), name


def test_manifest_loads_through_kubric(asset_dir):
    from eqscale.physics.kubric_compat import kb

    manifest = load_manifest(asset_dir)
    with kb.AssetSource.from_manifest(asset_dir / "manifest.json") as source:
        obj = source.create(asset_id="teapot", name="t", scale=1.2)
        assert isinstance(obj, kb.FileBasedObject)
        assert obj.simulation_filename.endswith("object.urdf")
        assert obj.mass == pytest.approx(manifest["assets"]["teapot"]["kwargs"]["mass"])
    with tarfile.open(asset_dir / "torus.tar.gz") as tar:
        names = set(tar.getnames())
        data = json.load(tar.extractfile("data.json"))
    assert names == {"data.json", "object.urdf", "visual_geometry.obj", "collision_geometry.obj"}
    assert data["metadata"]["convex"] is False and data["metadata"]["collision_hulls"] > 1


def test_non_convex_shapes_get_decompositions(asset_dir):
    manifest = load_manifest(asset_dir)
    for name in ("cube", "sphere", "cylinder", "cone"):
        assert manifest["assets"][name]["metadata"]["convex"], name
    for name in ("torus", "torus_knot", "sponge", "gear"):
        assert not manifest["assets"][name]["metadata"]["convex"], name


def test_torus_keeps_its_hole_in_pybullet(asset_dir, tmp_path):
    """A small sphere dropped on the centre of a lying torus falls through it (no hull filling the hole)."""
    from eqscale.physics.kubric_compat import kb

    source = kb.AssetSource.from_manifest(asset_dir / "manifest.json", scratch_dir=tmp_path)
    urdf = source.create(asset_id="torus", name="torus", scale=1.0).simulation_filename
    meshes = read_meshes(asset_dir)
    vertices, _ = meshes["torus"]
    axis = int(np.argmin(np.ptp(vertices, axis=0)))  # the torus's symmetry axis is its thinnest extent
    orientation = {0: pb.getQuaternionFromEuler([0, np.pi / 2, 0]), 1: pb.getQuaternionFromEuler([np.pi / 2, 0, 0]),
                   2: (0, 0, 0, 1)}[axis]
    client = pb.connect(pb.DIRECT)
    try:
        pb.setGravity(0, 0, -10, physicsClientId=client)
        torus = pb.loadURDF(urdf, basePosition=(0, 0, 1.0), baseOrientation=orientation, useFixedBase=True,
                            physicsClientId=client)
        shape = pb.createCollisionShape(pb.GEOM_SPHERE, radius=0.08, physicsClientId=client)
        ball = pb.createMultiBody(0.1, shape, basePosition=(0, 0, 1.5), physicsClientId=client)
        for _ in range(240):
            pb.stepSimulation(physicsClientId=client)
        z = pb.getBasePositionAndOrientation(ball, physicsClientId=client)[0][2]
        assert torus >= 0
        assert z < 0.5, f"the ball stopped at z={z:.2f}: the torus's collision shape fills its hole"
    finally:
        pb.disconnect(physicsClientId=client)


def test_meshes_file_detects_corruption(asset_dir, tmp_path):
    import shutil

    copy = tmp_path / "assets"
    shutil.copytree(asset_dir, copy)
    import h5py

    with h5py.File(copy / "meshes.h5", "r+") as fh:
        fh.attrs["sha256"] = "0" * 64
    with pytest.raises(ValueError, match="does not match"):
        read_meshes(copy)


@pytest.mark.parametrize("damage, message", [
    ("truncate manifest", "is not a readable asset manifest"),
    ("drop a digest", "lacks archives_sha256.cube"),
    ("flip archive byte", "cube.tar.gz does not match the sha256"),
    ("truncate archive", "cube.tar.gz does not match the sha256"),
    ("delete archive", "cube.tar.gz cannot be read"),
])
def test_damaged_manifest_or_archive_is_refused_by_name(asset_dir, tmp_path, damage, message):
    import json
    import shutil

    from eqscale.physics.assets import AssetError

    copy = tmp_path / "assets"
    shutil.copytree(asset_dir, copy)
    manifest, archive = copy / "manifest.json", copy / "cube.tar.gz"
    if damage == "truncate manifest":
        manifest.write_text(manifest.read_text()[:100])
    elif damage == "drop a digest":
        data = json.loads(manifest.read_text())
        del data["archives_sha256"]["cube"]
        manifest.write_text(json.dumps(data))
    elif damage == "flip archive byte":
        blob = bytearray(archive.read_bytes())
        blob[len(blob) // 2] ^= 0x10
        archive.write_bytes(bytes(blob))
    elif damage == "truncate archive":
        archive.write_bytes(archive.read_bytes()[:50])
    else:
        archive.unlink()
    with pytest.raises(AssetError, match=message):
        load_manifest(copy)
