"""Trajectories per second per core: `eqscale simulate` vs a bare PyBullet loop on the same scenes.

    .venv/bin/python bench/bench_simulate.py [--trajectories 200] [--assets DIR]

The bare loop gets each scene's initial state from the shard eqscale wrote (so it skips Kubric's
scene sampling and overlap checks) and only loads the same URDFs, steps and reads poses (no
velocities, no contacts, nothing written): the floor on what any PyBullet-based simulator can do for
these scenes. It runs twice: connecting a new PyBullet client per scene (what a plain script does,
and what Kubric's view does), and on one client reset per scene (what `eqscale simulate` does).
All loops run on one core.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pybullet as pb  # noqa: E402

from eqscale.config import load_config  # noqa: E402
from eqscale.physics.assets import build_asset_dir  # noqa: E402
from eqscale.physics.raw_format import open_raw_shard, read_trajectory  # noqa: E402
from eqscale.physics.simulate import FLOOR_HALF_EXTENT, simulate_shard  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def bare_loop(trajectories: list[dict], urdfs: dict[str, str], config: dict, reuse_client: bool) -> float:
    """Seconds to re-simulate `trajectories` from their initial states with plain PyBullet calls."""
    sim = config["simulation"]
    steps_per_frame = sim["step_rate"] // sim["frame_rate"]
    start = time.perf_counter()
    shared = pb.connect(pb.DIRECT) if reuse_client else None
    for traj in trajectories:
        if reuse_client:
            client = shared
            pb.resetSimulation(physicsClientId=client)
        else:
            client = pb.connect(pb.DIRECT)
        # the same engine parameters Kubric's PyBullet view sets
        pb.setPhysicsEngineParameter(restitutionVelocityThreshold=0.0, warmStartingFactor=0.0, useSplitImpulse=True,
                                     contactSlop=0.0, enableConeFriction=False, deterministicOverlappingPairs=True,
                                     physicsClientId=client)
        pb.setGravity(0, 0, sim["gravity"], physicsClientId=client)
        pb.setTimeStep(1.0 / sim["step_rate"], physicsClientId=client)
        box = pb.createCollisionShape(pb.GEOM_BOX, halfExtents=(FLOOR_HALF_EXTENT, FLOOR_HALF_EXTENT, 1.0),
                                      physicsClientId=client)
        floor = pb.createMultiBody(0, box, -1, (0, 0, -1.0), useMaximalCoordinates=True, physicsClientId=client)
        pb.changeDynamics(floor, -1, lateralFriction=sim["floor_friction"], restitution=sim["floor_restitution"],
                          physicsClientId=client)
        bodies = []
        for k, asset_id in enumerate(traj["asset_ids"]):
            w, x, y, z = traj["quaternions"][0, k]
            body = pb.loadURDF(urdfs[asset_id], basePosition=traj["positions"][0, k], baseOrientation=(x, y, z, w),
                               globalScaling=float(traj["scales"][k]), useMaximalCoordinates=True,
                               physicsClientId=client)
            pb.changeDynamics(body, -1, mass=float(traj["masses"][k]), lateralFriction=float(traj["friction"][k]),
                              restitution=float(traj["restitution"][k]), contactProcessingThreshold=0,
                              physicsClientId=client)
            pb.resetBaseVelocity(body, traj["velocities"][0, k], traj["angular_velocities"][0, k],
                                 physicsClientId=client)
            bodies.append(body)
        poses = np.empty((sim["num_frames"], len(bodies), 7))
        for frame in range(sim["num_frames"]):
            for j, body in enumerate(bodies):
                pos, orn = pb.getBasePositionAndOrientation(body, physicsClientId=client)
                poses[frame, j, :3], poses[frame, j, 3:] = pos, orn
            if frame < sim["num_frames"] - 1:
                for _ in range(steps_per_frame):
                    pb.stepSimulation(physicsClientId=client)
        if not reuse_client:
            pb.disconnect(physicsClientId=client)
    if reuse_client:
        pb.disconnect(physicsClientId=shared)
    return time.perf_counter() - start


LOOPS = ("eqscale", "bare-new-client", "bare-one-client")


def simulated_scenes(shard: Path, assets: Path, urdf_dir: Path) -> tuple[list[dict], dict[str, str]]:
    """The trajectories of an eqscale shard and the URDF of each asset they use (extracted to `urdf_dir`)."""
    with open_raw_shard(shard) as fh:
        trajectories = [read_trajectory(fh["trajectories"][n]) for n in fh["trajectories"]]
    asset_ids = sorted({a for t in trajectories for a in t["asset_ids"]})
    for asset_id in asset_ids:
        (urdf_dir / asset_id).mkdir(parents=True, exist_ok=True)
        subprocess.run(["tar", "-xzf", str(assets / f"{asset_id}.tar.gz"), "-C", str(urdf_dir / asset_id)], check=True)
    return trajectories, {a: str(urdf_dir / a / "object.urdf") for a in asset_ids}


def run_loop(loop: str, config: dict, assets: Path, shard: Path, scenes: tuple | None) -> float:
    """Seconds `loop` takes: eqscale simulates `config`'s shard into `shard`; a bare loop replays `scenes`."""
    if loop == "eqscale":
        start = time.perf_counter()
        simulate_shard(config, assets, 0, shard, progress=False)
        return time.perf_counter() - start
    trajectories, urdfs = scenes
    return bare_loop(trajectories, urdfs, config, reuse_client=loop == "bare-one-client")


