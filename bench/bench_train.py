"""Training on packed batches: throughput against the padded implementation, peak memory, FLOPs per step.

    .venv/bin/python bench/bench_train.py [--threads 2] [--steps 2]     # tokens/s, packed vs padded, same run
    .venv/bin/python bench/bench_train.py --workloads default           # only the default config's batches
    .venv/bin/python bench/bench_train.py --memory [--sizes s]          # peak memory, one paper-scale scene
    .venv/bin/python bench/bench_train.py --flops                       # FLOPs split, exponents, budgets
    .venv/bin/python bench/bench_train.py --device cuda                 # packed throughput on a GPU (bf16)

Throughput: one full optimizer step (forward, vertex MSE, backward, gradient clipping, AdamW) per
batch, `warmup` steps then `steps` timed steps over distinct batches, for every size of both families.
"padded" is the implementation before packing (git commit PADDED_COMMIT: every scene padded to the
largest of its batch, dense (B, 1, N, N) masks for object-local and global attention), exported with
`git archive` into bench/_out/padded_ref and run in a subprocess on the same samples, collated by its
own collate; the two run back to back per size, so they share the machine's load. Its outputs on the
first batch, with the packed model's weights, are compared with the packed outputs (max |difference|).
Workloads: (1) real default-config batches (the config's batch size, 4 since issue 15; data:
bench_loader.py's default-config assets and first raw shard, tokenized here); (2) one scene of 10
objects x 512 faces; (3) batches of 4 scenes of 3-10 objects with 98-512 faces each (triangle soups):
where padding to the largest scene costs most.
Tokens/s counts real faces only. Both run with subnormal floats flushed to zero (as `train_loop` does
on CPU; GATr's attention backward is ~3x slower without it), so the comparison isolates packing.

Memory (--memory): peak resident memory of one training step (fp32, CPU) on one scene of 10 objects
x 2,160 faces, each (model, size) in a fresh process: ru_maxrss after the step minus the resident
size before the model was built (the batch is built before), against `counts.peak_memory_bytes`.

FLOPs (--flops): `counts.step_flops` split into dense / attention / other per size for the default
study's expected batch (the bench data's stats.json) and the paper preset's nominal one, before
(padded accounting: every block charged N_padded^2) and after; the exponent p of FLOPs per step ~ N^p
(N = parameters) along each ladder; and, for every cell of config.yaml's grid, the steps
`counts.steps_for_budget` picks from the loader's exact batch structures and the resulting FLOPs/budget.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import pickle
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from bench_loader import build_data, machine
from bench_models import soup_scene
from eqscale.config import load_config
from eqscale.data.batch import batch_structure, collate_scenes, vertex_mse
from eqscale.data.dataset import make_loader
from eqscale.data.tokenize import tokenize
from eqscale.models import counts
from eqscale.models.registry import build_model
from eqscale.training.loop import build_optimizer

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "bench" / "_out"
PADDED_COMMIT = "b3f03ec"  # the last commit whose models padded every batch to its largest scene
SIZES = ("xxs", "xs", "s")

# run inside the padded implementation's tree (PYTHONPATH): its collate, models and loss, our samples
PADDED_WORKER = r"""
import pickle, sys, time, torch
from eqscale.data.dataset import collate_scenes
from eqscale.models.registry import build_model
from eqscale.training.loop import build_optimizer, vertex_loss
job = pickle.load(open(sys.argv[1], "rb"))
torch.set_num_threads(job["threads"])
torch.set_flush_denormal(True)  # as eqscale's training loop does on CPU now, so only packing differs
batches = [collate_scenes(samples) for samples in job["batches"]]
model = build_model(job["model"], job["size"])
model.load_state_dict(job["state_dict"])
model.eval()
with torch.no_grad():
    first = model(batches[0])[batches[0]["vertex_mask"]]
