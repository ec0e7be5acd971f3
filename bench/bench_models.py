"""Model benchmarks on CPU: the block-diagonal attention candidates, and GATr against the reference GATr and ezgatr.

    .venv/bin/python bench/bench_models.py --attention [--repeats 5]     # candidates, 1 and 2 threads
    .venv/bin/python bench/bench_models.py [--threads 2] [--batch 4] [--tokens 256] [--repeats 7]

--attention: forward + backward of multi-query attention within blocks of packed tokens, for the
object-local and the global attention of (a) a default-config batch (8 scenes of 3-10 objects of
<= 96 faces, the asset face counts of `max_faces` 96) and (b) one scene of 10 objects x 512 faces;
8 heads of width 48 (GATr xs). Candidates: padding every scene to the longest with an additive mask
that allows pairs within a block (what the models did before packing), padding every block to the
longest block with a mask (`attention.padded_block_attention`, the tests' reference), one SDPA call per block, `eqscale.models.attention.block_attention`
(equal-length blocks grouped), nested jagged tensors with SDPA, flex_attention with a block mask
(eager and compiled). Median of `repeats` after a warm-up; candidates timed round-robin.

Default: GATr forward+backward time per token: ours (`eqscale.models.gatr.GATr`, the whole task
network on a packed batch of `batch` scenes x `tokens` face tokens, 4 objects per scene: embedding,
blocks alternating object-local and global attention, rigid fit) vs Qualcomm's reference `gatr.GATr`
(v1.4.x, same token count and input widths, join reference = input mean; timed without a mask and
with a global mask over each scene) and ezgatr's `MVOnlyGATrModel`. The comparison libraries are
optional: install them outside the repo (see bench/RESULTS.md); missing ones print "not installed".
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import subprocess
import time

import numpy as np
import torch
import torch.nn.functional as F

from eqscale.data.batch import collate_scenes, vertex_mse
from eqscale.models.attention import BlockLayout, block_attention, padded_block_attention
from eqscale.models.configs import GATrConfig
from eqscale.models.gatr import GATr

CONFIGS = [(8, 16, 4), (16, 32, 4), (16, 64, 8), (32, 64, 8)]
HEADS = 8
# face counts of the 11 assets at the default `max_faces` 96 (cone, cube, cylinder, gear, sphere, sponge, spot,
# suzanne, teapot, torus, torus_knot): objects draw assets uniformly
DEFAULT_FACE_COUNTS = (90, 12, 96, 96, 96, 96, 92, 96, 96, 96, 96)


def soup_scene(object_faces: list[int], seed: int = 0, sample: int = 0) -> dict:
    """A scene whose objects are triangle soups (own 3 vertices per face) of the given face counts."""
    rng = np.random.default_rng(seed)
    faces = sum(object_faces)
    prev = (3 * rng.standard_normal((3 * faces, 3))).astype(np.float32)
    curr = prev + 0.1 * rng.standard_normal(prev.shape).astype(np.float32)
    face_object = np.repeat(np.arange(len(object_faces)), object_faces)
    return {"vertices_prev": prev, "vertices_curr": curr, "vertices_target": curr + np.float32(0.1),
            "vertex_object": np.repeat(face_object, 3), "faces": np.arange(3 * faces).reshape(faces, 3),
            "face_object": face_object, "num_objects": len(object_faces), "sample": sample,
            "in_contact": False, "floor_contact": False}


def soup_batch(scenes: list[list[int]], seed: int = 0) -> dict[str, torch.Tensor]:
    """A packed batch of triangle-soup scenes (see `soup_scene`)."""
    return collate_scenes([soup_scene(objects, seed + i, i) for i, objects in enumerate(scenes)])


def default_config_scenes(batch: int = 8, seed: int = 0, face_counts=DEFAULT_FACE_COUNTS) -> list[list[int]]:
    """Per scene the face counts of 3-10 objects drawn from `face_counts` (the default config's scenes)."""
    rng = np.random.default_rng(seed)
    return [list(rng.choice(face_counts, size=rng.integers(3, 11))) for _ in range(batch)]


def interleaved_medians(steps: dict[str, object], repeats: int, warmup: int = 1) -> dict[str, float]:
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


# ---------------------------------------------------------------------------------------------
# Attention candidates


def _padded_scenes(scenes: BlockLayout):
    """What the models did before packing: every scene padded to the longest, one additive mask (B, 1, N, N)
    allowing pairs in the same block of `layout` (the same object, or the same scene)."""

    def run(q, k, v, layout):
        block = layout.block_index()
        scene = scenes.block_index()
        position = torch.arange(scenes.num_tokens) - torch.tensor(scenes.offsets[:-1])[scene]
        longest = max(scenes.lengths)
        index = torch.zeros(len(scenes.lengths), longest, dtype=torch.long)
        index[scene, position] = torch.arange(scenes.num_tokens)
        real = torch.zeros(len(scenes.lengths), longest, dtype=torch.bool)
        real[scene, position] = True
        padded_block = torch.where(real, block[index], -1)
        allowed = (padded_block[:, :, None] == padded_block[:, None, :]) & real[:, :, None] & real[:, None, :]
        allowed |= torch.eye(longest, dtype=torch.bool)
        mask = torch.zeros(allowed.shape).masked_fill_(~allowed, float("-inf"))[:, None]
        out = F.scaled_dot_product_attention(q[index].transpose(1, 2), k[index][:, None], v[index][:, None],
                                             attn_mask=mask, enable_gqa=True)
        return out.transpose(1, 2)[scene, position]

    return run


def _loop_per_block(q, k, v, layout):
    outs = []
    for a, b in zip(layout.offsets, layout.offsets[1:]):
        out = F.scaled_dot_product_attention(q[a:b].transpose(0, 1)[None], k[a:b][None, None], v[a:b][None, None],
                                             enable_gqa=True)
        outs.append(out[0].transpose(0, 1))
    return torch.cat(outs)


def _nested_jagged(q, k, v, layout):
    offsets = torch.tensor(layout.offsets)
    heads = q.shape[1]

    def jagged(x):
        return torch.nested.nested_tensor_from_jagged(x, offsets).transpose(1, 2)

    kk, vv = (x[:, None].expand(-1, heads, -1).contiguous() for x in (k, v))
    return F.scaled_dot_product_attention(jagged(q), jagged(kk), jagged(vv)).transpose(1, 2).values()


def _flex(compiled: bool, layout):
    from torch.nn.attention.flex_attention import create_block_mask, flex_attention

    block = layout.block_index()
    n = layout.num_tokens
    mask = create_block_mask(lambda b, h, i, j: block[i] == block[j], None, None, n, n, device="cpu")
    attend = torch.compile(flex_attention) if compiled else flex_attention

    def run(q, k, v, _layout):
        heads = q.shape[1]
        out = attend(q.transpose(0, 1)[None], k[None, None].expand(1, heads, n, -1),
                     v[None, None].expand(1, heads, n, -1), block_mask=mask)
        return out[0].transpose(0, 1)

    return run


def attention_candidates(layout: BlockLayout, scenes: BlockLayout, heads: int, width: int,
                         repeats: int) -> dict[str, str]:
    """Median forward+backward milliseconds (or the failure) of every candidate on `layout` (blocks within `scenes`)."""
    gen = torch.Generator().manual_seed(0)
    q = torch.randn(layout.num_tokens, heads, width, generator=gen, requires_grad=True)
    k = torch.randn(layout.num_tokens, width, generator=gen, requires_grad=True)
    v = torch.randn(layout.num_tokens, width, generator=gen, requires_grad=True)
    candidates = {"scenes padded + mask": _padded_scenes(scenes), "blocks padded + mask": padded_block_attention,
                  "loop per block": _loop_per_block,
                  "grouped (ours)": block_attention, "nested jagged": _nested_jagged}
    results, runnable = {}, {}
    for name, fn in [*candidates.items(), ("flex eager", None), ("flex compiled", None)]:
        try:
            fn = fn or _flex(name == "flex compiled", layout)
            fn(q, k, v, layout).sum().backward()  # fails here if it cannot run forward + backward

            def step(fn=fn):
                fn(q, k, v, layout).sum().backward()

            runnable[name] = step
        except Exception as err:  # a candidate torch cannot run here: report why
            results[name] = f"fails ({type(err).__name__}: {str(err).splitlines()[0][:48]})"
    for name, seconds in interleaved_medians(runnable, repeats).items():
        results[name] = f"{1e3 * seconds:.1f}"
    return results


def attention_bench(repeats: int) -> None:
    """Print the table of attention candidates recorded in bench/RESULTS.md."""
    heads, width = 8, 48
    default = default_config_scenes()
    default_scenes = BlockLayout(np.cumsum([0] + [sum(s) for s in default]).tolist())
    big_scene = BlockLayout([0, 5120])
    cases = {
        "default batch, object-local": (BlockLayout(np.cumsum([0] + [f for s in default for f in s]).tolist()),
                                        default_scenes),
        "default batch, global": (default_scenes, default_scenes),
        "10 x 512 scene, object-local": (BlockLayout(list(range(0, 5121, 512))), big_scene),
        "10 x 512 scene, global": (big_scene, big_scene),
    }
    names = ["scenes padded + mask", "blocks padded + mask", "loop per block", "grouped (ours)", "nested jagged",
             "flex eager", "flex compiled"]
    print(f"# {datetime.date.today()} | {machine()}")
    print(f"# attention forward+backward, fp32, {heads} heads x {width}, multi-query, median of {repeats}; ms")
    print("| case | threads | tokens | " + " | ".join(names) + " |")
    print("|---|---:|---:|" + "---:|" * len(names))
    for threads in (1, 2):
        torch.set_num_threads(threads)
        for case, (layout, scenes) in cases.items():
            results = attention_candidates(layout, scenes, heads, width, repeats)
            print(f"| {case} | {threads} | {layout.num_tokens} | " + " | ".join(results[n] for n in names) + " |",
                  flush=True)


# ---------------------------------------------------------------------------------------------
# GATr against the reference implementations


def ours_step(mv: int, s: int, blocks: int, batch: dict[str, torch.Tensor]):
    model = GATr(GATrConfig(mv_channels=mv, s_channels=s, num_blocks=blocks, num_heads=HEADS))

    def step():
        model.zero_grad(set_to_none=True)
        vertex_mse(model(batch), batch["vertices_target"]).backward()

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
    mask = torch.ones(batch_size, 1, tokens, tokens, dtype=torch.bool) if masked else None

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


def gatr_bench(args: argparse.Namespace) -> None:
    """Print the GATr comparison recorded in bench/RESULTS.md."""
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    configs = CONFIGS if args.configs is None else [tuple(map(int, c.split(","))) for c in args.configs.split(";")]
    n_tokens = args.batch * args.tokens
    per_object = args.tokens // 4
    batch = soup_batch([[per_object] * 4] * args.batch)
    print(f"# {datetime.date.today()} | {machine()}")
    print(f"# forward+backward, fp32, batch {args.batch} x {args.tokens} tokens, {HEADS} heads, "
          f"median of {args.repeats}; microseconds per token")
    print("| (mv, s, blocks) | ours | reference | reference + mask | ezgatr | ours / reference |")
    print("|---|---|---|---|---|---|")
    for mv, s, blocks in configs:
        runs = {
            "ours": ours_step(mv, s, blocks, batch),
            "reference": reference_step(mv, s, blocks, args.batch, args.tokens, masked=False),
            "reference + mask": reference_step(mv, s, blocks, args.batch, args.tokens, masked=True),
            "ezgatr": ezgatr_step(mv, blocks, args.batch, args.tokens),
        }
        medians = interleaved_medians({k: v for k, v in runs.items() if v is not None}, args.repeats)
        cells = {name: 1e6 * medians[name] / n_tokens if name in medians else None for name in runs}
        fmt = {k: "not installed" if v is None else f"{v:.0f}" for k, v in cells.items()}
        ratio = "-" if cells["reference"] is None else f"{cells['ours'] / cells['reference']:.2f}"
        print(f"| ({mv}, {s}, {blocks}) | {fmt['ours']} | {fmt['reference']} | {fmt['reference + mask']} | "
              f"{fmt['ezgatr']} | {ratio} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--attention", action="store_true", help="time the block-attention candidates")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--tokens", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--configs", type=str, default=None, help="e.g. '8,16,4;16,32,4'")
    args = parser.parse_args()
    if args.attention:
        attention_bench(args.repeats)
    else:
        gatr_bench(args)


if __name__ == "__main__":
    main()