def callgrind_instructions(argv: list[str]) -> int:
    """Instructions a command executes, counted by valgrind's callgrind (repeatable on a busy machine)."""
    proc = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *argv],
                          capture_output=True, text=True, check=True)
    match = re.search(r"Collected\s*:\s*(\d+)", proc.stderr)
    if not match:
        raise RuntimeError(f"no instruction count in valgrind's output:\n{proc.stderr[-2000:]}")
    return int(match.group(1))


def count_instructions(args: argparse.Namespace, config: dict, tmp: Path) -> None:
    """Per-trajectory instructions of each loop: (count at N) - (count at N/3), over the 2N/3 extra scenes."""
    small, large = max(1, args.trajectories // 3), args.trajectories
    shard = tmp / "scenes.h5"  # the bare loops replay its first `n` scenes, the ones eqscale simulates at `n`
    simulate_shard(config, args.assets, 0, shard, progress=False)
    per_trajectory = {}
    for loop in LOOPS:
        counts = {}
        for n in (small, large):
            counts[n] = callgrind_instructions([sys.executable, __file__, "--only", loop, "--trajectories", str(n),
                                                "--scenes", str(shard), "--configfile", str(args.configfile),
                                                "--assets", str(args.assets)])
        per_trajectory[loop] = (counts[large] - counts[small]) / (large - small)
        print(f"{loop:16s}: {per_trajectory[loop] / 1e6:8.1f} M instructions per trajectory "
              f"(callgrind, {small} and {large} scenes)")
    base = per_trajectory["eqscale"]
    print(f"ratio eqscale/bare (instructions): {base / per_trajectory['bare-new-client']:.2f}x (new client per scene), "
          f"{base / per_trajectory['bare-one-client']:.2f}x (one client)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trajectories", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds; the best of each is kept")
    parser.add_argument("--configfile", type=Path, default=REPO / "config.yaml")
    parser.add_argument("--assets", type=Path, default=REPO / "bench" / "_out" / "assets")
    parser.add_argument("--instructions", action="store_true",
                        help="count instructions per trajectory under valgrind instead of timing (slow: use ~30 scenes)")
    parser.add_argument("--only", choices=LOOPS, help="run one loop once (what --instructions counts)")
    parser.add_argument("--scenes", type=Path, help="with --only: the eqscale shard whose scenes the bare loops replay")
    args = parser.parse_args()
    config = load_config(args.configfile, {"simulation": {"num_shards": 1, "trajectories_per_shard": args.trajectories}})
    if not (args.assets / "manifest.json").exists():
        a = config["assets"]
        build_asset_dir(args.assets, a["shapes"], a["max_faces"], a["vhacd_resolution"], progress=True)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        if args.instructions:
            count_instructions(args, config, tmp)
            return
        if args.only:
            scenes = None
            if args.only != "eqscale":
                # every scene of the shard is read whatever the count, so reading cancels out of --instructions
                trajectories, urdfs = simulated_scenes(args.scenes, args.assets, tmp / "urdf")
                scenes = (trajectories[: args.trajectories], urdfs)
            seconds = run_loop(args.only, config, args.assets, tmp / "shard-0000.h5", scenes)
            print(f"{args.only}: {1e3 * seconds / args.trajectories:.1f} ms per trajectory")
            return
        shard = tmp / "shard-0000.h5"
        times: dict[str, list[float]] = {loop: [] for loop in LOOPS}
        scenes = None  # read once, from eqscale's first round (every round writes the same shard)
        # alternate the loops and keep each one's best round: the machine's speed drifts
        for _ in range(args.rounds):
            for loop in LOOPS:
                times[loop].append(run_loop(loop, config, args.assets, shard, scenes))
                if scenes is None:
                    scenes = simulated_scenes(shard, args.assets, tmp / "urdf")
        objects = np.mean([t["num_objects"] for t in scenes[0]])
    n = args.trajectories
    best = {loop: min(t) for loop, t in times.items()}
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    print(f"machine: {cpu} ({os.cpu_count()} cores), python {platform.python_version()}")
    print(f"scenes: {n} trajectories, {config['simulation']['num_frames']} frames at {config['simulation']['frame_rate']} fps, "
          f"{objects:.1f} objects on average, max_faces {config['assets']['max_faces']}")
    for loop, label in zip(LOOPS, ("eqscale simulate", "bare PyBullet, new client per scene", "bare PyBullet, one client, reset")):
        print(f"{label:36s}: {n / best[loop]:7.1f} trajectories/s/core  ({1e3 * best[loop] / n:6.1f} ms per trajectory)")
    print(f"ratio eqscale/bare: {best['eqscale'] / best['bare-new-client']:.2f}x (new client per scene), "
          f"{best['eqscale'] / best['bare-one-client']:.2f}x (one client)")
    rounds = "; ".join(f"{loop} " + ", ".join(f"{1e3 * t / n:.1f}" for t in times[loop]) for loop in LOOPS)
    print(f"best of {args.rounds} alternating rounds; all rounds (ms per trajectory): {rounds}")


if __name__ == "__main__":
    main()
