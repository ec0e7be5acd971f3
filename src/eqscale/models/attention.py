"""Block-diagonal multi-query attention over packed tokens: the attention front end of both families.

Tokens of a batch are packed back to back (`eqscale.data.batch`): every object's faces, objects by
scene, scenes in batch order. Object-local attention attends within each object, global attention
within each scene; both are block-diagonal attention over contiguous blocks given by cu_seqlens
offsets. Nothing of shape N x N is built: each block of L tokens runs fused SDPA (flash kernels on
CPU and CUDA) without a mask, so memory is O(tokens x width) and FLOPs are those of the real
blocks (sum of L^2), which is what `counts.step_flops` charges.

How blocks are batched (`BlockLayout`): blocks of equal length form one group, run as one SDPA call
of shape (blocks, heads, L, width). Objects of one asset have the same face count, so the object
blocks of a batch fall into at most one group per asset (11 here); scenes rarely share a length, so
global attention is about one call per scene. Tokens are gathered into group order and back only when
the groups are not already contiguous (a permutation whose backward is the inverse permutation).

Chosen by measurement (bench/bench_models.py --attention; numbers in bench/RESULTS.md): forward +
backward on this CPU, fp32, 1 and 2 threads, for the object-local and the global attention of a
default-config batch (8 scenes of 3-10 objects of <= 96 faces, 5.5k tokens) and of one scene of
10 objects x 512 faces, 8 heads x 48. Candidates: every scene padded to the longest with one additive
(B, 1, N, N) mask (what the models did before: 7.7x slower than grouping for the default batch's
object-local attention, 12x for the 10 x 512 scene's, 1.8x for global attention, 1 thread); every
block padded to the longest block with a mask (as fast as grouping for the default batch's objects
of 12-96 faces, 1.2-1.7x slower elsewhere, and O(blocks x L_max^2) memory); one SDPA call per
block (3.5x slower for the default batch's ~50 objects: per-call overhead); nested jagged tensors
with SDPA (5-11x slower: no fused CPU kernel); flex_attention with a block mask, eager and compiled
("FlexAttention does not support backward on CPU" in torch 2.13). Grouping equal-length blocks was
the fastest or tied in every case at 1 thread. On CUDA the same code runs SDPA's flash kernel under
bf16 autocast; keys and values are expanded to every head there (a view), because the
memory-efficient kernel that fp32 inputs get has no grouped-query mode and would fall back to the
O(N^2) math kernel.

`padded_block_attention` is the reference (padding + additive mask, O(blocks x L_max^2) memory): the
tests assert that both agree, and the benchmarks use it to show what padding costs. Inside
`with padded_reference():` every `block_attention` call runs it instead (whole models, same weights).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

import torch
import torch.nn.functional as F


class _PermuteRows(torch.autograd.Function):
    """x[perm] whose backward is a gather by the inverse permutation (not a scatter-add)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, perm: torch.Tensor, inverse: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(inverse)
        return x.index_select(0, perm)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (inverse,) = ctx.saved_tensors
        return grad.index_select(0, inverse), None, None


class BlockLayout:
    """Contiguous blocks of packed tokens (cu_seqlens `offsets`), grouped by length for batched SDPA."""

    def __init__(self, offsets: torch.Tensor | list[int], device: torch.device | str | None = None) -> None:
        bounds = offsets.tolist() if isinstance(offsets, torch.Tensor) else list(offsets)
        if device is None:
            device = offsets.device if isinstance(offsets, torch.Tensor) else "cpu"
        if not bounds or bounds[0] != 0 or any(b < a for a, b in zip(bounds, bounds[1:])):
            raise ValueError(f"block offsets must start at 0 and not decrease, got {bounds[:8]}...")
        self.offsets = bounds
        self.lengths = [b - a for a, b in zip(bounds, bounds[1:])]
        self.num_tokens = bounds[-1]
        members: dict[int, list[int]] = {}
        for block, length in enumerate(self.lengths):
            if length:
                members.setdefault(length, []).append(block)
        self.groups = [(len(blocks), length) for length, blocks in members.items()]  # (blocks, length)
        order = [t for blocks in members.values() for b in blocks for t in range(bounds[b], bounds[b + 1])]
        self.perm = self.inverse = None
        if order != list(range(self.num_tokens)):
            perm = torch.tensor(order, dtype=torch.long)
            inverse = torch.empty_like(perm)
            inverse[perm] = torch.arange(len(perm))
            self.perm, self.inverse = perm.to(device), inverse.to(device)

    @property
    def squared_lengths(self) -> int:
        """Sum of squared block lengths: the (query, key) pairs attention really computes."""
        return sum(length * length for length in self.lengths)

    def block_index(self, device: torch.device | str | None = None) -> torch.Tensor:
        """Block number of every token (N,)."""
        lengths = torch.tensor(self.lengths, dtype=torch.long)
        index = torch.repeat_interleave(torch.arange(len(self.lengths)), lengths)
        return index if device is None else index.to(device)


