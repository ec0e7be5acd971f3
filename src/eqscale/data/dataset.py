"""Token shards -> packed batches (`eqscale.data.batch` layout): the Dataset and the loaders.

A sample is (trajectory, t) for t in [1, T-1-h]: every vertex of the scene at frames t-1 and t
(inputs) and t+h (target), posed from the stored canonical meshes and per-frame poses, and whether
objects touch each other / the floor in frames t-1 .. t+h. Samples are numbered trajectory-major:
index i is trajectory i // (T-1-h) at t = 1 + i % (T-1-h).

Integrity. Opening a dataset checks every shard of the split against stats.json: its sha256 and its
trajectory count (a shard replaced or damaged after tokenizing is refused, naming the file).

Order and resumption. A loader is an endless (or `epochs`-long) stream of sample positions p =
0, 1, 2, ...; position p is sample perm_e[p mod n] of epoch e = p // n, where perm_e is a
permutation seeded by (seed, e) (the identity without shuffling). Batch s holds positions
[s*B, (s+1)*B), so batches may straddle an epoch boundary and no sample is ever dropped during
training. Everything, including each sample's augmentation transform, is a pure function of
(seed, step), so `batches_from(s)` jumps straight to step s by index arithmetic and any number of
workers gives the same batches. For the same reason the structure of any future batch (tokens,
squared scene and object lengths, objects: what its FLOPs are linear in) is known without reading
data: `BatchLoader.structure(step)` and `structures(start, stop)`.

Workers open HDF5 files lazily in their own process (never inherited across fork) and keep an
LRU cache of trajectories (canonical geometry + poses), so repeated epochs stop touching disk.
"""

from __future__ import annotations

import hashlib
import itertools
import os
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from eqscale.data.augment import sample_transform, transform_points
from eqscale.data.batch import pack_samples, to_torch
from eqscale.data.token_format import (
    SPLITS, STATS_NAME, TokenShardError, contact_windows, open_token_shard, quaternions_to_matrices, read_dataset,
    read_stats,
    read_shard_index, subset_size, subset_unit,
)
from eqscale.models.counts import BatchStructure

CACHE_BYTES = 256 << 20  # per worker: the default study's whole training split fits
_ORDER_SALT = 0x5EED0  # separates the shuffling stream from other uses of the same seed


class _LRU:
    """A least-recently-used cache bounded by the bytes of its values."""

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self.bytes = 0
        self.items: OrderedDict = OrderedDict()  # key -> (value, nbytes)

    def get(self, key):
        item = self.items.get(key)
        if item is None:
            return None
        self.items.move_to_end(key)
        return item[0]

    def put(self, key, value, nbytes: int) -> None:
        self.items[key] = (value, nbytes)
        self.bytes += nbytes
        while self.bytes > self.max_bytes and len(self.items) > 1:
            _, (_, old_bytes) = self.items.popitem(last=False)
            self.bytes -= old_bytes


