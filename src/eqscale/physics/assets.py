"""Package procedural shapes as a Kubric asset source: OBJ meshes, URDFs, tar.gz archives, manifest.

Layout of an asset directory (what `eqscale assets` writes):

    manifest.json            Kubric manifest: {"name", "assets": {id: {asset_type, kwargs, metadata}}}, plus the
                             sha256 of every archive and of the meshes (readers verify both)
    {id}.tar.gz              data.json, object.urdf, visual_geometry.obj, collision_geometry.obj
    meshes.h5                exact float64 canonical visual meshes (vertices, faces) per asset id,
                             the meshes that become tokens; attrs carry a content hash

Each asset is centred on its centre of mass with the largest bounding-box side 1 (KuBasic's
convention), has mass = volume (density 1) and the inertia of a solid of density 1. Convex shapes
collide with their own hull; non-convex ones with PyBullet's VHACD decomposition (without it a
torus would collide as its convex hull and lose its hole).

Inertia. The URDF states the solid's principal moments and, as the inertial frame's rpy, its
principal axes (plain decimal numbers: PyBullet reads anything else as 0). PyBullet's own estimate
from the collision shape is the inertia of its bounding box (the teapot's would be 0.0050 / 0.0098 /
0.0110 against its exact 0.0026 / 0.0029 / 0.0037), so `simulate` loads these URDFs with
URDF_USE_INERTIA_FROM_FILE and sets the scaled principal moments again after Kubric sets the mass
(changing the mass makes PyBullet recompute the box estimate). The manifest's metadata carries
the same moments and axes.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import h5py
import numpy as np
import trimesh

from eqscale.hdf5_io import open_checked
from eqscale.io_utils import atomic_dir

MANIFEST_NAME = "manifest.json"
MESHES_NAME = "meshes.h5"
MESHES_FORMAT = "eqscale-meshes"
MESHES_VERSION = 1


class AssetError(ValueError):
    """An asset file is missing, foreign, incomplete or corrupt; the message names it and what to rebuild."""


def _obj_text(vertices: np.ndarray, faces: np.ndarray) -> str:
    # repr-exact floats so PyBullet and Kubric see the same geometry as meshes.h5
    lines = [f"v {x!r} {y!r} {z!r}" for x, y, z in vertices.tolist()]
    lines += [f"f {a + 1} {b + 1} {c + 1}" for a, b, c in faces.tolist()]
    return "\n".join(lines) + "\n"


def _vhacd(mesh: trimesh.Trimesh, resolution: int, workdir: Path) -> tuple[str, int]:
    """Convex decomposition of `mesh` with PyBullet's VHACD; returns (OBJ text, number of hulls)."""
    import pybullet

    src, dst, log = workdir / "in.obj", workdir / "out.obj", workdir / "vhacd.log"
    src.write_text(_obj_text(mesh.vertices, mesh.faces))
    # vhacd prints its progress to stdout from C; keep our output clean by redirecting fd 1
    stdout_fd = os.dup(1)
    with open(os.devnull, "wb") as devnull:
        os.dup2(devnull.fileno(), 1)
        try:
            pybullet.vhacd(str(src), str(dst), str(log), resolution=resolution)
        finally:
            os.dup2(stdout_fd, 1)
            os.close(stdout_fd)
    text = dst.read_text()
    hulls = sum(1 for line in text.splitlines() if line.startswith("o "))
    if hulls == 0:
        raise RuntimeError(f"VHACD produced no convex hulls for a mesh with {len(mesh.faces)} faces")
    return text, hulls


