"""The raw shard format: one HDF5 file per simulation job, all trajectories of that shard.

    / attrs
        format = "eqscale-raw", format_version = 3, complete = True (written last)
        global_seed, shard, num_trajectories, num_frames, frame_rate, step_rate
        config_hash (sha256 of the seed/assets/simulation config sections), config_json
        meshes_sha256 (geometry of the asset set simulated with), versions_json
    /trajectories/NNNNNN                 one group per trajectory, K objects, T frames
        attrs: seed (the trajectory's own RandomState seed), index, num_objects
        objects   (K,)        compound, one row per object:
            asset_id          str     shape name = asset id in the asset manifest
            material          str     "metal" | "rubber"
            scale             f8      uniform scale applied to the canonical mesh
            mass              f8      mass PyBullet simulated with (kg)
            inertia_diagonal  f8 (3,) principal moments of inertia PyBullet simulated with (kg m^2), about the
                                      asset's principal axes (manifest metadata principal_axes_rpy)
            friction          f8
            restitution       f8
        states    (T, K, 13)  f8      per frame and object, in columns:
            0:3   position            centre of mass in metres (world frame, z up, floor z = 0)
            3:7   quaternion          wxyz body orientation, body frame = canonical mesh frame
            7:10  velocity            m/s
            10:13 angular velocity    rad/s (world frame)
        contacts  (C, 4)      f8      frame, object a, object b (-1 = floor), normal force (N):
                                      contact pairs with force > 1e-6 at the end of each frame

Three datasets per trajectory, not one per quantity: creating an HDF5 dataset costs ~0.3 ms here
(HDF5 2.0), which with thirteen of them was a tenth of the cost of simulating the trajectory.
`read_trajectory` returns the per-quantity arrays (`asset_ids`, `scales`, ..., `positions`,
`quaternions`, `velocities`, `angular_velocities`, `contacts`); `write_trajectory` takes them.

The vertices of object k at frame t are R(quaternions[t, k]) @ (scales[k] * v) + positions[t, k]
for the canonical vertices v of its asset (assets' meshes.h5). Every dataset carries a Fletcher-32
checksum, so flipped bytes fail loudly on read; `complete` and the trajectory count catch truncation.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from eqscale.hdf5_io import open_checked

RAW_FORMAT = "eqscale-raw"
RAW_VERSION = 3  # 3: simulated with the solids' exact inertia (2 had PyBullet's bounding-box estimate)

# (per-trajectory array, number of columns) in the order of the columns of `states`
STATE_COLUMNS = (("positions", 3), ("quaternions", 4), ("velocities", 3), ("angular_velocities", 3))
# (field of `objects`, per-trajectory array)
OBJECT_STRINGS = (("asset_id", "asset_ids"), ("material", "materials"))
OBJECT_NUMBERS = (("scale", "scales"), ("mass", "masses"), ("inertia_diagonal", "inertia_diagonal"),
                  ("friction", "friction"), ("restitution", "restitution"))
# checksummed, and no creation timestamps (same seed -> same bytes)
_CHECKED = dict(fletcher32=True, chunks=True, track_times=False)


class ShardError(ValueError):
    """A shard is missing, truncated, corrupt, foreign or of another version; the message names the file."""


def open_raw_shard(path: str | Path) -> h5py.File:
    """Open a raw shard read-only after checking it is a complete eqscale raw shard of this version."""

    def counts_agree(fh: h5py.File) -> None:
        expected = int(fh.attrs["num_trajectories"])
        found = len(fh["trajectories"]) if "trajectories" in fh else 0
        if found != expected:
            raise ShardError(f"raw shard {path} holds {found} trajectories, its header says {expected}")

    return open_checked(path, fmt=RAW_FORMAT, version=RAW_VERSION, what="raw shard", error=ShardError,
                        rerun="re-run the simulate stage", check=counts_agree)


def create_group(parent: h5py.Group, name: str) -> h5py.Group:
    """A group without creation timestamps (h5py's create_group always records them)."""
    gcpl = h5py.h5p.create(h5py.h5p.GROUP_CREATE)
    gcpl.set_obj_track_times(False)
    return h5py.Group(h5py.h5g.create(parent.id, name.encode(), gcpl=gcpl))


def write_trajectory(parent: h5py.Group, name: str, data: dict) -> None:
    """Write one trajectory (the arrays `read_trajectory` returns, plus seed and index) as group `name`."""
    group = create_group(parent, name)
    group.attrs["seed"] = data["seed"]
    group.attrs["index"] = data["index"]
    group.attrs["num_objects"] = data["num_objects"]
    # fixed-length ASCII fields: variable-length strings cannot carry a checksum filter
    strings = {field: np.array(data[key], dtype="S") for field, key in OBJECT_STRINGS}
    numbers = {field: np.asarray(data[key], dtype=np.float64) for field, key in OBJECT_NUMBERS}
    dtype = [(f, a.dtype) for f, a in strings.items()] + [(f, a.dtype, a.shape[1:]) for f, a in numbers.items()]
    objects = np.empty(data["num_objects"], dtype=dtype)
    for field, values in (strings | numbers).items():
        objects[field] = values
    group.create_dataset("objects", data=objects, **_CHECKED)
    states = np.concatenate([np.asarray(data[key], dtype=np.float64) for key, _ in STATE_COLUMNS], axis=-1)
    group.create_dataset("states", data=states, **_CHECKED)
    contacts = data["contacts"]
    group.create_dataset("contacts", data=contacts, fletcher32=True, chunks=(max(1, min(len(contacts), 4096)), 4),
                         maxshape=(None, 4), track_times=False)


def read_trajectory(group: h5py.Group, path: str | Path = "?") -> dict:
    """Read one trajectory group into numpy arrays (and str lists); checksum errors name the file."""
    try:
        objects, states, contacts = group["objects"][...], group["states"][...], group["contacts"][...]
    except (OSError, KeyError) as err:
        raise ShardError(f"{path}: trajectory {group.name} fails its checksum or cannot be read: {err}") from err
    out = {key: [s.decode() for s in objects[field]] for field, key in OBJECT_STRINGS}
    out.update({key: np.ascontiguousarray(objects[field]) for field, key in OBJECT_NUMBERS})
    start = 0
    for key, width in STATE_COLUMNS:
        out[key] = np.ascontiguousarray(states[..., start:start + width])
        start += width
    out["contacts"] = contacts
    out.update({k: (v.item() if hasattr(v, "item") else v) for k, v in group.attrs.items()})
    return out