class TokenDataset(Dataset):
    """Samples (trajectory, t) of one split as dicts of numpy arrays (see `get_sample`)."""

    def __init__(self, tokens_dir: str | Path, split: str, horizon: int, data_fraction: float = 1.0,
                 augment: bool = False, seed: int = 0, cache_bytes: int = CACHE_BYTES, verify: bool = True):
        self.tokens_dir = Path(tokens_dir)
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r} (known: {', '.join(SPLITS)})")
        if not (isinstance(horizon, int) and horizon >= 1):
            raise ValueError(f"horizon must be an integer >= 1, got {horizon!r}")
        stats_path = self.tokens_dir / STATS_NAME
        stats = read_stats(self.tokens_dir)
        self.split, self.horizon, self.augment, self.seed = split, horizon, augment, seed
        self.cache_bytes = cache_bytes
        entries = stats["splits"][split]["shards"]
        self.paths = [self.tokens_dir / entry["name"] for entry in entries]
        if verify:
            for path, entry in zip(self.paths, entries):
                _check_sha256(path, entry["sha256"], stats_path)
        self._build_index(stats)
        for path, entry, count in zip(self.paths, entries, self._shard_trajectories):
            if count != entry["trajectories"]:
                raise TokenShardError(f"token shard {path} holds {count} trajectories, {stats_path} lists "
                                      f"{entry['trajectories']}: re-run eqscale tokenize")
        fraction_size = subset_size(data_fraction, self.num_trajectories_total) if self.num_trajectories_total else 0
        keys = np.array([subset_unit(self.global_seed, s, i) for s, i in zip(self._source_shard, self._source_index)])
        # the smallest keys win: a smaller fraction keeps a prefix of the same ranking (nested subsets)
        chosen = np.sort(np.argsort(keys, kind="stable")[:fraction_size])
        self.trajectories = chosen  # rows of the full split index, in file order
        self.samples_per_trajectory = self.num_frames - 1 - horizon
        if self.samples_per_trajectory < 1:
            raise ValueError(f"horizon {horizon} leaves no sample in trajectories of {self.num_frames} frames")
        if len(chosen) == 0:
            hint = "lower tokens.val_fraction/test_fraction" if split == "train" else f"raise tokens.{split}_fraction"
            raise ValueError(f"split {split!r} in {self.tokens_dir} has no trajectories: {hint} "
                             "or simulate more trajectories")
        faces = self._trajectory_faces[chosen]
        self._sample_structure = np.stack([faces, faces * faces, self._trajectory_object_faces_sq[chosen],
                                           self._object_count[chosen]], axis=1)  # per trajectory of the subset
        self._reset_worker_state()

    # ---- index -----------------------------------------------------------------------------

    def _build_index(self, stats: dict) -> None:
        files, rows, obj_start, obj_count, source_shard, source_index = [], [], [], [], [], []
        faces, faces_sq, object_contact, floor_contact = [], [], [], []
        self._object_asset: list[np.ndarray] = []
        self._object_scale: list[np.ndarray] = []
        self.num_frames = self.global_seed = self.meshes_sha256 = None
        for fid, path in enumerate(self.paths):
            index = read_shard_index(path)
            attrs = index["attrs"]
            if attrs["split"] != self.split:
                raise TokenShardError(f"token shard {path} holds split {attrs['split']!r}, expected {self.split!r}")
            for key in ("num_frames", "global_seed", "meshes_sha256"):
                if getattr(self, key) is None:
                    setattr(self, key, attrs[key])
                elif attrs[key] != getattr(self, key):
                    raise TokenShardError(f"token shard {path} has {key} {attrs[key]!r}, other shards of "
                                          f"{self.tokens_dir} have {getattr(self, key)!r}: re-run eqscale tokenize")
            if fid == 0:
                self.asset_ids = index["assets/asset_ids"]
                self._asset_vertices = index["assets/vertices"]
                self._asset_faces = index["assets/faces"].astype(np.int64)
                self._asset_vertex_offsets = index["assets/vertex_offsets"]
                self._asset_face_offsets = index["assets/face_offsets"]
            offsets = index["trajectories/object_offsets"]
            n = len(offsets) - 1
            files.append(np.full(n, fid))
            rows.append(np.arange(n))
            obj_start.append(offsets[:-1])
            obj_count.append(np.diff(offsets))
            source_shard.append(index["trajectories/source_shard"])
            source_index.append(index["trajectories/source_index"])
            self._object_asset.append(index["objects/asset"])
            self._object_scale.append(index["objects/scale"])
            object_faces = index["objects/num_faces"].astype(np.int64)
            per_object = np.concatenate([[0], np.cumsum(object_faces)])
            per_object_sq = np.concatenate([[0], np.cumsum(object_faces**2)])
            faces.append(per_object[offsets[1:]] - per_object[offsets[:-1]])
            faces_sq.append(per_object_sq[offsets[1:]] - per_object_sq[offsets[:-1]])
            object_contact.append(index["trajectories/object_contact"].astype(bool))
            floor_contact.append(index["trajectories/floor_contact"].astype(bool))
        if self.num_frames is None:
            raise FileNotFoundError(f"{self.tokens_dir / STATS_NAME} lists no {self.split} shards: "
                                    "re-run eqscale tokenize")
        cat = lambda parts: np.concatenate(parts).astype(np.int64)  # noqa: E731
        self._file, self._row = cat(files), cat(rows)
        self._object_start, self._object_count = cat(obj_start), cat(obj_count)
        self._source_shard, self._source_index = cat(source_shard), cat(source_index)
        self._trajectory_faces, self._trajectory_object_faces_sq = cat(faces), cat(faces_sq)
        self._shard_trajectories = [len(r) for r in rows]
        # per trajectory and sample t: objects touching each other / the floor in frames t-1 .. t+h
        self._object_contact = contact_windows(np.concatenate(object_contact), self.horizon)
        self._floor_contact = contact_windows(np.concatenate(floor_contact), self.horizon)
        self.num_trajectories_total = len(self._file)

    @property
    def num_trajectories(self) -> int:
        """Trajectories in this dataset (after `data_fraction`)."""
        return len(self.trajectories)

    def __len__(self) -> int:
        return len(self.trajectories) * self.samples_per_trajectory

    def sample_structure(self, indices: np.ndarray) -> np.ndarray:
        """(n, 4) int64 per sample index: its tokens, tokens^2, sum of object tokens^2, objects (no data read)."""
        return self._sample_structure[np.asarray(indices, dtype=np.int64) // self.samples_per_trajectory]

    def expected_structure(self, batch_size: int) -> BatchStructure:
        """Mean structure of a batch of `batch_size` samples drawn from this dataset."""
        mean = self._sample_structure.mean(axis=0)
        return BatchStructure(tokens=mean[0], scene_tokens_sq=mean[1], object_tokens_sq=mean[2], objects=mean[3],
                              scenes=1.0).scaled(batch_size)

    def locate(self, index: int) -> tuple[int, int]:
        """(trajectory number in this dataset, t) of sample `index`."""
        if not 0 <= index < len(self):
            raise IndexError(f"sample {index} outside [0, {len(self)})")
        return index // self.samples_per_trajectory, 1 + index % self.samples_per_trajectory

    def source_of(self, trajectory: int) -> dict:
        """Where a trajectory of this dataset came from: token shard file and row, raw shard and index."""
        row = self.trajectories[trajectory]
        return {"token_shard": str(self.paths[self._file[row]]), "row": int(self._row[row]),
                "source_shard": int(self._source_shard[row]), "source_index": int(self._source_index[row])}

    # ---- per-worker state ------------------------------------------------------------------

    def _reset_worker_state(self) -> None:
        self._pid = os.getpid()
        self._handles: dict = {}
        self._cache = _LRU(self.cache_bytes)

    def __getstate__(self) -> dict:
        # handles and caches never travel to another process
        state = dict(self.__dict__)
        for key in ("_handles", "_cache", "_pid"):
            state.pop(key, None)
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._reset_worker_state()

    def _handle(self, fid: int):
        if self._pid != os.getpid():
            # forked after files were opened: the inherited handles belong to the parent
            self._reset_worker_state()
        fh = self._handles.get(fid)
        if fh is None:
            fh = self._handles[fid] = open_token_shard(self.paths[fid])
        return fh

    def close(self) -> None:
        """Close this process's open shard files."""
        if self._pid == os.getpid():
            for fh in self._handles.values():
                fh.close()
        self._reset_worker_state()

    def trajectory(self, trajectory: int) -> dict:
        """Canonical scaled geometry and poses of one trajectory (cached per worker)."""
        row = int(self.trajectories[trajectory])
        if self._pid != os.getpid():
            self._reset_worker_state()
        entry = self._cache.get(row)
        if entry is not None:
            return entry
        fid, o0 = int(self._file[row]), int(self._object_start[row])
        o1 = o0 + int(self._object_count[row])
        fh = self._handle(fid)
        path = self.paths[fid]
        positions = read_dataset(fh, "objects/positions", path, np.s_[o0:o1])
        quaternions = read_dataset(fh, "objects/quaternions", path, np.s_[o0:o1])
        assets = self._object_asset[fid][o0:o1]
        scales = self._object_scale[fid][o0:o1]
        vo, fo = self._asset_vertex_offsets, self._asset_face_offsets
        nv = vo[assets + 1] - vo[assets]
        nf = fo[assets + 1] - fo[assets]
        vertex_start = np.concatenate([[0], np.cumsum(nv)[:-1]])
        vertices = np.concatenate([self._asset_vertices[vo[a]:vo[a + 1]] * s for a, s in zip(assets, scales)])
        faces = np.concatenate([self._asset_faces[fo[a]:fo[a + 1]] + v0 for a, v0 in zip(assets, vertex_start)])
        k = np.arange(len(assets))
        entry = {"vertices": vertices, "faces": faces, "vertex_object": np.repeat(k, nv),
                 "face_object": np.repeat(k, nf), "positions": positions, "quaternions": quaternions}
        self._cache.put(row, entry, sum(a.nbytes for a in entry.values()))
        return entry

    # ---- samples ---------------------------------------------------------------------------

    def get_sample(self, trajectory: int, t: int, transform=None) -> dict:
        """The scene of `trajectory` at frames (t-1, t, t+h), optionally moved by a symmetry transform.

        Returns float32 vertices_prev/curr/target (V, 3), int64 vertex_object (V,), faces (F, 3)
        (indices into V) and face_object (F,), num_objects, sample (its index), in_contact and
        floor_contact (contact in frames t-1 .. t+h).
        """
        if not 1 <= t <= self.num_frames - 1 - self.horizon:
            raise IndexError(f"t = {t} outside [1, {self.num_frames - 1 - self.horizon}]")
        entry = self.trajectory(trajectory)
        frames = [t - 1, t, t + self.horizon]
        rotations = quaternions_to_matrices(entry["quaternions"][:, frames])  # (K, 3 frames, 3, 3)
        obj = entry["vertex_object"]
        # every vertex at the three frames at once: R[k, f] @ v + p[k, f] for its object k
        posed = (rotations[obj] @ entry["vertices"][:, None, :, None])[..., 0] + entry["positions"][obj][:, frames]
        posed = np.swapaxes(posed, 0, 1)  # (3 frames, V, 3)
        if transform is not None:
            posed = transform_points(transform, posed)
        posed = posed.astype(np.float32)
        row = int(self.trajectories[trajectory])
        return {"vertices_prev": posed[0], "vertices_curr": posed[1], "vertices_target": posed[2],
                "vertex_object": obj, "faces": entry["faces"], "face_object": entry["face_object"],
                "num_objects": len(entry["positions"]), "sample": trajectory * self.samples_per_trajectory + t - 1,
                "in_contact": bool(self._object_contact[row, t - 1]),
                "floor_contact": bool(self._floor_contact[row, t - 1])}

    def __getitem__(self, key: int | tuple[int, int]) -> dict:
        """Sample `key` = index, or (epoch, index) whose epoch picks the augmentation transform."""
        epoch, index = key if isinstance(key, tuple) else (0, key)
        trajectory, t = self.locate(int(index))
        transform = sample_transform(self.seed, int(epoch), int(index)) if self.augment else None
        return self.get_sample(trajectory, t, transform)


class SampleOrder:
    """Stream position p -> (epoch, sample index): perm_e[p mod n] with e = p // n (see module docstring)."""

    def __init__(self, indices: np.ndarray, seed: int, shuffle: bool):
        self.indices = np.asarray(indices, dtype=np.int64)
        if len(self.indices) == 0:
            raise ValueError("no samples to order")
        self.seed, self.shuffle = seed, shuffle
        self._perms: OrderedDict[int, np.ndarray] = OrderedDict()

    def permutation(self, epoch: int) -> np.ndarray:
        """The sample indices of `epoch` in order (cached: a worker only ever needs one or two)."""
        if not self.shuffle:
            return self.indices
        perm = self._perms.get(epoch)
        if perm is None:
            rng = np.random.default_rng(np.random.SeedSequence([self.seed, epoch, _ORDER_SALT]))
            perm = self._perms[epoch] = self.indices[rng.permutation(len(self.indices))]
            while len(self._perms) > 2:
                self._perms.popitem(last=False)
        return perm

    def keys(self, start: int, stop: int) -> list[tuple[int, int]]:
        """(epoch, sample index) for stream positions [start, stop)."""
        epochs, indices = self.arrays(start, stop)
        return list(zip(epochs.tolist(), indices.tolist()))

    def arrays(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        """(epochs, sample indices) int64 arrays for stream positions [start, stop), vectorised per epoch."""
        n = len(self.indices)
        positions = np.arange(start, max(start, stop), dtype=np.int64)
        epochs = positions // n
        indices = np.empty_like(positions)
        for epoch in np.unique(epochs):
            here = epochs == epoch
            indices[here] = self.permutation(int(epoch))[positions[here] % n]
        return epochs, indices

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_perms": OrderedDict()}


class _Batches(Dataset):
    """Map-style dataset of whole batches: item s is batch s as numpy arrays (what DataLoader workers fetch).

    Workers hand numpy arrays back (pickled through the pipe) rather than tensors: torch's
    shared-memory transfer of nine small tensors per batch cost more than building the batch.
    """

    def __init__(self, dataset: TokenDataset, order: SampleOrder, batch_size: int, total: int | None):
        self.dataset, self.order, self.batch_size, self.total = dataset, order, batch_size, total

    def __getitem__(self, step: int) -> dict[str, np.ndarray]:
        start = step * self.batch_size
        stop = start + self.batch_size if self.total is None else min(start + self.batch_size, self.total)
        return pack_samples([self.dataset[key] for key in self.order.keys(start, stop)])


class _Steps(Sampler):
    """Step indices start, start+1, ... (endless when stop is None)."""

    def __init__(self, start: int, stop: int | None):
        self.start, self.stop = start, stop

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.start, self.stop)) if self.stop is not None else itertools.count(self.start)

    def __len__(self) -> int:
        if self.stop is None:
            raise TypeError("an endless step sampler has no length")
        return max(0, self.stop - self.start)


