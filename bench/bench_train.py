"""Training throughput: tokens/s and achieved FLOP/s of a full optimizer step, both models, three sizes.

    .venv/bin/python bench/bench_train.py                 # CPU, fp32, this machine's threads
    .venv/bin/python bench/bench_train.py --device cuda   # GPU, bf16 autocast, MFU vs --peak-flops

Workload: exactly what `eqscale train` does per step (forward, masked vertex MSE, backward,
gradient clipping, AdamW step) on a padded batch of `batch` scenes x `faces` face tokens
(4 objects per scene, default = the default config's nominal scene), timed over `steps` steps after
`warmup` steps. FLOPs are the analytic forward+backward count (`flops_per_step`, the number
run.json records; within 0.2% of FlopCounterMode), so "achieved FLOP/s" is model FLOP/s and
MFU = achieved / peak. Optimizer FLOPs are not counted (they are O(params), negligible here).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import platform
import time

import torch

from bench_models import synthetic_batch
from eqscale.models.registry import build_model, flops_per_step, num_params
from eqscale.training.loop import build_optimizer, vertex_loss

SIZES = ("xxs", "xs", "s")


def time_training(model_name: str, size: str, batch: dict[str, torch.Tensor], device: torch.device,
                  steps: int, warmup: int, bf16: bool) -> float:
    """Seconds per optimizer step (mean over `steps` after `warmup`)."""
    torch.manual_seed(0)
    model = build_model(model_name, size, device)
    model.train()
    optimizer = build_optimizer(model, lr=1e-4, weight_decay=0.01)
    params = [p for p in model.parameters() if p.requires_grad]
    autocast = (torch.autocast(device_type=device.type, dtype=torch.bfloat16) if bf16
                else contextlib.nullcontext())

    def step() -> None:
        with autocast:
            loss = vertex_loss(model, batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()

    for _ in range(warmup):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    parser.add_argument("--models", nargs="+", default=["gatr", "transformer"])
    parser.add_argument("--sizes", nargs="+", default=list(SIZES))
    parser.add_argument("--batch", type=int, default=8, help="scenes per step (default config's batch size)")
    parser.add_argument("--faces", type=int, default=344, help="face tokens per scene")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--no-bf16", action="store_true", help="fp32 on CUDA as well")
    parser.add_argument("--peak-flops", type=float, default=None,
                        help="device peak FLOP/s for MFU (default: 989e12 bf16 / 67e12 fp32 on CUDA, none on CPU)")
    args = parser.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    bf16 = device.type == "cuda" and not args.no_bf16
    peak = args.peak_flops
    if peak is None and device.type == "cuda":
        peak = 989e12 if bf16 else 67e12  # H100 SXM dense peaks; pass --peak-flops for other GPUs
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine()
    print(f"# bench_train: {datetime.date.today()}, {name}, torch {torch.__version__}, "
          f"{'bf16 autocast' if bf16 else 'fp32'}, threads {torch.get_num_threads()}, "
          f"load {os.getloadavg()[0]:.1f}, batch {args.batch} x {args.faces} faces, {args.steps} timed steps")
    print("| model | size | params | FLOPs/step | s/step | tokens/s | achieved FLOP/s |" + (" MFU |" if peak else ""))
    print("|---|---|---:|---:|---:|---:|---:|" + ("---:|" if peak else ""))
    batch = {k: v.to(device) for k, v in synthetic_batch(args.batch, args.faces).items()}
    tokens = args.batch * args.faces
    for model_name in args.models:
        for size in args.sizes:
            seconds = time_training(model_name, size, batch, device, args.steps, args.warmup, bf16)
            flops = flops_per_step(model_name, size, args.batch, args.faces)
            achieved = flops / seconds
            row = (f"| {model_name} | {size} | {num_params(model_name, size):,} | {flops:.3g} | {seconds:.3f} | "
                   f"{tokens / seconds:,.0f} | {achieved:.3g} |")
            print(row + (f" {100 * achieved / peak:.1f}% |" if peak else ""), flush=True)


if __name__ == "__main__":
    main()