model.train()
optimizer = build_optimizer(model, lr=1e-4, weight_decay=0.01)
params = [p for p in model.parameters() if p.requires_grad]
times = []
for i, batch in enumerate(batches):
    start = time.perf_counter()
    loss = vertex_loss(model, batch)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, 1.0)
    optimizer.step()
    times.append(time.perf_counter() - start)
padded = [int(b["face_mask"].numel()) for b in batches]
pickle.dump({"times": times, "first": first, "padded_tokens": padded}, open(sys.argv[2], "wb"))
"""


def padded_tree() -> Path:
    """The padded implementation's source tree (exported from git once)."""
    tree = OUT / "padded_ref"
    if not (tree / "src" / "eqscale" / "__init__.py").exists():
        tree.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "-C", str(REPO), "archive", PADDED_COMMIT, "src/eqscale"], check=True,
                                 capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    return tree / "src"


def run_padded(model: str, size: str, batches: list[list[dict]], state_dict: dict, threads: int) -> dict:
    """Time the padded implementation on the same samples (subprocess in its own source tree)."""
    with tempfile.TemporaryDirectory() as tmp:
        job, result = Path(tmp) / "job.pkl", Path(tmp) / "result.pkl"
        job.write_bytes(pickle.dumps({"model": model, "size": size, "batches": batches, "threads": threads,
                                      "state_dict": {k: v.cpu() for k, v in state_dict.items()}}))
        env = {**os.environ, "PYTHONPATH": str(padded_tree()), "EPATH_USE_TF": "false"}
        subprocess.run([sys.executable, "-c", PADDED_WORKER, str(job), str(result)], check=True, env=env)
        return pickle.loads(result.read_bytes())


def run_packed(model_name: str, size: str, batches: list[list[dict]], device: torch.device,
               bf16: bool) -> tuple[dict, dict]:
    """(timing record, initial state dict) of the packed implementation on `batches` of samples."""
    torch.manual_seed(0)
    model = build_model(model_name, size, device)
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    packed = [{k: v.to(device) for k, v in collate_scenes(samples).items()} for samples in batches]
    model.eval()
    with torch.no_grad():
        first = model(packed[0]).cpu()
    model.train()
    optimizer = build_optimizer(model, lr=1e-4, weight_decay=0.01)
    params = [p for p in model.parameters() if p.requires_grad]
    autocast = torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
    times = []
    for batch in packed:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        with autocast:
            loss = vertex_mse(model(batch), batch["vertices_target"])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - start)
    return {"times": times, "first": first, "structures": [batch_structure(b) for b in packed]}, state


def bench_tokens(config: dict) -> Path:
    """The default config's first raw shard tokenized into bench/_out/train/tokens (token format of this code)."""
    raw = build_data(config, 1)
    tokens = OUT / "train" / "tokens"
    tokenize(raw, OUT / "loader" / "assets", tokens, config, progress=False)
    return tokens


def workloads(config: dict, warmup: int, steps: int) -> dict[str, list[list[dict]]]:
    """Per workload, the samples of each batch (warm-up batches first)."""
    tokens = bench_tokens(config)
    loader = make_loader(tokens, "train", config["training"]["batch_size"], horizon=config["tokens"]["horizon"],
                         seed=0, epochs=None)
    n = warmup + steps
    real = [[loader.dataset[key] for key in loader.order.keys(s * loader.batch_size, (s + 1) * loader.batch_size)]
            for s in range(n)]
    rng = np.random.default_rng(0)
    mixed = [[soup_scene(list(rng.integers(98, 513, size=rng.integers(3, 11))), seed=10 * s + i, sample=i)
              for i in range(4)] for s in range(n)]
    big = [[soup_scene([512] * 10, seed=s)] for s in range(n)]
    return {f"default config, batch {loader.batch_size} (real data)": real, "10 x 512 faces, batch 1": big,
            "3-10 objects x 98-512 faces, batch 4": mixed}