def _identity(batch):
    return batch


def _check_sha256(path: Path, expected: str, stats_path: Path) -> None:
    """Refuse a shard whose bytes are not the ones stats.json recorded."""
    try:
        with open(path, "rb") as fh:
            digest = hashlib.file_digest(fh, "sha256").hexdigest()
    except FileNotFoundError:
        raise TokenShardError(f"token shard {path} does not exist ({stats_path} lists it): re-run eqscale tokenize")
    if digest != expected:
        raise TokenShardError(f"token shard {path} has sha256 {digest[:12]}..., {stats_path} recorded "
                              f"{expected[:12]}...: the file changed after tokenizing; re-run eqscale tokenize")


class BatchLoader:
    """Batches of one split; `batches_from(s)` starts at step s without reading the batches before it."""

    def __init__(self, dataset: TokenDataset, batch_size: int, *, shuffle: bool, drop_last: bool,
                 epochs: int | None, num_workers: int, seed: int, start_step: int = 0,
                 sample_indices: np.ndarray | None = None):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if epochs is not None and epochs < 1:
            raise ValueError(f"epochs must be >= 1 or None (endless), got {epochs}")
        self.dataset, self.batch_size, self.num_workers = dataset, batch_size, num_workers
        self.seed, self.start_step = seed, start_step
        indices = np.arange(len(dataset)) if sample_indices is None else np.asarray(sample_indices)
        self.order = SampleOrder(indices, seed, shuffle)
        self.num_samples = len(indices)
        self.total = None if epochs is None else epochs * self.num_samples
        if self.total is None:
            self.num_batches = None
        else:
            self.num_batches = self.total // batch_size if drop_last else -(-self.total // batch_size)
        self._batches = _Batches(dataset, self.order, batch_size, self.total)

    @property
    def num_trajectories(self) -> int:
        """Trajectories the samples come from."""
        return self.dataset.num_trajectories

    def batch(self, step: int) -> dict[str, torch.Tensor]:
        """Batch `step` alone."""
        return to_torch(self._batches[step])

    def structures(self, start: int, stop: int) -> BatchStructure:
        """Structures of batches start .. stop-1 as arrays (one entry per step), from the sample order alone.

        A finite loader's steps past its end are left out (the arrays are shorter).
        """
        if self.num_batches is not None:
            stop = min(stop, self.num_batches)
        stop = max(start, stop)
        first = start * self.batch_size
        last = stop * self.batch_size if self.total is None else min(stop * self.batch_size, self.total)
        _, indices = self.order.arrays(first, last)
        per_sample = self.dataset.sample_structure(indices)
        starts = np.arange(0, max(last - first, 0), self.batch_size)
        sums = np.add.reduceat(per_sample, starts, axis=0) if len(starts) else np.zeros((0, 4), np.int64)
        scenes = np.diff(np.append(starts, last - first))
        return BatchStructure(tokens=sums[:, 0], scene_tokens_sq=sums[:, 1], object_tokens_sq=sums[:, 2],
                              objects=sums[:, 3], scenes=scenes)

    def structure(self, step: int) -> BatchStructure:
        """The structure of batch `step` (python ints), without reading any data."""
        arrays = self.structures(step, step + 1)
        if len(arrays.tokens) == 0:
            raise IndexError(f"step {step} is past the end of this loader ({self.num_batches} batches)")
        return BatchStructure(**{k: int(getattr(arrays, k)[0]) for k in ("tokens", "scene_tokens_sq",
                                                                         "object_tokens_sq", "objects", "scenes")})

    def batches_from(self, step: int = 0) -> Iterator[dict[str, torch.Tensor]]:
        """Batches step, step+1, ... (to the end, or forever for an endless loader)."""
        if step < 0:
            raise ValueError(f"start step must be >= 0, got {step}")
        stop = self.num_batches
        if stop is not None and step >= stop:
            return iter(())
        if self.num_workers == 0:
            steps = range(step, stop) if stop is not None else itertools.count(step)
            return (to_torch(self._batches[s]) for s in steps)
        loader = DataLoader(self._batches, batch_size=None, sampler=_Steps(step, stop), num_workers=self.num_workers,
                            collate_fn=_identity)
        return (to_torch(batch) for batch in loader)

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        return self.batches_from(self.start_step)

    def __len__(self) -> int:
        if self.num_batches is None:
            raise TypeError("an endless loader has no length")
        return max(0, self.num_batches - self.start_step)