def principal_inertia(inertia: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(principal moments (3,), rpy (3,) of the proper rotation whose columns are the principal axes) of a tensor."""
    moments, axes = np.linalg.eigh(np.asarray(inertia, dtype=np.float64))
    if np.linalg.det(axes) < 0:
        axes[:, 2] = -axes[:, 2]  # a proper rotation: the axes' signs are free, the handedness is not
    # URDF rpy: fixed-axis roll about x, then pitch about y, then yaw about z (R = Rz Ry Rx)
    pitch = float(np.arcsin(np.clip(-axes[2, 0], -1.0, 1.0)))
    roll = float(np.arctan2(axes[2, 1], axes[2, 2]))
    yaw = float(np.arctan2(axes[1, 0], axes[0, 0]))
    return moments, np.array([roll, pitch, yaw])


def rpy_matrix(rpy: np.ndarray) -> np.ndarray:
    """The rotation matrix of URDF roll-pitch-yaw angles (R = Rz(yaw) Ry(pitch) Rx(roll))."""
    (cr, cp, cy), (sr, sp, sy) = np.cos(rpy), np.sin(rpy)
    return np.array([[cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr],
                     [sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr],
                     [-sp, cp * sr, cp * cr]])


def _urdf(asset_id: str, mass: float, moments: np.ndarray, rpy: np.ndarray) -> str:
    # plain floats: an f-string of a numpy scalar's repr writes "np.float64(...)", which PyBullet reads as 0
    m = [float(x) for x in moments]
    r = [float(x) for x in rpy]
    return f"""<?xml version="1.0"?>
<robot name="{asset_id}">
  <link name="base">
    <contact>
      <lateral_friction value="0.5"/>
    </contact>
    <inertial>
      <origin xyz="0 0 0" rpy="{r[0]!r} {r[1]!r} {r[2]!r}"/>
      <mass value="{float(mass)!r}"/>
      <inertia ixx="{m[0]!r}" ixy="0.0" ixz="0.0" iyy="{m[1]!r}" iyz="0.0" izz="{m[2]!r}"/>
    </inertial>
    <visual>
      <origin xyz="0 0 0"/>
      <geometry><mesh filename="visual_geometry.obj" scale="1 1 1"/></geometry>
    </visual>
    <collision>
      <origin xyz="0 0 0"/>
      <geometry><mesh filename="collision_geometry.obj" scale="1 1 1"/></geometry>
    </collision>
  </link>
</robot>
"""


def _deterministic_targz(files: dict[str, bytes]) -> bytes:
    """A tar.gz of `files` whose bytes depend only on their names and contents."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name in sorted(files):
            info = tarfile.TarInfo(name)
            info.size = len(files[name])
            info.mtime = 0
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(files[name]))
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0) as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


def build_asset(asset_id: str, mesh: trimesh.Trimesh, vhacd_resolution: int, workdir: Path) -> tuple[dict, bytes]:
    """Build one asset: (manifest entry, tar.gz bytes)."""
    if not mesh.is_watertight or mesh.volume <= 0:
        raise ValueError(f"asset {asset_id!r}: mesh must be closed with positive volume "
                         f"(watertight={mesh.is_watertight}, volume={mesh.volume:.3g})")
    convex = bool(mesh.is_convex)
    if convex:
        collision_text, hulls = _obj_text(mesh.vertices, mesh.faces), 1
    else:
        collision_text, hulls = _vhacd(mesh, vhacd_resolution, workdir)
    mass = float(mesh.volume)  # density 1
    moments, rpy = principal_inertia(mesh.moment_inertia)  # trimesh assumes density 1
    bounds = mesh.bounds.tolist()
    entry = {
        "asset_type": "FileBasedObject",
        "license": "generated procedurally by eqscale (public domain)",
        "kwargs": {
            "bounds": bounds,
            "mass": mass,
            "render_filename": "{asset_dir}/visual_geometry.obj",
            "simulation_filename": "{asset_dir}/object.urdf",
        },
        "metadata": {
            "category": asset_id,
            "num_faces": int(len(mesh.faces)),
            "num_vertices": int(len(mesh.vertices)),
            "volume": mass,
            "convex": convex,
            "collision_hulls": hulls,
            "principal_moments": [float(x) for x in moments],  # density 1, scale 1 (kg m^2 per kg/m^3)
            "principal_axes_rpy": [float(x) for x in rpy],
        },
    }
    data_json = {"id": asset_id, **entry}
    files = {
        "data.json": json.dumps(data_json, indent=2, sort_keys=True).encode(),
        "object.urdf": _urdf(asset_id, mass, moments, rpy).encode(),
        "visual_geometry.obj": _obj_text(mesh.vertices, mesh.faces).encode(),
        "collision_geometry.obj": collision_text.encode(),
    }
    return entry, _deterministic_targz(files)


def _default_mesh_factory(name: str, max_faces: int) -> trimesh.Trimesh:
    # imported here: the readers of an asset dir (tokenize, simulate) never need the mesh builders' imports
    from eqscale.physics.shapes import make_shape

    return make_shape(name, max_faces)


def build_asset_dir(out_dir: str | Path, shapes: Sequence[str], max_faces: int, vhacd_resolution: int,
                    mesh_factory: Callable[[str, int], trimesh.Trimesh] | None = None,
                    progress: bool = False) -> Path:
    """Build every asset into `out_dir` atomically (a temp dir renamed into place); return the manifest path."""
    mesh_factory = mesh_factory or _default_mesh_factory
    out_dir = Path(out_dir)
    with atomic_dir(out_dir) as tmp_dir, tempfile.TemporaryDirectory() as work:
        manifest = {"name": "eqscale-kubasic", "assets": {}}
        meshes = {}
        names = list(shapes)
        iterator = names
        if progress:
            from tqdm import tqdm

            iterator = tqdm(names, desc="assets", unit="shape")
        for name in iterator:
            mesh = mesh_factory(name, max_faces)
            entry, archive = build_asset(name, mesh, vhacd_resolution, Path(work))
            (tmp_dir / f"{name}.tar.gz").write_bytes(archive)
            manifest["assets"][name] = entry
            manifest.setdefault("archives_sha256", {})[name] = hashlib.sha256(archive).hexdigest()
            meshes[name] = (np.asarray(mesh.vertices, np.float64), np.asarray(mesh.faces, np.int64))
        write_meshes(tmp_dir / MESHES_NAME, meshes)
        manifest["meshes_sha256"] = meshes_hash(meshes)
        (tmp_dir / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2, sort_keys=True))
    return out_dir / MANIFEST_NAME


