"""The raw shard format: one HDF5 file per simulation job, all trajectories of that shard.

    / attrs
        format = "eqscale-raw", format_version = 1, complete = True (written last)
        global_seed, shard, num_trajectories, num_frames, frame_rate, step_rate
        config_hash (sha256 of the seed/assets/simulation config sections), config_json
        meshes_sha256 (geometry of the asset set simulated with), versions_json
    /trajectories/NNNNNN                 one group per trajectory, K objects, T frames
        attrs: seed (the trajectory's own RandomState seed), index, num_objects
        asset_ids          (K,)      str     shape name = asset id in the asset manifest
        scales             (K,)      f8      uniform scale applied to the canonical mesh
        materials          (K,)      str     "metal" | "rubber"
        masses             (K,)      f8      mass PyBullet simulated with (kg)
        inertia_diagonal   (K, 3)    f8      PyBullet's moments of inertia about the body axes (kg m^2)
        friction           (K,)      f8
        restitution        (K,)      f8
        positions          (T, K, 3) f8      centre of mass in metres (world frame, z up, floor z = 0)
        quaternions        (T, K, 4) f8      wxyz body orientation, body frame = canonical mesh frame
        velocities         (T, K, 3) f8      m/s
        angular_velocities (T, K, 3) f8      rad/s (world frame)
        contacts           (C, 4)    f8      frame, object a, object b (-1 = floor), normal force (N):
                                             contact pairs with force > 1e-6 at the end of each frame

The vertices of object k at frame t are R(quaternions[t, k]) @ (scales[k] * v) + positions[t, k]
for the canonical vertices v of its asset (assets' meshes.h5). Every dataset carries a Fletcher-32
checksum, so flipped bytes fail loudly on read; `complete` and the trajectory count catch truncation.
"""

from __future__ import annotations

from pathlib import Path

import h5py

RAW_FORMAT = "eqscale-raw"
RAW_VERSION = 1


class ShardError(ValueError):
    """A shard is missing, truncated, corrupt, foreign or of another version; the message names the file."""


def open_raw_shard(path: str | Path) -> h5py.File:
    """Open a raw shard read-only after checking it is a complete eqscale raw shard of this version."""
    path = Path(path)
    if not path.exists():
        raise ShardError(f"raw shard {path} does not exist")
    try:
        fh = h5py.File(path, "r")
    except OSError as err:
        raise ShardError(f"raw shard {path} is not a readable HDF5 file (truncated or corrupt?): {err}") from err
    try:
        fmt = fh.attrs.get("format")
        if fmt != RAW_FORMAT:
            raise ShardError(f"{path} is not an eqscale raw shard (format attribute {fmt!r}, expected {RAW_FORMAT!r})")
        version = int(fh.attrs.get("format_version", -1))
        if version != RAW_VERSION:
            raise ShardError(f"raw shard {path} has format_version {version}; this eqscale reads {RAW_VERSION}: "
                             "re-run the simulate stage")
        if not fh.attrs.get("complete", False):
            raise ShardError(f"raw shard {path} is incomplete (its writer did not finish)")
        expected = int(fh.attrs["num_trajectories"])
        found = len(fh["trajectories"]) if "trajectories" in fh else 0
        if found != expected:
            raise ShardError(f"raw shard {path} holds {found} trajectories, its header says {expected}")
    except ShardError:
        fh.close()
        raise
    except (KeyError, OSError) as err:
        fh.close()
        raise ShardError(f"raw shard {path} is damaged: {err}") from err
    return fh


def read_trajectory(group: h5py.Group, path: str | Path = "?") -> dict:
    """Read one trajectory group into numpy arrays (and str lists); checksum errors name the file."""
    try:
        out = {key: group[key][...] for key in group}
    except OSError as err:
        raise ShardError(f"{path}: trajectory {group.name} fails its checksum or cannot be read: {err}") from err
    for key in ("asset_ids", "materials"):
        out[key] = [s.decode() if isinstance(s, bytes) else str(s) for s in out[key]]
    out.update({k: (v.item() if hasattr(v, "item") else v) for k, v in group.attrs.items()})
    return out
