"""GATr forward+backward time per token on CPU: ours vs the reference GATr and ezgatr, matched configs.

    .venv/bin/python bench/bench_models.py [--threads 2] [--batch 4] [--tokens 256] [--repeats 7]

Workload: a padded batch of `batch` scenes x `tokens` face tokens (4 objects per scene), fp32,
one optimizer-free training step (forward, MSE, backward); median over `repeats` runs after a
warm-up, the implementations timed round-robin so that they share the machine's load (the
header prints the load average: on a shared machine absolute numbers drift, ratios less). Configs (mv, s, blocks) from DESIGN.md, 8 heads, multi-query attention.

- ours: `eqscale.models.gatr.GATr`, the whole task network (face embedding, blocks alternating
  object-local and global masked attention, rigid fit).
- reference: Qualcomm's `gatr.GATr` (v1.4.x) on the same token count with our input widths
  (7 mv + 12 scalar channels in, 3 mv out), join reference = input mean; timed without a mask
  (as in DESIGN.md) and with the global bool mask our blocks need.
- ezgatr: `MVOnlyGATrModel` (multivector channels only; each head has all channels).

The comparison libraries are optional: install them outside the repo (see bench/RESULTS.md);
missing ones print "not installed".
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import subprocess
import time

import torch

from eqscale.data.batch import masked_vertex_mse
from eqscale.models.gatr import GATr, GATrConfig, attention_masks

CONFIGS = [(8, 16, 4), (16, 32, 4), (16, 64, 8), (32, 64, 8)]
HEADS = 8


def synthetic_batch(batch: int, tokens: int, objects: int = 4, seed: int = 0) -> dict[str, torch.Tensor]:
    """Scenes of `tokens` triangles (own vertices each), split evenly between `objects` objects."""
    gen = torch.Generator().manual_seed(seed)
    verts = 3 * tokens
    prev = 3 * torch.randn(batch, verts, 3, generator=gen)
    curr = prev + 0.1 * torch.randn(batch, verts, 3, generator=gen)
    face_object = (torch.arange(tokens) * objects // tokens).expand(batch, tokens)
    return {
        "vertices_prev": prev, "vertices_curr": curr, "vertices_target": curr + 0.1,
        "vertex_object": face_object.repeat_interleave(3, dim=1),
        "vertex_mask": torch.ones(batch, verts, dtype=torch.bool),
        "faces": torch.arange(verts).reshape(1, tokens, 3).expand(batch, -1, -1),
        "face_object": face_object, "face_mask": torch.ones(batch, tokens, dtype=torch.bool),
        "object_mask": torch.ones(batch, objects, dtype=torch.bool),
    }


def interleaved_medians(steps: dict[str, object], repeats: int, warmup: int = 2) -> dict[str, float]:
    """Median wall time (s) of each step(), timed round-robin so all see the same machine load."""
    for step in steps.values():
        for _ in range(warmup):
            step()
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            start = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def ours_step(mv: int, s: int, blocks: int, batch: dict[str, torch.Tensor]):
    model = GATr(GATrConfig(mv_channels=mv, s_channels=s, num_blocks=blocks, num_heads=HEADS))

    def step():
        model.zero_grad(set_to_none=True)
        loss = masked_vertex_mse(model(batch), batch["vertices_target"], batch["vertex_mask"])
        loss.backward()

    return step


def reference_step(mv: int, s: int, blocks: int, batch_size: int, tokens: int, masked: bool):
    try:
        from gatr import GATr as RefGATr
        from gatr import MLPConfig, SelfAttentionConfig
    except ImportError:
        return None
    model = RefGATr(in_mv_channels=7, out_mv_channels=3, hidden_mv_channels=mv, in_s_channels=12,
                    out_s_channels=None, hidden_s_channels=s, num_blocks=blocks,
                    attention=SelfAttentionConfig(num_heads=HEADS, multi_query=True), mlp=MLPConfig())
    gen = torch.Generator().manual_seed(0)
    mv_in = torch.randn(batch_size, tokens, 7, 16, generator=gen)
    s_in = torch.randn(batch_size, tokens, 12, generator=gen)
    mask = None
    if masked:
        _, global_mask = attention_masks(torch.zeros(batch_size, tokens, dtype=torch.long),
                                         torch.ones(batch_size, tokens, dtype=torch.bool))
        mask = global_mask[:, None]

    def step():
        model.zero_grad(set_to_none=True)
        out_mv, _ = model(mv_in, scalars=s_in, attention_mask=mask)
        out_mv.square().mean().backward()

    return step


def ezgatr_step(mv: int, blocks: int, batch_size: int, tokens: int):
    try:
        from ezgatr.nets.mv_only_gatr import MVOnlyGATrConfig, MVOnlyGATrModel
    except ImportError:
        return None
    config = MVOnlyGATrConfig(num_layers=blocks, size_context=tokens, size_channels_in=7, size_channels_out=3,
                              size_channels_hidden=mv, size_channels_intermediate=mv, attn_num_heads=HEADS,
                              attn_is_causal=False)
    model = MVOnlyGATrModel(config)
    mv_in = torch.randn(batch_size, tokens, 7, 16, generator=torch.Generator().manual_seed(0))

    def step():
        model.zero_grad(set_to_none=True)
        model(mv_in).square().mean().backward()

    return step


def machine() -> str:
    """CPU model name and thread count."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        name = next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name"))
    except (OSError, StopIteration, subprocess.CalledProcessError):
        name = platform.processor() or "unknown CPU"
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return f"{name} ({os.cpu_count()} cores), {torch.get_num_threads()} threads, torch {torch.__version__}, load average {load}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--tokens", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--configs", type=str, default=None, help="e.g. '8,16,4;16,32,4'")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    configs = CONFIGS if args.configs is None else [tuple(map(int, c.split(","))) for c in args.configs.split(";")]
    n_tokens = args.batch * args.tokens
    batch = synthetic_batch(args.batch, args.tokens)

    print(f"# {datetime.date.today()} | {machine()}")
    print(f"# forward+backward, fp32, batch {args.batch} x {args.tokens} tokens, {HEADS} heads, "
          f"median of {args.repeats}; microseconds per token")
    print("| (mv, s, blocks) | ours | reference | reference + mask | ezgatr | ours / reference |")
    print("|---|---|---|---|---|---|")
    for mv, s, blocks in configs:
        cells = {}
        runs = {
            "ours": ours_step(mv, s, blocks, batch),
            "reference": reference_step(mv, s, blocks, args.batch, args.tokens, masked=False),
            "reference + mask": reference_step(mv, s, blocks, args.batch, args.tokens, masked=True),
            "ezgatr": ezgatr_step(mv, blocks, args.batch, args.tokens),
        }
        medians = interleaved_medians({k: v for k, v in runs.items() if v is not None}, args.repeats)
        for name in runs:
            cells[name] = 1e6 * medians[name] / n_tokens if name in medians else None
        fmt = {k: "not installed" if v is None else f"{v:.0f}" for k, v in cells.items()}
        ratio = "-" if cells["reference"] is None else f"{cells['ours'] / cells['reference']:.2f}"
        print(f"| ({mv}, {s}, {blocks}) | {fmt['ours']} | {fmt['reference']} | {fmt['reference + mask']} | "
              f"{fmt['ezgatr']} | {ratio} |", flush=True)


if __name__ == "__main__":
    main()
