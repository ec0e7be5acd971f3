"""`eqscale tokenize`: raw simulation shards -> train/val/test token shards + normalisation stats.

Every raw trajectory goes to exactly one split by a fixed hash of (global seed, raw shard, index)
(`token_format.split_of`), so the assignment of one trajectory never depends on which or how many
other shards exist. Within a split, trajectories are ordered by (raw shard, index) and cut into
token shards of `tokens.trajectories_per_shard`. stats.json (written last) holds, for every split,
counts, the per-shard sha256 and trajectory counts (the loader checks its shards against them), the
per-sample expectations of a batch's structure (what a step's FLOPs are linear in) and the fraction
of samples with object-object and object-floor contact in their frames t-1 .. t+h; and normalisation
statistics of the TRAIN split only, computed exactly from per-object vertex moments (no posed meshes
are materialised).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from pathlib import Path

import h5py
import numpy as np
from tqdm import tqdm

from eqscale.config import ConfigError, add_config_arguments, config_from_args, config_hash
from eqscale.data.token_format import (
    SPLIT_RULE, SPLITS, STATS_FORMAT, STATS_NAME, SUBSET_RULE, TOKEN_FORMAT, TOKEN_VERSION, contact_frames,
    contact_windows, num_token_shards, quaternions_to_matrices, shard_name, split_of,
)
from eqscale.io_utils import atomic_path, atomic_write_text, package_versions, remove_stale_temps
from eqscale.physics.assets import meshes_hash, read_meshes
from eqscale.physics.raw_format import ShardError, open_raw_shard, read_trajectory
from eqscale.physics.simulate import create_group

CHUNK_BYTES = 1 << 16  # ~64 KiB chunks: one trajectory's poses touch one or two chunks
_TOKEN_FILE = re.compile(r"^(train|val|test)-\d{4}\.h5$")


def _put(group: h5py.Group, name: str, data) -> None:
    """A checksummed, timestamp-free dataset chunked along its first axis."""
    data = np.asarray(data)
    row_bytes = max(1, data.dtype.itemsize * int(np.prod(data.shape[1:], dtype=np.int64)))
    rows = max(1, min(data.shape[0], CHUNK_BYTES // row_bytes))
    group.create_dataset(name, data=data, chunks=(rows,) + data.shape[1:], maxshape=(None,) + data.shape[1:],
                         fletcher32=True, track_times=False)


class AssetTable:
    """The canonical meshes flattened into offset arrays (what every token shard stores under /assets)."""

    def __init__(self, meshes: dict[str, tuple[np.ndarray, np.ndarray]]):
        self.asset_ids = sorted(meshes)
        self.row = {name: i for i, name in enumerate(self.asset_ids)}
        vertices = [np.asarray(meshes[n][0], np.float64) for n in self.asset_ids]
        faces = [np.asarray(meshes[n][1], np.int64) for n in self.asset_ids]
        self.vertex_offsets = np.concatenate([[0], np.cumsum([len(v) for v in vertices])]).astype(np.int64)
        self.face_offsets = np.concatenate([[0], np.cumsum([len(f) for f in faces])]).astype(np.int64)
        self.vertices = np.concatenate(vertices)
        self.faces = np.concatenate(faces).astype(np.int32)
        self.num_vertices = np.diff(self.vertex_offsets).astype(np.int32)
        self.num_faces = np.diff(self.face_offsets).astype(np.int32)
        # per-asset vertex moments: count, sum (3,), sum of outer products (3, 3) -- for exact stats
        self.first_moment = np.stack([v.sum(axis=0) for v in vertices])
        self.second_moment = np.stack([v.T @ v for v in vertices])

    def write(self, group: h5py.Group) -> None:
        """Store the table under `group`."""
        _put(group, "asset_ids", np.array(self.asset_ids, dtype="S"))
        _put(group, "vertex_offsets", self.vertex_offsets)
        _put(group, "face_offsets", self.face_offsets)
        _put(group, "vertices", self.vertices)
        _put(group, "faces", self.faces)


def write_token_shard(path: Path, split: str, shard: int, trajectories: list[dict], table: AssetTable,
                      header: dict) -> None:
    """Write one token shard atomically; `trajectories` are raw trajectory dicts plus `source_shard`."""
    asset_rows = np.array([table.row[a] for t in trajectories for a in t["asset_ids"]], dtype=np.int32)
    counts = [len(t["asset_ids"]) for t in trajectories]
    num_frames = int(header["num_frames"])

    def cat(key: str, shape: tuple, dtype) -> np.ndarray:
        parts = [np.asarray(t[key], dtype) for t in trajectories]
        return np.concatenate(parts) if parts else np.zeros((0,) + shape, dtype)

    with atomic_path(path) as tmp, h5py.File(tmp, "w") as fh:
        fh.attrs["format"] = TOKEN_FORMAT
        fh.attrs["format_version"] = TOKEN_VERSION
        fh.attrs["complete"] = False
        fh.attrs["split"] = split
        fh.attrs["shard"] = shard
        fh.attrs["num_trajectories"] = len(trajectories)
        fh.attrs["num_objects"] = int(sum(counts))
        for key, value in header.items():
            fh.attrs[key] = value
        table.write(create_group(fh, "assets"))
        group = create_group(fh, "trajectories")
        _put(group, "object_offsets", np.concatenate([[0], np.cumsum(counts)]).astype(np.int64))
        _put(group, "source_shard", np.array([t["source_shard"] for t in trajectories], dtype=np.int64))
        _put(group, "source_index", np.array([t["index"] for t in trajectories], dtype=np.int64))
        _put(group, "seed", np.array([t["seed"] for t in trajectories], dtype=np.int64))
        flags = [contact_frames(t["contacts"], num_frames) for t in trajectories]
        for i, key in enumerate(("object_contact", "floor_contact")):
            _put(group, key, np.stack([f[i] for f in flags]).astype(np.uint8) if flags
                 else np.zeros((0, num_frames), np.uint8))
        group = create_group(fh, "objects")
        _put(group, "asset", asset_rows)
        _put(group, "scale", cat("scales", (), np.float64))
        materials = [m for t in trajectories for m in t["materials"]]
        _put(group, "material", np.array(materials, dtype="S") if materials else np.zeros(0, "S1"))
        for key, raw_key in (("mass", "masses"), ("friction", "friction"), ("restitution", "restitution")):
            _put(group, key, cat(raw_key, (), np.float64))
        _put(group, "num_vertices", table.num_vertices[asset_rows])
        _put(group, "num_faces", table.num_faces[asset_rows])
        # object-major (M, T, .) so one trajectory's poses are one contiguous slab of rows
        _put(group, "positions", np.concatenate([np.swapaxes(t["positions"], 0, 1) for t in trajectories])
             if trajectories else np.zeros((0, num_frames, 3)))
        _put(group, "quaternions", np.concatenate([np.swapaxes(t["quaternions"], 0, 1) for t in trajectories])
             if trajectories else np.zeros((0, num_frames, 4)))
        fh.attrs["complete"] = True


class _Moments:
    """Running per-axis sums of a vector quantity over vertices: count, sum, sum of squares."""

    def __init__(self) -> None:
        self.count = 0
        self.total = np.zeros(3)
        self.squares = np.zeros(3)

    def add_affine(self, linear: np.ndarray, shift: np.ndarray, n: np.ndarray, s1: np.ndarray, s2: np.ndarray) -> None:
        """Add y = linear @ v + shift over every vertex v of every (frame, object); exact from moments.

        linear (F, K, 3, 3), shift (F, K, 3); n (K,), s1 (K, 3), s2 (K, 3, 3) the objects' vertex moments.
        """
        ls1 = np.einsum("fkij,kj->fki", linear, s1)
        self.count += int(n.sum()) * linear.shape[0]
        self.total += (ls1 + n[None, :, None] * shift).sum(axis=(0, 1))
        quad = np.einsum("fkij,kjl,fkil->fki", linear, s2, linear)  # diag(L S2 L^T)
        self.squares += (quad + 2 * shift * ls1 + n[None, :, None] * shift**2).sum(axis=(0, 1))

    def summary(self) -> dict:
        """mean and std per axis, and the root mean square over all axes."""
        count = max(self.count, 1)
        mean = self.total / count
        var = np.maximum(self.squares / count - mean**2, 0.0)
        return {"mean": mean.tolist(), "std": np.sqrt(var).tolist(),
                "rms": float(np.sqrt(self.squares.sum() / (3 * count)))}


class _SplitStats:
    """Counts, batch-structure moments and contact fractions of one split; normalisation moments when `moments`."""

    def __init__(self, horizon: int, moments: bool):
        self.horizon = horizon
        self.moments = moments
        self.trajectories = self.objects = self.faces = self.vertices = self.samples = 0
        self.max_faces = 0
        self.faces_sq = self.object_faces_sq = 0  # sums over trajectories (every sample of one has its structure)
        self.object_contact_samples = self.floor_contact_samples = 0
        self.position, self.velocity, self.displacement = _Moments(), _Moments(), _Moments()

    def add(self, trajectory: dict, table: AssetTable) -> None:
        rows = np.array([table.row[a] for a in trajectory["asset_ids"]])
        scales = np.asarray(trajectory["scales"], np.float64)
        n = table.num_vertices[rows].astype(np.float64)
        faces = int(table.num_faces[rows].sum())
        num_frames = trajectory["positions"].shape[0]
        self.trajectories += 1
        self.objects += len(rows)
        self.faces += faces
        self.vertices += int(n.sum())
        self.samples += max(0, num_frames - 1 - self.horizon)
        self.max_faces = max(self.max_faces, faces)
        self.faces_sq += faces * faces
        self.object_faces_sq += int((table.num_faces[rows].astype(np.int64) ** 2).sum())
        object_contact, floor_contact = contact_frames(trajectory["contacts"], num_frames)
        self.object_contact_samples += int(contact_windows(object_contact, self.horizon).sum())
        self.floor_contact_samples += int(contact_windows(floor_contact, self.horizon).sum())
        if not self.moments:
            return
        s1 = scales[:, None] * table.first_moment[rows]
        s2 = scales[:, None, None] ** 2 * table.second_moment[rows]
        rot = quaternions_to_matrices(trajectory["quaternions"])  # (T, K, 3, 3)
        pos = trajectory["positions"]
        self.position.add_affine(rot, pos, n, s1, s2)
        h = self.horizon
        cur = slice(1, num_frames - h)  # the samples' current frames t in [1, T-1-h]
        prev = slice(0, num_frames - h - 1)
        ahead = slice(1 + h, num_frames)
        self.velocity.add_affine(rot[cur] - rot[prev], pos[cur] - pos[prev], n, s1, s2)
        self.displacement.add_affine(rot[ahead] - rot[cur], pos[ahead] - pos[cur], n, s1, s2)

    def summary(self) -> dict:
        out = {"trajectories": self.trajectories, "objects": self.objects, "faces": self.faces,
               "vertices": self.vertices, "samples": self.samples, "max_faces_per_scene": self.max_faces,
               "mean_faces_per_scene": self.faces / max(self.trajectories, 1),
               "mean_objects_per_scene": self.objects / max(self.trajectories, 1),
               # per-sample expectations of a batch's structure (eqscale.models.counts.BatchStructure
               # of one scene): what FLOPs and memory of a step are linear in
               "structure_per_sample": {
                   "tokens": self.faces / max(self.trajectories, 1),
                   "scene_tokens_sq": self.faces_sq / max(self.trajectories, 1),
                   "object_tokens_sq": self.object_faces_sq / max(self.trajectories, 1),
                   "objects": self.objects / max(self.trajectories, 1),
                   "scenes": 1.0},
               "object_contact_fraction": self.object_contact_samples / max(self.samples, 1),
               "floor_contact_fraction": self.floor_contact_samples / max(self.samples, 1)}
        if self.moments:
            out["normalisation"] = {
                "vertex_position": self.position.summary(),
                "vertex_velocity": self.velocity.summary(),
                "vertex_displacement_horizon": self.displacement.summary(),
            }
        return out


def _read_headers(raw_paths: list[Path], config: dict, meshes_sha: str) -> dict[int, dict]:
    """Check every raw shard's header; return {shard number: {path, attrs, names}}."""
    shards: dict[int, dict] = {}
    first: dict | None = None
    for path in raw_paths:
        with open_raw_shard(path) as fh:
            attrs = {k: (v.item() if hasattr(v, "item") else v) for k, v in fh.attrs.items()}
            names = sorted(fh["trajectories"])
            indices = [int(fh["trajectories"][name].attrs["index"]) for name in names]
        if attrs["global_seed"] != config["seed"]:
            raise ShardError(f"raw shard {path} was simulated with seed {attrs['global_seed']}, the config says "
                             f"seed {config['seed']}: tokenize with the config the shards were simulated with")
        if attrs.get("meshes_sha256") and attrs["meshes_sha256"] != meshes_sha:
            raise ShardError(f"raw shard {path} was simulated with other asset geometry than the assets given "
                             f"(meshes_sha256 {attrs['meshes_sha256'][:12]} vs {meshes_sha[:12]}): "
                             "rebuild the shards or pass their assets")
        if first is None:
            first = {"path": path, **attrs}
        for key in ("config_hash", "num_frames", "frame_rate"):
            if attrs[key] != first[key]:
                raise ShardError(f"raw shard {path} has {key} {attrs[key]!r} but {first['path']} has "
                                 f"{first[key]!r}: all shards must come from one simulation config")
        shard = int(attrs["shard"])
        if shard in shards:
            raise ShardError(f"raw shards {shards[shard]['path']} and {path} are both shard {shard}")
        shards[shard] = {"path": path, "attrs": attrs, "names": dict(zip(indices, names))}
    return shards


