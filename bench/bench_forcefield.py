"""Force-field training throughput: atoms/s and achieved FLOP/s of a full optimizer step, every family and size.

    .venv/bin/python bench/bench_forcefield.py                      # all families, sizes xs..l, 1 thread
    .venv/bin/python bench/bench_forcefield.py --sizes xs s m l xl --threads 2
    .venv/bin/python bench/bench_forcefield.py --device cuda        # a GPU, fp32

Workload: one step of what the force-field training will do (forward, per-atom energy L1 + force
L2 loss, backward, gradient clipping, Adam with foreach updates) on a batch of the 16 reference
molecules (registry.reference_batch: every 32nd molecule of the shipped list, RDKit conformers;
227 atoms) labelled with GFN2-xTB for real. Mean of `steps` steps after `warmup`. FLOPs are
C-convention training FLOPs: 3 x the forward FLOPs FlopCounterMode measures on the batch (equal
to the analytic count), so achieved FLOP/s = 3 x forward FLOPs / seconds per step.
"""

from __future__ import annotations

import argparse
import datetime
import platform
import time

import numpy as np
import torch

from eqscale.forcefield.dataset import to_batch
from eqscale.forcefield.labels import single_point, single_thread_openmp
from eqscale.forcefield.loss import forcefield_loss
from eqscale.forcefield.models import FAMILIES, build_model, measure_forward_flops, num_params
from eqscale.forcefield.models.registry import reference_batch_arrays
from eqscale.io_utils import package_versions


def labelled_reference_batch(device: torch.device) -> dict[str, torch.Tensor]:
    """The reference molecules with their GFN2-xTB energies (minus a per-atom mean) and forces."""
    numbers, positions, counts = reference_batch_arrays()
    starts = np.cumsum(counts) - counts
    labels = [single_point(numbers[s:s + n], positions[s:s + n]) for s, n in zip(starts, counts)]
    energies = np.array([e for e, _ in labels])
    # a crude reference (mean energy per atom) keeps the energy targets at the scale training sees
    energies = energies - counts * energies.sum() / counts.sum()
    return to_batch(numbers, positions, counts, energies, np.concatenate([f for _, f in labels]), device=device)


def time_training(family: str, size: str, batch: dict[str, torch.Tensor], steps: int, warmup: int,
                  device: torch.device) -> float:
    """Seconds per optimizer step (mean over `steps` after `warmup`)."""
    torch.manual_seed(0)
    model = build_model(family, size).to(device)
    params = list(model.parameters())
    optimizer = torch.optim.Adam(params, lr=1e-3, foreach=True)

    def step() -> None:
        loss = forcefield_loss(model(batch), batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0, foreach=True)
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
    """Print a Markdown table of every family and size."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", nargs="+", default=list(FAMILIES))
    parser.add_argument("--sizes", nargs="+", default=["xs", "s", "m", "l"])
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    single_thread_openmp()
    device = torch.device(args.device)
    batch = labelled_reference_batch(device)
    atoms = int(batch["numbers"].shape[0])
    versions = package_versions("torch", "e3nn")
    print(f"{datetime.date.today()}, {platform.processor() or platform.machine()}, {args.threads} thread(s), "
          f"{device}, fp32, " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    print(f"batch: 16 reference molecules, {atoms} atoms; mean of {args.steps} steps after {args.warmup}")
    print()
    print("| family | size | params | fwd FLOPs/atom | kappa (fwd FLOPs/atom/param) | ms/step | atoms/s "
          "| achieved FLOP/s |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for family in args.families:
        for size in args.sizes:
            forward = measure_forward_flops(build_model(family, size).to(device), batch)
            seconds = time_training(family, size, batch, args.steps, args.warmup, device)
            params = num_params(family, size)
            print(f"| {family} | {size} | {params:,} | {forward / atoms:.3g} | {forward / atoms / params:.1f} | "
                  f"{1e3 * seconds:.1f} | {atoms / seconds:,.0f} | {3 * forward / seconds:.2e} |", flush=True)


if __name__ == "__main__":
    main()