def make_loader(tokens_dir: str | Path, split: str, batch_size: int, *, horizon: int, data_fraction: float = 1.0,
                augment: bool = False, seed: int = 0, num_workers: int = 0, shuffle: bool = True,
                drop_last: bool = False, start_step: int = 0, epochs: int | None = 1) -> BatchLoader:
    """Batches of `split` from `start_step` on: `epochs` passes (None: endless), order a function of (seed, epoch).

    drop_last drops a final short batch of a finite loader; an endless loader's batches are always full.
    """
    dataset = TokenDataset(tokens_dir, split, horizon, data_fraction=data_fraction, augment=augment, seed=seed)
    return BatchLoader(dataset, batch_size, shuffle=shuffle, drop_last=drop_last, epochs=epochs,
                       num_workers=num_workers, seed=seed, start_step=start_step)


class TrainBatchStream:
    """`stream(start_step)` -> endless iterator of training batches from that step (the training loop's contract).

    `loader` answers questions about future batches without reading data (`loader.structures`).
    """

    def __init__(self, loader: BatchLoader):
        self.loader = loader
        self.seed = loader.seed
        self.num_trajectories = loader.num_trajectories
        self.num_samples = loader.num_samples
        self.batch_size = loader.batch_size

    def __call__(self, start_step: int = 0) -> Iterator[dict[str, torch.Tensor]]:
        return self.loader.batches_from(start_step)