@torch.compiler.disable
def batch_layouts(batch: dict[str, torch.Tensor]) -> tuple[BlockLayout, BlockLayout]:
    """(object-local, global) layouts of a packed batch: blocks are its objects and its scenes.

    Built in eager mode under torch.compile: the grouping is Python over the offsets' values.
    """
    return BlockLayout(batch["object_offsets"]), BlockLayout(batch["scene_offsets"])


def _sdpa_group(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, blocks: int, length: int,
                scale: float) -> torch.Tensor:
    heads, width = q.shape[1], q.shape[2]
    q = q.view(blocks, length, heads, width).transpose(1, 2)  # (n, H, L, W)
    k = k.view(blocks, 1, length, width)
    v = v.view(blocks, 1, length, -1)
    if q.is_cuda:
        out = F.scaled_dot_product_attention(q, k.expand(-1, heads, -1, -1), v.expand(-1, heads, -1, -1), scale=scale)
    else:
        out = F.scaled_dot_product_attention(q, k, v, scale=scale, enable_gqa=True)
    return out.transpose(1, 2).reshape(blocks * length, heads, -1)


_USE_PADDED_REFERENCE = False


@contextlib.contextmanager
def padded_reference() -> Iterator[None]:
    """Run `padded_block_attention` wherever `block_attention` is called (tests and benchmarks only)."""
    global _USE_PADDED_REFERENCE
    previous, _USE_PADDED_REFERENCE = _USE_PADDED_REFERENCE, True
    try:
        yield
    finally:
        _USE_PADDED_REFERENCE = previous


@torch.compiler.disable
def block_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, layout: BlockLayout,
                    scale: float | None = None) -> torch.Tensor:
    """Multi-query attention within each block: q (N, H, W), shared k (N, W) and v (N, Wv) -> (N, H, Wv)."""
    if q.shape[0] != layout.num_tokens:
        raise ValueError(f"attention over {q.shape[0]} tokens with a layout of {layout.num_tokens}")
    if _USE_PADDED_REFERENCE:
        return padded_block_attention(q, k, v, layout, scale)
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    if layout.perm is not None:
        q, k, v = (_PermuteRows.apply(x, layout.perm, layout.inverse) for x in (q, k, v))
    outs, start = [], 0
    for blocks, length in layout.groups:
        stop = start + blocks * length
        outs.append(_sdpa_group(q[start:stop], k[start:stop], v[start:stop], blocks, length, scale))
        start = stop
    out = torch.cat(outs) if len(outs) > 1 else outs[0]
    if layout.perm is not None:
        out = _PermuteRows.apply(out, layout.inverse, layout.perm)
    return out


def padded_block_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, layout: BlockLayout,
                           scale: float | None = None) -> torch.Tensor:
    """Reference for `block_attention`: blocks padded to the longest and masked (O(blocks x L_max^2) memory)."""
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    blocks, longest = len(layout.lengths), max(layout.lengths)
    block = layout.block_index(q.device)
    starts = torch.tensor(layout.offsets[:-1], device=q.device)
    position = torch.arange(layout.num_tokens, device=q.device) - starts[block]
    padded_q = q.new_zeros(blocks, longest, *q.shape[1:]).index_put((block, position), q)
    padded_k = k.new_zeros(blocks, longest, k.shape[-1]).index_put((block, position), k)
    padded_v = v.new_zeros(blocks, longest, v.shape[-1]).index_put((block, position), v)
    real = torch.arange(longest, device=q.device) < torch.tensor(layout.lengths, device=q.device)[:, None]
    allowed = (real[:, :, None] & real[:, None, :]) | torch.eye(longest, dtype=torch.bool, device=q.device)
    mask = torch.zeros(allowed.shape, dtype=q.dtype, device=q.device).masked_fill_(~allowed, float("-inf"))
    out = F.scaled_dot_product_attention(padded_q.transpose(1, 2), padded_k[:, None], padded_v[:, None],
                                         attn_mask=mask[:, None], scale=scale, enable_gqa=True)
    return out.transpose(1, 2)[block, position]
