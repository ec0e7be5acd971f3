"""The token shard format, the split rule and the data-fraction rule (layout in src/eqscale/data/README.md).

A token is one mesh face. A token shard stores, per trajectory, which canonical asset mesh each
object is and at what scale, plus every object's pose at every frame; the loader poses the meshes
for a sample. The file is self-contained: it carries the asset table it needs.

    / attrs   format = "eqscale-tokens", format_version = 2, complete (written last), split, shard,
              num_trajectories, num_objects, num_frames, frame_rate, global_seed, meshes_sha256,
              raw_config_hash, raw_shards_json, tokens_config_json, versions_json
    /assets        asset_ids (A,) S, vertex_offsets (A+1,) i8, face_offsets (A+1,) i8,
                   vertices (NV, 3) f8 canonical unscaled, faces (NF, 3) i4 local to the asset
    /trajectories  object_offsets (N+1,) i8, source_shard (N,) i8, source_index (N,) i8, seed (N,) i8,
                   object_contact (N, T) u1, floor_contact (N, T) u1: whether two objects touch / an
                   object touches the floor at frame f (the raw shard's contacts, force > 1e-6 N)
    /objects       asset (M,) i4, scale (M,) f8, material (M,) S, mass/friction/restitution (M,) f8,
                   num_vertices (M,) i4, num_faces (M,) i4,
                   positions (M, T, 3) f8 metres, quaternions (M, T, 4) f8 wxyz

Every dataset carries a Fletcher-32 checksum, so flipped bytes fail on read. Version 2 added the
contact flags; version-1 shards are refused with a request to re-run eqscale tokenize.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import h5py
import numpy as np

from eqscale.hdf5_io import open_checked
from eqscale.physics.raw_format import ShardError

TOKEN_FORMAT = "eqscale-tokens"
TOKEN_VERSION = 2
SPLITS = ("train", "val", "test")
STATS_NAME = "stats.json"
STATS_FORMAT = "eqscale-token-stats"

SPLIT_RULE = ("u = first 8 bytes (little-endian) of blake2b('eqscale-split:{global_seed}:{shard}:{index}') / 2^64; "
              "test if u < test_fraction, val if u < test_fraction + val_fraction, else train")
SUBSET_RULE = ("rank training trajectories by blake2b('eqscale-subset:{global_seed}:{shard}:{index}') and keep "
               "the first ceil(data_fraction * N): smaller fractions are subsets of larger ones")


class TokenShardError(ShardError):
    """A token shard is missing, truncated, corrupt, foreign or of another version; the message names the file."""


def _unit_hash(salt: str, global_seed: int, shard: int, index: int) -> float:
    digest = hashlib.blake2b(f"{salt}:{global_seed}:{shard}:{index}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") / 2.0**64


def split_unit(global_seed: int, shard: int, index: int) -> float:
    """The fixed number in [0, 1) that decides a raw trajectory's split."""
    return _unit_hash("eqscale-split", global_seed, shard, index)


def split_of(global_seed: int, shard: int, index: int, val_fraction: float, test_fraction: float) -> str:
    """train/val/test for trajectory `index` of raw shard `shard` (independent of every other trajectory)."""
    u = split_unit(global_seed, shard, index)
    # test first, so changing val_fraction never moves a trajectory into or out of the test split
    if u < test_fraction:
        return "test"
    if u < test_fraction + val_fraction:
        return "val"
    return "train"


def subset_unit(global_seed: int, shard: int, index: int) -> float:
    """The fixed rank key of a training trajectory for `data_fraction` subsets."""
    return _unit_hash("eqscale-subset", global_seed, shard, index)


def subset_size(data_fraction: float, num_trajectories: int) -> int:
    """ceil(data_fraction * N) trajectories (at least one); ValueError outside (0, 1]."""
    if not (isinstance(data_fraction, (int, float)) and 0.0 < data_fraction <= 1.0):
        raise ValueError(f"data_fraction must lie in (0, 1], got {data_fraction!r}")
    return max(1, math.ceil(data_fraction * num_trajectories - 1e-9))


def shard_name(split: str, shard: int) -> str:
    """File name of token shard `shard` of `split`."""
    return f"{split}-{shard:04d}.h5"


def num_token_shards(num_trajectories: int, trajectories_per_shard: int) -> int:
    """Token shards a split of `num_trajectories` fills (one, possibly empty, when the split is empty)."""
    return max(1, math.ceil(num_trajectories / trajectories_per_shard))


def planned_split_counts(config: dict) -> dict[str, int]:
    """Trajectories per split that tokenizing every raw shard of `config` gives (computed from the config alone)."""
    sim, tok = config["simulation"], config["tokens"]
    counts = dict.fromkeys(SPLITS, 0)
    for shard in range(sim["num_shards"]):
        for index in range(sim["trajectories_per_shard"]):
            counts[split_of(config["seed"], shard, index, tok["val_fraction"], tok["test_fraction"])] += 1
    return counts


def planned_token_files(config: dict) -> list[str]:
    """Names of every token shard `eqscale tokenize` writes for `config` (what Snakemake expects)."""
    per_shard = config["tokens"]["trajectories_per_shard"]
    counts = planned_split_counts(config)
    return [shard_name(split, j) for split in SPLITS for j in range(num_token_shards(counts[split], per_shard))]