def train_batch_stream(tokens_dir: str | Path, *, batch_size: int, horizon: int, data_fraction: float = 1.0,
                       augment: bool = False, seed: int = 0, num_workers: int = 0) -> TrainBatchStream:
    """The training split as an endless, resumable batch stream (shuffled per epoch, optionally augmented)."""
    loader = make_loader(tokens_dir, "train", batch_size, horizon=horizon, data_fraction=data_fraction,
                         augment=augment, seed=seed, num_workers=num_workers, shuffle=True, epochs=None)
    return TrainBatchStream(loader)


def eval_loader(tokens_dir: str | Path, split: str = "test", *, batch_size: int, horizon: int,
                max_samples: int | None = None, num_workers: int = 0) -> BatchLoader:
    """Every sample of `split` once, in index order, no augmentation (or `max_samples` evenly spaced ones)."""
    dataset = TokenDataset(tokens_dir, split, horizon)
    indices = None
    if max_samples is not None and max_samples < len(dataset):
        # evenly spaced over the trajectory-major order: every trajectory and time range is represented
        indices = np.unique(np.linspace(0, len(dataset) - 1, max_samples).round().astype(np.int64))
    return BatchLoader(dataset, batch_size, shuffle=False, drop_last=False, epochs=1, num_workers=num_workers,
                       seed=0, sample_indices=indices)


def eval_batches(tokens_dir: str | Path, split: str = "test", *, batch_size: int, horizon: int,
                 max_samples: int | None = None, num_workers: int = 0) -> Iterator[dict[str, torch.Tensor]]:
    """Iterator over `eval_loader`'s batches."""
    return iter(eval_loader(tokens_dir, split, batch_size=batch_size, horizon=horizon, max_samples=max_samples,
                            num_workers=num_workers))