def throughput(args: argparse.Namespace) -> None:
    """Print packed vs padded tokens/s for every workload and size."""
    config = load_config(REPO / "config.yaml")
    device = torch.device(args.device)
    bf16 = device.type == "cuda" and not args.no_bf16
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)  # what train_loop does on CPU
    print(f"# bench_train: {datetime.date.today()}, {machine()}, threads {args.threads}, "
          f"{'bf16 autocast' if bf16 else 'fp32'}, load {os.getloadavg()[0]:.1f}; {args.warmup} warm-up + "
          f"{args.steps} timed steps; padded = commit {PADDED_COMMIT}")
    print("| workload | model | size | real tokens/step | padded tokens/step | packed s/step | padded s/step | "
          "packed tokens/s | padded tokens/s | speed-up | max abs diff of outputs |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for workload, batches in workloads(config, args.warmup, args.steps).items():
        if args.workloads and not any(workload.startswith(prefix) for prefix in args.workloads):
            continue
        for model_name in args.models:
            for size in args.sizes:
                packed, state = run_packed(model_name, size, batches, device, bf16)
                real_tokens = np.mean([s.tokens for s in packed["structures"][args.warmup:]])
                packed_s = np.mean(packed["times"][args.warmup:])
                row = (f"| {workload} | {model_name} | {size} | {real_tokens:,.0f} |")
                if device.type == "cpu" and not args.no_padded:
                    padded = run_padded(model_name, size, batches, state, args.threads)
                    padded_s = np.mean(padded["times"][args.warmup:])
                    diff = float((padded["first"] - packed["first"]).abs().max())
                    row += (f" {np.mean(padded['padded_tokens'][args.warmup:]):,.0f} | {packed_s:.3f} | "
                            f"{padded_s:.3f} | {real_tokens / packed_s:,.0f} | {real_tokens / padded_s:,.0f} | "
                            f"{padded_s / packed_s:.2f}x | {diff:.1e} |")
                else:
                    row += f" - | {packed_s:.3f} | - | {real_tokens / packed_s:,.0f} | - | - | - |"
                print(row, flush=True)


# ---------------------------------------------------------------------------------------------
# Memory


def _rss_bytes() -> int:
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) * 1024 for line in fh if line.startswith("VmRSS:"))


def memory_worker(model_name: str, size: str) -> None:
    """One training step on a 10 x 2,160-face scene in this fresh process; print the peak memory as JSON."""
    torch.set_num_threads(2)
    torch.set_flush_denormal(True)
    batch = collate_scenes([soup_scene([2160] * 10)])
    torch.ones(8) @ torch.ones(8)  # thread pools and allocator set up before the baseline
    baseline = _rss_bytes()
    model = build_model(model_name, size)
    optimizer = build_optimizer(model, lr=1e-4, weight_decay=0.01)
    start = time.perf_counter()
    loss = vertex_mse(model(batch), batch["vertices_target"])
    loss.backward()
    optimizer.step()
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    estimate = counts.peak_memory_bytes(model_name, size, batch_structure(batch))
    print(json.dumps({"measured": peak - baseline, "estimate": estimate["total"], "seconds": seconds,
                      "params": estimate["params"] + estimate["optimizer"], "activations": estimate["activations"]}))