def meshes_hash(meshes: dict[str, tuple[np.ndarray, np.ndarray]]) -> str:
    """sha256 over asset ids, vertices and faces: identifies the geometry a shard was simulated with."""
    digest = hashlib.sha256()
    for name in sorted(meshes):
        vertices, faces = meshes[name]
        digest.update(name.encode())
        digest.update(np.ascontiguousarray(vertices, np.float64).tobytes())
        digest.update(np.ascontiguousarray(faces, np.int64).tobytes())
    return digest.hexdigest()


def write_meshes(path: Path, meshes: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
    """Write canonical meshes to HDF5 (one group per asset id)."""
    with h5py.File(path, "w") as fh:
        fh.attrs["format"] = MESHES_FORMAT
        fh.attrs["format_version"] = MESHES_VERSION
        fh.attrs["sha256"] = meshes_hash(meshes)
        fh.attrs["complete"] = False
        for name, (vertices, faces) in sorted(meshes.items()):
            group = fh.create_group(name)
            group.create_dataset("vertices", data=vertices, fletcher32=True, chunks=True)
            group.create_dataset("faces", data=faces, fletcher32=True, chunks=True)
        fh.attrs["complete"] = True


def read_meshes(asset_dir: str | Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Canonical meshes {asset_id: (vertices (n,3) float64, faces (m,3) int64)}; checks format and hash."""
    path = Path(asset_dir) / MESHES_NAME
    with open_checked(path, fmt=MESHES_FORMAT, version=MESHES_VERSION, what="meshes file", error=AssetError,
                      rerun=f"build the assets first (eqscale assets --out {asset_dir})") as fh:
        try:
            meshes = {name: (fh[name]["vertices"][...], fh[name]["faces"][...]) for name in fh}
            expected = fh.attrs["sha256"]
        except (KeyError, OSError) as err:
            raise AssetError(f"{path} is damaged ({err}); rebuild the assets") from err
    if meshes_hash(meshes) != expected:
        raise AssetError(f"{path}: mesh content does not match its sha256 attribute (corrupt file); rebuild the assets")
    return meshes


_REQUIRED_ENTRY_KEYS = (("kwargs", "mass"), ("metadata", "volume"), ("metadata", "principal_moments"),
                        ("metadata", "principal_axes_rpy"))


def load_manifest(asset_dir: str | Path, verify_archives: bool = True) -> dict:
    """The asset manifest as a dict, after checking it is whole and (by default) that every archive it lists
    is the one it was built with (sha256); AssetError names the file and what to rebuild."""
    path = Path(asset_dir) / MANIFEST_NAME
    rebuild = f"rebuild the assets (eqscale assets --out {asset_dir})"
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise AssetError(f"{path} not found: build the assets first (eqscale assets --out {asset_dir})") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise AssetError(f"{path} is not a readable asset manifest ({err}); {rebuild}") from None
    entries = manifest.get("assets") if isinstance(manifest, dict) else None
    digests = manifest.get("archives_sha256") if isinstance(manifest, dict) else None
    if not isinstance(entries, dict) or not isinstance(digests, dict):
        raise AssetError(f"{path} lacks its 'assets' or 'archives_sha256' table (written by another eqscale "
                         f"version?); {rebuild}")
    missing = [f"{name}.{part}.{key}" for name, entry in entries.items() for part, key in _REQUIRED_ENTRY_KEYS
               if not isinstance(entry, dict) or key not in entry.get(part, {})]
    missing += [f"archives_sha256.{name}" for name in entries if name not in digests]
    if missing:
        raise AssetError(f"{path} lacks {', '.join(missing)} (written by another eqscale version?); {rebuild}")
    if verify_archives:
        for name in entries:
            archive = Path(asset_dir) / f"{name}.tar.gz"
            try:
                digest = hashlib.sha256(archive.read_bytes()).hexdigest()
            except OSError as err:
                raise AssetError(f"asset archive {archive} cannot be read ({err}); {rebuild}") from None
            if digest != digests[name]:
                raise AssetError(f"asset archive {archive} does not match the sha256 in {path} (corrupt or "
                                 f"replaced); {rebuild}")
    return manifest
