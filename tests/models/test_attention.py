"""The attention front end: block-diagonal attention over packed tokens equals the padded, masked reference,
groups equal-length blocks, and keeps nothing of size N x N for the backward."""

from __future__ import annotations

import math

import pytest
import torch

from eqscale.models.attention import BlockLayout, block_attention, padded_block_attention


def _qkv(n: int, heads: int = 3, width: int = 8, seed: int = 0, dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    return (torch.randn(n, heads, width, generator=gen, dtype=dtype, requires_grad=True),
            torch.randn(n, width, generator=gen, dtype=dtype, requires_grad=True),
            torch.randn(n, width, generator=gen, dtype=dtype, requires_grad=True))


def _naive(q, k, v, layout):
    out = []
    for a, b in zip(layout.offsets, layout.offsets[1:]):
        logits = torch.einsum("ihd,jd->hij", q[a:b], k[a:b]) / math.sqrt(q.shape[-1])
        out.append(torch.einsum("hij,jd->ihd", logits.softmax(-1), v[a:b]))
    return torch.cat(out)


@pytest.mark.parametrize("lengths", [[5], [3, 3, 3], [2, 7, 2, 7, 1, 2], [4, 1, 6]])
def test_block_attention_equals_naive_and_padded_reference_with_gradients(lengths):
    layout = BlockLayout(torch.tensor([0, *lengths]).cumsum(0))
    q, k, v = _qkv(layout.num_tokens)
    outputs, grads = [], []
    for fn in (block_attention, padded_block_attention, _naive):
        out = fn(q, k, v, layout)
        (out * torch.linspace(-1, 1, out.numel(), dtype=out.dtype).reshape(out.shape)).sum().backward()
        outputs.append(out.detach())
        grads.append([x.grad.clone() for x in (q, k, v)])
        for x in (q, k, v):
            x.grad = None
    for out, grad in zip(outputs[1:], grads[1:]):
        torch.testing.assert_close(outputs[0], out, rtol=1e-12, atol=1e-12)
        for a, b in zip(grads[0], grad):
            torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_layout_groups_blocks_of_equal_length_and_permutes_only_when_needed():
    layout = BlockLayout([0, 2, 9, 11, 18, 19, 21])
    assert layout.lengths == [2, 7, 2, 7, 1, 2]
    assert layout.groups == [(3, 2), (2, 7), (1, 1)]
    assert layout.squared_lengths == 4 + 49 + 4 + 49 + 1 + 4
    # tokens in group order: the blocks of length 2, then of length 7, then the last one
    assert layout.perm.tolist() == [0, 1, 9, 10, 19, 20, 2, 3, 4, 5, 6, 7, 8, 11, 12, 13, 14, 15, 16, 17, 18]
    assert torch.equal(layout.perm[layout.inverse], torch.arange(21))
    assert BlockLayout([0, 3, 7, 12]).perm is None  # distinct lengths in order: views only
    assert layout.block_index().tolist() == [0, 0] + [1] * 7 + [2, 2] + [3] * 7 + [4, 5, 5]
    with pytest.raises(ValueError, match="start at 0"):
        BlockLayout([1, 3])
    q, k, v = _qkv(5)
    with pytest.raises(ValueError, match="layout of 21"):
        block_attention(q, k, v, layout)


def test_nothing_quadratic_is_kept_for_the_backward():
    # one block of 2048 tokens: a dense score matrix would hold 2048^2 = 4M entries per head
    layout = BlockLayout([0, 2048])
    q, k, v = _qkv(2048, heads=2, width=8, dtype=torch.float32)
    largest = 0

    def pack(tensor):
        nonlocal largest
        largest = max(largest, tensor.numel())
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = block_attention(q, k, v, layout)
    out.sum().backward()
    assert largest <= 2048 * 2 * 8  # the inputs and outputs themselves: O(tokens x width)
    assert torch.isfinite(q.grad).all()


def test_bf16_autocast_on_cpu_runs_and_stays_close():
    layout = BlockLayout([0, 30, 45, 75])
    q, k, v = _qkv(75, dtype=torch.float32)
    full = block_attention(q, k, v, layout)
    low = block_attention(q.bfloat16(), k.bfloat16(), v.bfloat16(), layout)
    assert low.dtype == torch.bfloat16
    torch.testing.assert_close(low.float(), full, rtol=0.05, atol=0.05)


@pytest.mark.cuda
def test_cuda_block_attention_matches_the_cpu_in_bf16():
    layout_cpu = BlockLayout([0, 300, 450, 750, 1050])
    layout = BlockLayout(torch.tensor(layout_cpu.offsets, device="cuda"))
    q, k, v = _qkv(1050, heads=4, width=64, dtype=torch.float32)
    expected = block_attention(q, k, v, layout_cpu)
    for dtype in (torch.float32, torch.bfloat16):
        got = block_attention(*(x.detach().cuda().to(dtype).requires_grad_() for x in (q, k, v)), layout)
        got.float().sum().backward()
        torch.testing.assert_close(got.float().cpu(), expected, rtol=0.03, atol=0.03)