def tokenize(raw_paths: list[str | Path], asset_dir: str | Path, out_dir: str | Path, config: dict,
             progress: bool = True) -> dict:
    """Tokenize `raw_paths` into `out_dir`; return the stats written to stats.json."""
    raw_paths = [Path(p) for p in raw_paths]
    if not raw_paths:
        raise ShardError("no raw shards given (pass --raw results/raw/shard-*.h5)")
    out_dir = Path(out_dir)
    tok = config["tokens"]
    horizon, per_shard = tok["horizon"], tok["trajectories_per_shard"]
    meshes = read_meshes(asset_dir)
    table = AssetTable(meshes)
    meshes_sha = meshes_hash(meshes)
    shards = _read_headers(raw_paths, config, meshes_sha)
    any_attrs = next(iter(shards.values()))["attrs"]
    num_frames = int(any_attrs["num_frames"])
    if num_frames < horizon + 2:
        raise ConfigError(f"config key tokens.horizon: {horizon} leaves no sample in trajectories of {num_frames} "
                          f"frames (a sample needs frames t-1, t and t+h with t >= 1)")
    # one generation: the old stats.json goes before any shard is rewritten, so a run killed half-way leaves
    # no stats.json that lists old shards beside new ones (the loader refuses a directory without one)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / STATS_NAME).unlink(missing_ok=True)
    remove_stale_temps(out_dir / STATS_NAME, ".*.h5.*.tmp")
    assignment: dict[str, list[tuple[int, int]]] = {split: [] for split in SPLITS}
    for shard, info in sorted(shards.items()):
        for index in sorted(info["names"]):
            split = split_of(config["seed"], shard, index, tok["val_fraction"], tok["test_fraction"])
            assignment[split].append((shard, index))
    header = {
        "num_frames": num_frames, "frame_rate": int(any_attrs["frame_rate"]), "global_seed": int(config["seed"]),
        "meshes_sha256": meshes_sha, "raw_config_hash": str(any_attrs["config_hash"]),
        "raw_shards_json": json.dumps([{"shard": s, "name": shards[s]["path"].name,
                                        "num_trajectories": len(shards[s]["names"])} for s in sorted(shards)]),
        "tokens_config_json": json.dumps(tok, sort_keys=True),
        "split_rule": SPLIT_RULE,
        "versions_json": json.dumps(package_versions("eqscale", "numpy", "h5py"), sort_keys=True),
    }
    total = sum(len(v) for v in assignment.values())
    bar = None
    if progress:
        bar = tqdm(total=total, desc="tokenize", unit="traj", file=sys.stderr)
    handles: dict[int, h5py.File] = {}
    stats = {split: _SplitStats(horizon, moments=(split == "train")) for split in SPLITS}
    written: dict[str, list[dict]] = {split: [] for split in SPLITS}
    try:
        for split in SPLITS:
            items = assignment[split]
            for j in range(num_token_shards(len(items), per_shard)):
                trajectories = []
                for shard, index in items[j * per_shard:(j + 1) * per_shard]:
                    info = shards[shard]
                    if shard not in handles:
                        handles[shard] = open_raw_shard(info["path"])
                    group = handles[shard]["trajectories"][info["names"][index]]
                    trajectory = read_trajectory(group, info["path"])
                    trajectory["source_shard"] = shard
                    stats[split].add(trajectory, table)
                    trajectories.append(trajectory)
                    if bar is not None:
                        bar.update(1)
                path = out_dir / shard_name(split, j)
                write_token_shard(path, split, j, trajectories, table, header)
                written[split].append({"name": path.name, "trajectories": len(trajectories),
                                       "bytes": path.stat().st_size,
                                       "sha256": hashlib.sha256(path.read_bytes()).hexdigest()})
    finally:
        for fh in handles.values():
            fh.close()
        if bar is not None:
            bar.close()
    keep = {entry["name"] for entries in written.values() for entry in entries}
    for stale in sorted(out_dir.iterdir()):
        # token shards of an earlier run with more trajectories would otherwise linger
        if _TOKEN_FILE.match(stale.name) and stale.name not in keep:
            stale.unlink()
    result = {
        "format": STATS_FORMAT, "format_version": TOKEN_VERSION, "token_format": TOKEN_FORMAT,
        "horizon": horizon, "num_frames": num_frames, "frame_rate": header["frame_rate"],
        "global_seed": int(config["seed"]), "meshes_sha256": meshes_sha, "raw_config_hash": header["raw_config_hash"],
        "tokens_config_hash": config_hash(config, ["seed", "tokens"]), "tokens": tok,
        "split_rule": SPLIT_RULE, "subset_rule": SUBSET_RULE,
        "normalisation_note": ("train split only; vertex_position over every frame, vertex_velocity = x(t) - x(t-1) "
                               "and vertex_displacement_horizon = x(t+h) - x(t) over every sample's t in "
                               "[1, T-1-h]; per-axis mean/std over real vertices, rms over all axes (metres)"),
        "splits": {split: {**stats[split].summary(), "shards": written[split]} for split in SPLITS},
    }
    atomic_write_text(out_dir / STATS_NAME, json.dumps(result, indent=2, sort_keys=True) + "\n")
    return result


def main(argv: list[str] | None = None) -> int:
    """`eqscale tokenize --raw SHARD... --assets DIR --out DIR`: write token shards and stats.json."""
    parser = argparse.ArgumentParser(prog="eqscale tokenize", description=__doc__.splitlines()[0])
    add_config_arguments(parser)
    parser.add_argument("--raw", type=Path, nargs="+", required=True, help="raw shards (results/raw/shard-*.h5)")
    parser.add_argument("--assets", type=Path, default=Path("results/assets"), help="asset directory (meshes.h5)")
    parser.add_argument("--out", type=Path, default=Path("results/tokens"), help="output directory")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    try:
        config = config_from_args(args)
        result = tokenize(args.raw, args.assets, args.out, config, progress=not args.no_progress)
    except (ConfigError, ShardError, FileNotFoundError, ValueError) as err:
        print(f"eqscale tokenize: {err}", file=sys.stderr)
        return 1
    counts = ", ".join(f"{s} {result['splits'][s]['trajectories']}" for s in SPLITS)
    print(f"eqscale tokenize: {counts} trajectories -> {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
