"""`eqscale simulate`: Kubric MOVi-B scenes on PyBullet, one HDF5 shard per job.

Scene construction is Kubric's (AssetSource, samplers, `move_until_no_overlap`, its PyBullet view
and trait observers) with MOVi-B's parameters. Two things are ours: a shard's scenes share one
PyBullet client, reset per scene (`pybullet_view`; connecting anew costs 4-13 ms here, against
~26 ms of stepping per default trajectory), and the stepping loop: Kubric's `run()` polls every
contact point at every physics step and keyframes every trait through traitlets, which doubles
the cost per trajectory; we read poses, velocities and contacts once per frame.
Every trajectory's RandomState seed derives from (global seed, shard, index), so
`simulate_trajectory` regenerates any one of them alone.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from eqscale.config import ConfigError, add_config_arguments, config_from_args, config_hash
from eqscale.io_utils import atomic_path, package_versions, remove_stale_temps
from eqscale.physics.assets import load_manifest
from eqscale.physics.raw_format import RAW_FORMAT, RAW_VERSION, create_group, write_trajectory

log = logging.getLogger(__name__)

FLOOR_HALF_EXTENT = 50.0  # metres; objects start within 5 m of the origin and rarely leave 15 m
MATERIALS = {
    # name: (friction, restitution, density factor) -- MOVi-B's metal and rubber
    "metal": (0.4, 0.3, 2.7),
    "rubber": (0.8, 0.7, 1.1),
}
CONTACT_FORCE_MIN = 1e-6  # newtons; Kubric's threshold for a contact event


@dataclass(frozen=True)
class SceneParams:
    """The MOVi-B scene distribution (from config sections `simulation` and `assets`)."""

    shapes: tuple[str, ...]
    num_frames: int
    frame_rate: int
    step_rate: int
    min_objects: int
    max_objects: int
    scale_range: tuple[float, float]
    spawn_low: tuple[float, float, float]
    spawn_high: tuple[float, float, float]
    max_speed: float
    gravity: float
    floor_friction: float
    floor_restitution: float

    @classmethod
    def from_config(cls, config: dict) -> "SceneParams":
        """Build from a validated config."""
        sim = config["simulation"]
        return cls(
            shapes=tuple(config["assets"]["shapes"]), num_frames=sim["num_frames"], frame_rate=sim["frame_rate"],
            step_rate=sim["step_rate"], min_objects=sim["min_objects"], max_objects=sim["max_objects"],
            scale_range=tuple(sim["scale_range"]), spawn_low=tuple(sim["spawn_low"]),
            spawn_high=tuple(sim["spawn_high"]), max_speed=sim["max_speed"], gravity=sim["gravity"],
            floor_friction=sim["floor_friction"], floor_restitution=sim["floor_restitution"],
        )


def trajectory_seed(global_seed: int, shard: int, index: int) -> int:
    """The RandomState seed of trajectory `index` of `shard` (independent streams via SeedSequence)."""
    return int(np.random.SeedSequence([global_seed, shard, index]).generate_state(1)[0])


def _kubric():
    from eqscale.physics.kubric_compat import kb

    return kb


def simulate_trajectory(asset_source, manifest: dict, params: SceneParams, seed: int, scratch_dir: str | Path,
                        client=None) -> dict:
    """Simulate one MOVi-B scene; return its arrays in the raw shard layout.

    With `client` (a `pybullet_view.SharedClient`) the scene reuses that PyBullet client, reset;
    without, it runs on Kubric's own view with a client of its own (the same arrays, slower).
    """
    kb = _kubric()
    # Kubric (and with it PyBullet) is imported on first use: `eqscale simulate --help` should not pay ~1 s for it
    import pybullet as pb
    from kubric.simulator import PyBullet

    from eqscale.physics.pybullet_view import (
        InertiaFromFileClient, ReusedClientView, principal_frame_xyzw, set_exact_inertia,
    )

    rng = np.random.RandomState(seed)
    scene = kb.Scene(frame_start=0, frame_end=params.num_frames - 1, frame_rate=params.frame_rate,
                     step_rate=params.step_rate, gravity=(0.0, 0.0, params.gravity))
    if client is None:
        simulator = PyBullet(scene, scratch_dir=Path(scratch_dir))
        # Kubric's own client class, loading URDFs with their stated inertia like ours (it adds one method)
        simulator._physics_client.__class__ = InertiaFromFileClient
        pb.setTimeStep(1.0 / params.step_rate, physicsClientId=simulator.physics_client)  # Kubric never sets it
    else:
        simulator = ReusedClientView(scene, client, scratch_dir, time_step=1.0 / params.step_rate)
    try:
        # a static box whose top face is the plane z = 0 stands in for KuBasic's floor dome
        scene += kb.Cube(name="floor", scale=(FLOOR_HALF_EXTENT, FLOOR_HALF_EXTENT, 1.0), position=(0, 0, -1.0),
                         static=True, friction=params.floor_friction, restitution=params.floor_restitution)
        num_objects = rng.randint(params.min_objects, params.max_objects + 1)
        objects, materials = [], []
        for i in range(num_objects):
            shape = str(rng.choice(params.shapes))
            scale = float(rng.uniform(*params.scale_range))
            material = str(rng.choice(sorted(MATERIALS)))
            friction, restitution, density = MATERIALS[material]
            base_mass = manifest["assets"][shape]["kwargs"]["mass"]
            # AssetSource.create mutates its manifest entry with the kwargs: pass every one we rely on
            obj = asset_source.create(asset_id=shape, name=f"object_{i}", scale=scale,
                                      mass=base_mass * density * scale**3, friction=friction,
                                      restitution=restitution)
            scene += obj
            kb.move_until_no_overlap(obj, simulator, spawn_region=[params.spawn_low, params.spawn_high], rng=rng)
            obj.velocity = rng.uniform([-params.max_speed, -params.max_speed, 0.0],
                                       [params.max_speed, params.max_speed, 0.0]) - [obj.position[0], obj.position[1], 0.0]
            objects.append(obj)
            materials.append(material)
        bodies = [obj.linked_objects[simulator] for obj in objects]
        principal = []
        for obj, body in zip(objects, bodies):
            meta = manifest["assets"][obj.asset_id]["metadata"]
            set_exact_inertia(simulator.physics_client, body, meta["principal_moments"], meta["volume"],
                              float(obj.mass), float(obj.scale[0]))
            principal.append(principal_frame_xyzw(meta["principal_axes_rpy"]))
        return _run(simulator.physics_client, bodies, objects, materials, params, seed, np.array(principal))
    finally:
        if client is None:
            pb.disconnect(physicsClientId=simulator.physics_client)
            # PyBullet reuses client ids: stop Kubric's wrapper from disconnecting a later client on GC
            simulator._physics_client._client = -1


def _run(client: int, body_ids: list[int], objects: list, materials: list[str], params: SceneParams, seed: int,
         principal_xyzw: np.ndarray) -> dict:
    import pybullet as pb

    from eqscale.physics.pybullet_view import mesh_frame_xyzw

    steps_per_frame = params.step_rate // params.frame_rate
    num_frames, k = params.num_frames, len(body_ids)
    get_pose, get_velocity, step, get_contacts = (pb.getBasePositionAndOrientation, pb.getBaseVelocity,
                                                   pb.stepSimulation, pb.getContactPoints)
    # the per-frame reads are most of this loop's Python time: positional arguments, flat appends,
    # one conversion to arrays at the end
    poses, velocities, contacts = [], [], []
    for frame in range(num_frames):
        for body in body_ids:
            poses.append(get_pose(body, client))
            velocities.append(get_velocity(body, client))
        if frame == num_frames - 1:
            break
        for _ in range(steps_per_frame):
            step(client)
        contacts.extend([(frame + 1, p[1], p[2], p[9]) for p in get_contacts(physicsClientId=client)
                         if p[9] > CONTACT_FORCE_MIN])

    def frames(pairs: list, which: int, width: int) -> np.ndarray:
        values = itertools.chain.from_iterable(pair[which] for pair in pairs)
        return np.fromiter(values, dtype=np.float64, count=num_frames * k * width).reshape(num_frames, k, width)

    masses, inertia_diag = [], []
    for body in body_ids:
        # (the local inertial orientation PyBullet reports for maximal-coordinate bodies is uninitialised
        # memory, so only mass and the diagonal are kept)
        info = pb.getDynamicsInfo(body, -1, physicsClientId=client)
        masses.append(info[0])
        inertia_diag.append(info[2])
    return {
        "seed": seed,
        "num_objects": k,
        "asset_ids": [obj.asset_id for obj in objects],
        "scales": np.array([float(obj.scale[0]) for obj in objects]),
        "materials": list(materials),
        "masses": np.array(masses),
        "inertia_diagonal": np.array(inertia_diag).reshape(k, 3),
        "friction": np.array([float(obj.friction) for obj in objects]),
        "restitution": np.array([float(obj.restitution) for obj in objects]),
        "positions": frames(poses, 0, 3),
        # PyBullet's base frame is the principal-axes frame: back to the mesh frame, then xyzw -> wxyz
        "quaternions": mesh_frame_xyzw(frames(poses, 1, 4), principal_xyzw[None])[..., [3, 0, 1, 2]],
        "velocities": frames(velocities, 0, 3),
        "angular_velocities": frames(velocities, 1, 3),
        "contacts": _contact_events(contacts, body_ids),
    }


def _contact_events(contacts: list[tuple], body_ids: list[int]) -> np.ndarray:
    """(frame, a, b, normal force) rows with bodies as object indices, -1 for the floor.

    Pairs are canonical: (object, -1) against the floor, (low, high) between objects.
    """
    events = np.array(contacts, dtype=np.float64).reshape(-1, 4)
    lookup = np.full(max(body_ids) + 1, -1.0)  # bodies that are not objects (the floor, added first) -> -1
    lookup[body_ids] = np.arange(len(body_ids))
    a, b = lookup[events[:, 1].astype(np.int64)], lookup[events[:, 2].astype(np.int64)]
    floor = (a == -1) | (b == -1)
    low, high = np.minimum(a, b), np.maximum(a, b)
    events[:, 1] = np.where(floor, high, low)
    events[:, 2] = np.where(floor, low, high)
    return events


class ShardSimulator:
    """Simulates trajectories of one configuration against one asset directory (reuses the AssetSource)."""

    def __init__(self, config: dict, asset_dir: str | Path, scratch_dir: str | Path):
        kb = _kubric()
        self.config = config
        self.params = SceneParams.from_config(config)
        self.asset_dir = Path(asset_dir)
        self.manifest = load_manifest(self.asset_dir)
        missing = sorted(set(self.params.shapes) - set(self.manifest["assets"]))
        if missing:
            raise ConfigError(f"config key assets.shapes: {missing} are not in {self.asset_dir / 'manifest.json'}; "
                              "rebuild the assets with the same config")
        self.scratch_dir = Path(scratch_dir)
        self.source = kb.AssetSource.from_manifest(self.asset_dir / "manifest.json", scratch_dir=self.scratch_dir)
        from eqscale.physics.pybullet_view import SharedClient

        self.client = SharedClient()  # one PyBullet client for the whole shard, reset per scene

    def trajectory(self, shard: int, index: int) -> dict:
        """Simulate trajectory `index` of `shard` (the same arrays whether run alone or in its shard)."""
        seed = trajectory_seed(self.config["seed"], shard, index)
        data = simulate_trajectory(self.source, self.manifest, self.params, seed, self.scratch_dir, client=self.client)
        data["index"] = index
        return data

    def close(self) -> None:
        """Disconnect PyBullet and remove the extracted assets."""
        self.client.close()
        self.source.close()


def simulate_shard(config: dict, asset_dir: str | Path, shard: int, out_path: str | Path, progress: bool = True) -> Path:
    """Simulate every trajectory of `shard` into `out_path` (written atomically)."""
    out_path = Path(out_path)
    num = config["simulation"]["trajectories_per_shard"]
    if not 0 <= shard < config["simulation"]["num_shards"]:
        raise ConfigError(f"shard {shard} is outside [0, simulation.num_shards={config['simulation']['num_shards']})")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    scratch_prefix = f".simulate-{shard:04d}-"
    remove_stale_temps(out_path, scratch_prefix + "*")  # what a killed run of this shard left behind
    # per-job scratch (Kubric and PyBullet write temp files; concurrent jobs must not share them)
    with tempfile.TemporaryDirectory(prefix=scratch_prefix, dir=out_path.parent) as scratch:
        saved_env, saved_tempdir = os.environ.get("TMPDIR"), tempfile.tempdir
        os.environ["TMPDIR"] = scratch
        tempfile.tempdir = scratch
        simulator = ShardSimulator(config, asset_dir, scratch)
        try:
            with atomic_path(out_path) as tmp:
                with h5py.File(tmp, "w", track_order=False) as fh:
                    fh.attrs["format"] = RAW_FORMAT
                    fh.attrs["format_version"] = RAW_VERSION
                    fh.attrs["complete"] = False
                    fh.attrs["global_seed"] = config["seed"]
                    fh.attrs["shard"] = shard
                    fh.attrs["num_trajectories"] = num
                    for key in ("num_frames", "frame_rate", "step_rate"):
                        fh.attrs[key] = config["simulation"][key]
                    fh.attrs["config_hash"] = config_hash(config, ["seed", "assets", "simulation"])
                    fh.attrs["config_json"] = json.dumps({k: config[k] for k in ("seed", "assets", "simulation")},
                                                         sort_keys=True)
                    fh.attrs["meshes_sha256"] = simulator.manifest.get("meshes_sha256", "")
                    versions = package_versions("eqscale", "kubric-nightly", "pybullet", "numpy", "h5py", "trimesh")
                    fh.attrs["versions_json"] = json.dumps(versions, sort_keys=True)
                    trajectories = create_group(fh, "trajectories")
                    indices = range(num)
                    if progress:
                        from tqdm import tqdm

                        indices = tqdm(indices, desc=f"simulate shard {shard}", unit="traj", file=sys.stderr)
                    for index in indices:
                        write_trajectory(trajectories, f"{index:06d}", simulator.trajectory(shard, index))
                    fh.attrs["complete"] = True
        finally:
            simulator.close()
            # restore, so callers (and their subprocesses) do not inherit a deleted scratch dir
            tempfile.tempdir = saved_tempdir
            if saved_env is None:
                os.environ.pop("TMPDIR", None)
            else:
                os.environ["TMPDIR"] = saved_env
    return out_path


def main(argv: list[str] | None = None) -> int:
    """`eqscale simulate --shard I --assets DIR --out FILE`: simulate one raw shard."""
    parser = argparse.ArgumentParser(prog="eqscale simulate", description=__doc__.splitlines()[0])
    add_config_arguments(parser)
    parser.add_argument("--shard", type=int, required=True, help="shard index in [0, simulation.num_shards)")
    parser.add_argument("--assets", type=Path, default=Path("results/assets"), help="asset directory")
    parser.add_argument("--out", type=Path, help="output shard (default results/raw/shard-NNNN.h5)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    try:
        config = config_from_args(args)
        out = args.out or Path("results/raw") / f"shard-{args.shard:04d}.h5"
        simulate_shard(config, args.assets, args.shard, out, progress=not args.no_progress)
    except (ConfigError, FileNotFoundError, ValueError) as err:
        print(f"eqscale simulate: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