def memory(args: argparse.Namespace) -> None:
    """Print measured and estimated peak memory of one step on a paper-scale scene."""
    print(f"# bench_train --memory: {datetime.date.today()}, {machine()}, fp32, 2 threads, one scene of 10 x 2,160 "
          f"faces (21,600 tokens), one step (forward, backward, AdamW); load {os.getloadavg()[0]:.1f}")
    print("| model | size | measured peak (GB) | estimate (GB) | of which activations | estimate / measured | "
          "step time (s) | padded masks alone (GB) |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    masks = 2 * 21600**2 * 4 / 1e9  # the padded models' additive fp32 masks: object-local and global
    for model_name in args.models:
        for size in args.sizes:
            out = subprocess.run([sys.executable, __file__, "--memory-worker", model_name, size], check=True,
                                 capture_output=True, text=True).stdout
            r = json.loads(out.strip().splitlines()[-1])
            print(f"| {model_name} | {size} | {r['measured'] / 1e9:.2f} | {r['estimate'] / 1e9:.2f} | "
                  f"{r['activations'] / 1e9:.2f} | {r['estimate'] / r['measured']:.2f} | {r['seconds']:.0f} | "
                  f"{masks:.1f} |", flush=True)


# ---------------------------------------------------------------------------------------------
# FLOPs


def _exponent(params: list[int], flops: list[float]) -> float:
    return float(np.polyfit(np.log(params), np.log(flops), 1)[0])


def _padded_structure(batch: int, faces: float, objects: float) -> counts.BatchStructure:
    # what the padded models computed: every block attends over the padded scene
    return counts.BatchStructure(tokens=batch * faces, scene_tokens_sq=batch * faces**2,
                                 object_tokens_sq=batch * faces**2, objects=batch * objects, scenes=batch)


def expected_max_objects(min_objects: int, max_objects: int, batch_size: int) -> float:
    """E[largest object count of `batch_size` scenes of U{min..max} objects] (the padded grid's nominal scene)."""
    n = max_objects - min_objects + 1
    return max_objects - sum((j / n) ** batch_size for j in range(1, n))


def mean_padded_faces(loader, steps: int = 2000) -> float:
    """Mean face slots per scene of the padded implementation: the largest scene of each batch, averaged."""
    _, indices = loader.order.arrays(0, steps * loader.batch_size)
    faces = loader.dataset.sample_structure(indices)[:, 0].reshape(steps, loader.batch_size)
    return float(faces.max(axis=1).mean())


def flops(args: argparse.Namespace) -> None:
    """Print the FLOPs split per size, the exponents, and FLOPs/budget of the default study's cells."""
    config = load_config(REPO / "config.yaml")
    paper = load_config(REPO / "presets" / "paper.yaml")
    tokens = bench_tokens(config)
    stats = json.loads((tokens / "stats.json").read_text())
    batch = config["training"]["batch_size"]
    per_sample = stats["splits"]["train"]["structure_per_sample"]
    default = counts.BatchStructure(**per_sample).scaled(batch)
    loader = make_loader(tokens, "train", batch, horizon=config["tokens"]["horizon"], seed=0, epochs=None)
    padded_faces = mean_padded_faces(loader)
    paper_batch = paper["training"]["batch_size"]
    # 98 .. 1586 faces per object, uniform: mean 842, so 6.5 objects make the paper's ~5,470 faces per scene
    paper_structure = counts.expected_structure(range(98, 1587), 3, 10, paper_batch)
    paper_padded = expected_max_objects(3, 10, paper_batch) * paper["assets"]["max_faces"]
    print(f"# bench_train --flops: {datetime.date.today()}; default batch = {batch} x the train split's per-sample means "
          f"({per_sample['tokens']:.0f} faces, {per_sample['objects']:.1f} objects per scene; padded: "
          f"{padded_faces:.0f} face slots per scene); paper batch = 16 scenes of U{{3..10}} objects with "
          f"U{{98..1586}} faces ({paper_structure.tokens / 16:.0f} faces per scene; padded: {paper_padded:.0f})")
    print("| batch | model | size | params | FLOPs/step | dense | attention | other | padded accounting: FLOPs/step "
          "| its attention share |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|")
    cases = {"default": (default, _padded_structure(batch, padded_faces, per_sample["objects"])),
             "paper": (paper_structure, _padded_structure(paper_batch, paper_padded, paper_structure.objects / 16))}
    exponents = []
    for case, (structure, padded) in cases.items():
        for model_name in ("gatr", "transformer"):
            ladder = SIZES if case == "default" else tuple(counts.SIZES[model_name])
            params, after, before = [], [], []
            for size in ladder:
                parts = counts.step_flops(model_name, size, structure)
                old = counts.step_flops(model_name, size, padded)
                params.append(counts.num_params(model_name, size))
                after.append(parts["total"])
                before.append(old["total"])
                t = parts["total"]
                print(f"| {case} | {model_name} | {size} | {params[-1]:,} | {t:.3g} | {parts['dense'] / t:.0%} | "
                      f"{parts['attention'] / t:.0%} | {parts['other'] / t:.0%} | {old['total']:.3g} | "
                      f"{old['attention'] / old['total']:.0%} |")
            exponents.append((case, model_name, "-".join((ladder[0], ladder[-1])), _exponent(params, after),
                              _exponent(params, before)))
    print("\n| batch | model | ladder | p (packed, real tokens) | p (padded accounting) |")
    print("|---|---|---|---:|---:|")
    for case, model_name, ladder, p_after, p_before in exponents:
        print(f"| {case} | {model_name} | {ladder} | {p_after:.2f} | {p_before:.2f} |")
    budgets_table(config, tokens)


def budgets_table(config: dict, tokens: Path) -> None:
    """FLOPs/budget of every cell of config.yaml's grid when steps come from the loader's exact structures."""
    grid, training = config["grid"], config["training"]
    cells = [(model, model, size, budget, 1.0) for model, spec in grid["scaling"].items() for size in spec["sizes"]
             for budget in grid["scaling_budgets"]]
    de = grid["data_efficiency"]
    cells += [(arm, arm.split("+")[0], de["sizes"][arm.split("+")[0]], de["budget"], fraction) for arm in de["arms"]
              for fraction in de["fractions"]]
    print(f"\n| cell (config.yaml) | budget | steps | FLOPs / budget | without min_steps {grid['min_steps']}: steps, "
          "FLOPs / budget |")
    print("|---|---:|---:|---:|---:|")
    ratios = []
    for arm, model_name, size, budget, fraction in cells:
        loader = make_loader(tokens, "train", training["batch_size"], horizon=config["tokens"]["horizon"],
                             data_fraction=fraction, seed=0, epochs=None)
        mean = counts.step_flops(model_name, size, loader.dataset.expected_structure(training["batch_size"]))["total"]
        spent = []
        for min_steps in (grid["min_steps"], 1):
            steps = counts.steps_for_budget(model_name, size, budget, loader.structures, guess=int(budget / mean),
                                            min_steps=min_steps)
            total = float(np.sum(counts.step_flops(model_name, size, loader.structures(0, steps))["total"]))
            spent.append((steps, total / budget))
        ratios.append(spent[0][1])
        print(f"| {arm} {size} data {fraction:g} | {budget:.1e} | {spent[0][0]} | {spent[0][1]:.4f} | "
              f"{spent[1][0]}, {spent[1][1]:.4f} |")
    print(f"\nFLOPs / budget over {len(ratios)} cells: {min(ratios):.4f} .. {max(ratios):.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    parser.add_argument("--models", nargs="+", default=["gatr", "transformer"])
    parser.add_argument("--sizes", nargs="+", default=list(SIZES))
    parser.add_argument("--steps", type=int, default=2, help="timed steps (distinct batches)")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--no-bf16", action="store_true", help="fp32 on CUDA as well")
    parser.add_argument("--no-padded", action="store_true", help="skip the padded implementation")
    parser.add_argument("--workloads", nargs="+", metavar="PREFIX",
                        help="only the throughput workloads whose names start so (e.g. 'default' '10 x 512')")
    parser.add_argument("--memory", action="store_true", help="peak memory of one paper-scale step")
    parser.add_argument("--flops", action="store_true", help="FLOPs split, exponents and budgets")
    parser.add_argument("--memory-worker", nargs=2, metavar=("MODEL", "SIZE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_worker:
        memory_worker(*args.memory_worker)
    elif args.memory:
        memory(args)
    elif args.flops:
        flops(args)
    else:
        throughput(args)


if __name__ == "__main__":
    main()