def open_token_shard(path: str | Path) -> h5py.File:
    """Open a token shard read-only after checking it is a complete eqscale token shard of this version."""

    def counts_agree(fh: h5py.File) -> None:
        expected = int(fh.attrs["num_trajectories"])
        found = len(fh["trajectories/object_offsets"]) - 1
        if found != expected:
            raise TokenShardError(f"token shard {path} holds {found} trajectories, its header says {expected}")

    return open_checked(path, fmt=TOKEN_FORMAT, version=TOKEN_VERSION, what="token shard", error=TokenShardError,
                        rerun="re-run eqscale tokenize", check=counts_agree)


def read_stats(tokens_dir: str | Path) -> dict:
    """The token directory's stats.json, checked to be whole and to list every split; TokenShardError names it."""
    path = Path(tokens_dir) / STATS_NAME
    rerun = f"re-run eqscale tokenize --out {tokens_dir}"
    try:
        stats = json.loads(path.read_text())
    except FileNotFoundError:
        raise TokenShardError(f"{path} not found: {rerun}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise TokenShardError(f"{path} is not readable JSON (truncated by a killed tokenize?): {err}; {rerun}") from None
    splits = stats.get("splits") if isinstance(stats, dict) else None
    if not isinstance(splits, dict) or any(not isinstance(splits.get(s), dict) or "shards" not in splits[s]
                                           or "trajectories" not in splits[s] for s in SPLITS):
        raise TokenShardError(f"{path} lacks its per-split shard lists (written by another eqscale?); {rerun}")
    return stats


def split_size(tokens_dir: str | Path, split: str) -> int:
    """Trajectories in one split of a token directory (from its checked stats.json)."""
    return int(read_stats(tokens_dir)["splits"][split]["trajectories"])


def read_dataset(fh: h5py.File, key: str, path: str | Path, sel=()) -> np.ndarray:
    """fh[key][sel] with checksum and read errors turned into a TokenShardError naming the file."""
    try:
        return fh[key][sel]
    except (OSError, KeyError) as err:
        raise TokenShardError(f"token shard {path}: dataset {key!r} fails its checksum or cannot be read: "
                              f"{err}") from err


INDEX_KEYS = ("assets/asset_ids", "assets/vertex_offsets", "assets/face_offsets", "assets/vertices", "assets/faces",
              "trajectories/object_offsets", "trajectories/source_shard", "trajectories/source_index",
              "trajectories/seed", "trajectories/object_contact", "trajectories/floor_contact", "objects/asset",
              "objects/scale", "objects/num_vertices", "objects/num_faces")


def read_shard_index(path: str | Path) -> dict:
    """Every small array of a token shard (all but the poses) plus its attrs; refuses bad shards."""
    with open_token_shard(path) as fh:
        out = {key: read_dataset(fh, key, path) for key in INDEX_KEYS}
        out["attrs"] = {k: (v.item() if hasattr(v, "item") else v) for k, v in fh.attrs.items()}
    out["assets/asset_ids"] = [s.decode() for s in out["assets/asset_ids"]]
    return out


def verify_token_shard(path: str | Path) -> None:
    """Read every dataset of a token shard (checksums included); raise TokenShardError on any fault."""
    with open_token_shard(path) as fh:
        keys: list[str] = []
        fh.visit(lambda name: keys.append(name) if isinstance(fh[name], h5py.Dataset) else None)
        for key in keys:
            read_dataset(fh, key, path)


def contact_frames(contacts: np.ndarray, num_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """(object_contact, floor_contact) (T,) bool per frame from a raw trajectory's contacts (C, 4).

    A contact row is (frame, object a, object b or -1 for the floor, normal force).
    """
    contacts = np.asarray(contacts, dtype=np.float64).reshape(-1, 4)
    frames = contacts[:, 0].astype(np.int64)
    floor = contacts[:, 2] < 0
    object_contact = np.zeros(num_frames, dtype=bool)
    floor_contact = np.zeros(num_frames, dtype=bool)
    object_contact[frames[~floor]] = True
    floor_contact[frames[floor]] = True
    return object_contact, floor_contact


def contact_windows(frames: np.ndarray, horizon: int) -> np.ndarray:
    """Per sample t = 1 .. T-1-h (last axis): whether any frame of t-1 .. t+h is flagged in `frames` (..., T)."""
    frames = np.asarray(frames, dtype=bool)
    counts = np.concatenate([np.zeros(frames.shape[:-1] + (1,), np.int64), np.cumsum(frames, axis=-1)], axis=-1)
    num_frames = frames.shape[-1]
    t = np.arange(1, num_frames - horizon)
    return counts[..., t + horizon + 1] - counts[..., t - 1] > 0


def quaternions_to_matrices(wxyz: np.ndarray) -> np.ndarray:
    """Rotation matrices (..., 3, 3) of wxyz quaternions (..., 4), normalised first."""
    q = np.asarray(wxyz, dtype=np.float64)
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    w, x, y, z = np.moveaxis(q, -1, 0)
    xx, yy, zz, xy, xz, yz, wx, wy, wz = x * x, y * y, z * z, x * y, x * z, y * z, w * x, w * y, w * z
    rows = [1 - 2 * (yy + zz), 2 * (xy - wz), 2 * (xz + wy),
            2 * (xy + wz), 1 - 2 * (xx + zz), 2 * (yz - wx),
            2 * (xz - wy), 2 * (yz + wx), 1 - 2 * (xx + yy)]
    return np.stack(rows, axis=-1).reshape(q.shape[:-1] + (3, 3))
