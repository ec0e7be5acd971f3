"""Token shard sizes and loader throughput on default-config data, against what the smallest models consume.

    .venv/bin/python bench/bench_loader.py [--batches 150] [--shards 2]

Builds (once) the default config's assets and its first `--shards` raw shards into
bench/_out/loader/, tokenizes them (timed), then reports:
- token shard bytes per trajectory, projected to the default study's trajectory count (raw shards beside);
- the training stream's samples/s and real-face tokens/s at batch_size = training.batch_size, without
  and with augmentation, in-process (0 workers) and with 1 and 2 worker processes, cold (first
  batches: every trajectory read from disk) and warm (the per-worker cache holds the split);
- forward+backward time of the smallest size of each model on real batches at training.threads
  threads: the rate training consumes samples, and the loader's margin over it.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("EPATH_USE_TF", "false")

import torch  # noqa: E402

from eqscale.config import load_config  # noqa: E402
from eqscale.data.batch import num_scenes, vertex_mse  # noqa: E402
from eqscale.data.dataset import train_batch_stream  # noqa: E402
from eqscale.data.tokenize import tokenize  # noqa: E402
from eqscale.models.counts import SIZES, num_params  # noqa: E402
from eqscale.models.registry import build_model  # noqa: E402
from eqscale.physics.assets import build_asset_dir  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "bench" / "_out" / "loader"


def machine() -> str:
    """CPU model name (lscpu), core count, Python and torch versions."""
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        model = next(line.split(":", 1)[1].strip() for line in lscpu.splitlines() if line.startswith("Model name"))
    except (OSError, subprocess.CalledProcessError, StopIteration):
        model = platform.processor() or "unknown CPU"
    return f"{model}, {os.cpu_count()} cores, Python {platform.python_version()}, torch {torch.__version__}"


def build_data(config: dict, shards: int) -> list[Path]:
    """The default config's assets and first raw shards under bench/_out/loader (built when absent)."""
    assets = OUT / "assets"
    if not (assets / "meshes.h5").exists():
        a = config["assets"]
        print(f"building assets ({len(a['shapes'])} shapes, max_faces {a['max_faces']}) ...", flush=True)
        build_asset_dir(assets, a["shapes"], a["max_faces"], a["vhacd_resolution"], progress=True)
    raw = []
    for shard in range(shards):
        path = OUT / "raw" / f"shard-{shard:04d}.h5"
        if not path.exists():
            # in a subprocess: kubric's TensorFlow stand-in would stay in this process's sys.modules
            subprocess.run([sys.executable, "-m", "eqscale", "simulate", "--configfile", str(REPO / "config.yaml"),
                            "--shard", str(shard), "--assets", str(assets), "--out", str(path)], check=True)
        raw.append(path)
    return raw


def loader_rate(tokens_dir: Path, config: dict, augment: bool, workers: int, skip: int,
                batches: int) -> tuple[float, float]:
    """(samples/s, real-face tokens/s) of the training stream over `batches` batches after the first `skip`."""
    stream = train_batch_stream(tokens_dir, batch_size=config["training"]["batch_size"],
                                horizon=config["tokens"]["horizon"], data_fraction=1.0, augment=augment, seed=0,
                                num_workers=workers)
    it = stream(0)
    for _ in range(skip):
        next(it)
    samples = tokens = 0
    start = time.perf_counter()
    for _ in range(batches):
        batch = next(it)
        samples += num_scenes(batch)
        tokens += batch["faces"].shape[0]
    elapsed = time.perf_counter() - start
    del it
    return samples / elapsed, tokens / elapsed


def model_rate(model_name: str, tokens_dir: Path, config: dict, repeats: int = 7) -> tuple[str, float, float]:
    """(size, samples/s, tokens/s) one training step of the smallest `model_name` consumes (median step)."""
    size = min(SIZES[model_name], key=lambda s: num_params(model_name, s))
    model = build_model(model_name, size)
    stream = train_batch_stream(tokens_dir, batch_size=config["training"]["batch_size"],
                                horizon=config["tokens"]["horizon"], seed=0, num_workers=0)
    it = stream(0)
    batches = [next(it) for _ in range(repeats + 1)]
    times = []
    for batch in batches:
        start = time.perf_counter()
        loss = vertex_mse(model(batch), batch["vertices_target"])
        loss.backward()
        model.zero_grad(set_to_none=True)
        times.append((time.perf_counter() - start, batch))
    times = times[1:]  # the first step warms up allocators and kernels
    step = statistics.median(t for t, _ in times)
    mean_tokens = statistics.mean(b["faces"].shape[0] for _, b in times)
    b = num_scenes(batches[0])
    return size, b / step, mean_tokens / step


def main() -> None:
    """Print the numbers recorded in bench/RESULTS.md."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=150, help="timed batches per loader setting")
    parser.add_argument("--shards", type=int, default=2, help="default-config raw shards to build and tokenize")
    args = parser.parse_args()
    config = load_config(REPO / "config.yaml")
    torch.set_num_threads(config["training"]["threads"])
    print(f"{datetime.date.today()}  {machine()}")
    raw = build_data(config, args.shards)
    tokens_dir = OUT / "tokens"
    start = time.perf_counter()
    stats = tokenize(raw, OUT / "assets", tokens_dir, config, progress=False)
    elapsed = time.perf_counter() - start
    splits = stats["splits"]
    n = sum(splits[s]["trajectories"] for s in splits)
    token_bytes = sum(e["bytes"] for s in splits for e in splits[s]["shards"])
    raw_bytes = sum(p.stat().st_size for p in raw)
    sim = config["simulation"]
    total = sim["num_shards"] * sim["trajectories_per_shard"]
    train = splits["train"]
    print(f"data: {n} trajectories x {stats['num_frames']} frames, {train['mean_objects_per_scene']:.1f} objects and "
          f"{train['mean_faces_per_scene']:.0f} faces per scene (max {train['max_faces_per_scene']})")
    print(f"tokenize: {n / elapsed:.0f} trajectories/s ({elapsed:.1f} s)")
    per_trajectory = token_bytes / n
    print(f"token shards: {per_trajectory / 1024:.1f} KiB/trajectory -> {per_trajectory * total / 1e6:.0f} MB for the "
          f"default {total} trajectories (raw shards: {raw_bytes / n / 1024:.1f} KiB/trajectory, "
          f"{raw_bytes / n * total / 1e6:.0f} MB)")
    rates = {}
    # cold: the first batches, every trajectory read from disk; warm: after each worker's cache holds the split
    for phase, skip in (("cold", 5), ("warm", 8 * train["trajectories"] // config["training"]["batch_size"])):
        for augment in (False, True):
            for workers in (0, 1, 2):
                samples, tokens = loader_rate(tokens_dir, config, augment, workers, skip, args.batches)
                rates[(phase, augment, workers)] = samples
                print(f"loader {phase} augment={int(augment)} workers={workers}: {samples:6.0f} samples/s "
                      f"{tokens:8.0f} tokens/s")
    for model_name in ("gatr", "transformer"):
        try:
            size, samples, tokens = model_rate(model_name, tokens_dir, config)
        except Exception as err:  # the model code is another stage's; report instead of failing the bench
            print(f"model {model_name}: not timed ({type(err).__name__}: {err})")
            continue
        margin = min(rates.values()) / samples
        print(f"model {model_name} {size} fwd+bwd, batch {config['training']['batch_size']}, "
              f"{config['training']['threads']} thread(s): {samples:.1f} samples/s {tokens:.0f} tokens/s; "
              f"slowest loader setting is {margin:.0f}x that")


if __name__ == "__main__":
    main()
