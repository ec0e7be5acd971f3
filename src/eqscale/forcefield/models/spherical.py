"""Spherical-tensor primitives for the `tensor` networks, built on e3nn's Wigner 3j symbols and harmonics.

Features are (rows, C, D) tensors: C channels, D = (l_max + 1)^2 components in blocks l = 0..l_max
of 2l+1 (e3nn's real basis; l = 1 is (x, y, z)), each block with the parity of a spherical
harmonic, (-1)^l. Why not e3nn's TensorProduct and Linear modules: at the small channel counts of
this study their per-path code runs thousands of tiny kernels per layer, overhead-bound on CPU
(37 ms forward+backward for one l_max = 4 layer on 600 edges here); the same products grouped by
(l1, l2) pairs are ~60 matrix products. `SphericalTensorProduct` equals e3nn's 'uvu' tensor
product with component normalisation and unit path weights (tested against it).

Tables are computed from e3nn in float64 once per dtype and device, so a network converted with
`.double()` keeps exact equivariance whatever dtype it was built in.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def num_components(lmax: int) -> int:
    """D = (l_max + 1)^2."""
    return (lmax + 1) ** 2


def block(l: int) -> slice:
    """The components of degree l."""
    return slice(l * l, (l + 1) * (l + 1))


def spherical_harmonics(vectors: torch.Tensor, lmax: int) -> torch.Tensor:
    """(E, 3) -> (E, D) real spherical harmonics of the unit vectors, component-normalised (e3nn)."""
    from e3nn import o3

    return o3.spherical_harmonics(list(range(lmax + 1)), vectors, normalize=True, normalization="component")


def paths(lmax: int) -> list[tuple[int, int, int]]:
    """(l1, l2, l3) with every l <= l_max, |l1 - l2| <= l3 <= l1 + l2 and l1 + l2 + l3 even (parity kept)."""
    return [(l1, l2, l3) for l1 in range(lmax + 1) for l2 in range(lmax + 1)
            for l3 in range(abs(l1 - l2), min(l1 + l2, lmax) + 1) if (l1 + l2 + l3) % 2 == 0]


class _Tables:
    """Float64 tables built at construction (e3nn computes 3j symbols with matrix products: not in a FLOP count),
    cast per (dtype, device) on first use."""

    def __init__(self, tables: list[torch.Tensor]):
        self._master = tables
        self._cache: dict = {}

    def get(self, dtype: torch.dtype, device: torch.device) -> list[torch.Tensor]:
        """The tables in this dtype on this device."""
        key = (dtype, device)
        if key not in self._cache:
            self._cache[key] = [t.to(dtype=dtype, device=device) for t in self._master]
        return self._cache[key]


class SphericalTensorProduct(nn.Module):
    """Messages w[e, c, path] sqrt(2 l3 + 1) sum_ij C^{l1 l2 l3}_ijk h[sender, c, l1 i] Y[e, l2 j], summed per receiver.

    h: (A, C, D) atom features, Y: (E, D) spherical harmonics of the edges (through `couple`),
    weights: (E, C * P), one per channel and path. Paths are grouped in blocks of equal (l3, l1)
    (`self.blocks`, ordered by l3 then l1; within a block by l2); the weights are laid out block
    by block, channel-major within a block. Each block is one batched product: the harmonics are
    contracted with the block's 3j symbols first (per edge, shared by every layer: `couple`), then
    multiplied into the sender's degree-l1 channels, 2 E C (2l1+1) n (2l3+1) multiply-adds for a
    block of n paths, no outer product and no regrouping of edge-sized tensors (copies of those
    dominated the layer's time).
    """

    def __init__(self, lmax: int):
        super().__init__()
        self.lmax = lmax
        self.paths = sorted(paths(lmax), key=lambda p: (p[2], p[0], p[1]))
        blocks: dict[tuple[int, int], list[int]] = {}
        for index, (l1, _, l3) in enumerate(self.paths):
            blocks.setdefault((l3, l1), []).append(index)
        self.blocks = [(l1, l3, members) for (l3, l1), members in blocks.items()]
        self._tables = _Tables(self._build_tables())

    @property
    def num_paths(self) -> int:
        """P: weights per channel."""
        return len(self.paths)

    def paths_into(self, l3: int) -> int:
        """How many paths end in degree l3."""
        return sum(1 for p in self.paths if p[2] == l3)

    def _build_tables(self) -> list[torch.Tensor]:
        from e3nn import o3

        tables = []
        for l1, l3, members in self.blocks:
            for index in members:
                l2 = self.paths[index][1]
                w3j = o3.wigner_3j(l1, l2, l3, dtype=torch.float64) * math.sqrt(2 * l3 + 1)  # (i, j, k)
                # (j, (i, k)): the harmonic block times this matrix gives every (i, k) coupling at once
                tables.append(w3j.permute(1, 0, 2).reshape(2 * l2 + 1, (2 * l1 + 1) * (2 * l3 + 1)))
        return tables

    def couple(self, y: torch.Tensor) -> list[torch.Tensor]:
        """Per block, the harmonics contracted with its 3j symbols: (E, 2 l1 + 1, n (2 l3 + 1)).

        Depends on the edges only, so a network computes it once and every layer reuses it.
        """
        tables = iter(self._tables.get(y.dtype, y.device))
        coupled = []
        for l1, _, members in self.blocks:
            parts = [(y[:, block(self.paths[i][1])] @ next(tables)).view(y.shape[0], 2 * l1 + 1, -1) for i in members]
            coupled.append(torch.cat(parts, dim=-1) if len(parts) > 1 else parts[0])
        return coupled

    def forward(self, h: torch.Tensor, senders: torch.Tensor, receivers: torch.Tensor, coupled: list[torch.Tensor],
                weights: torch.Tensor) -> list[torch.Tensor]:
        """Summed messages per receiving atom, per degree l3: (A, C * paths_into(l3), 2 l3 + 1)."""
        atoms, channels = h.shape[0], h.shape[1]
        edges = senders.shape[0]
        sent = {l1: torch.index_select(h[:, :, block(l1)], 0, senders) for l1 in {b[0] for b in self.blocks}}
        pieces = weights.split([channels * len(members) for _, _, members in self.blocks], dim=1)
        per_degree: list[list[torch.Tensor]] = [[] for _ in range(self.lmax + 1)]
        for (l1, l3, members), yc, w in zip(self.blocks, coupled, pieces):
            n, width = len(members), 2 * l3 + 1
            messages = torch.bmm(sent[l1], yc).view(edges, channels, n, width) * w.view(edges, channels, n, 1)
            summed = messages.new_zeros(atoms, channels * n * width).index_add_(0, receivers, messages.view(edges, -1))
            per_degree[l3].append(summed.view(atoms, channels, n, width))
        return [(torch.cat(parts, dim=2) if len(parts) > 1 else parts[0]).reshape(atoms, -1, 2 * l3 + 1)
                for l3, parts in enumerate(per_degree)]

    def coupling_flops(self, edges: int) -> int:
        """Forward FLOPs of `couple`."""
        return sum(2 * edges * (2 * self.paths[i][1] + 1) * (2 * l1 + 1) * (2 * l3 + 1)
                   for l1, l3, members in self.blocks for i in members)

    def flops(self, edges: int, channels: int) -> int:
        """Forward FLOPs of `forward` (the batched products)."""
        return sum(2 * edges * channels * (2 * l1 + 1) * len(members) * (2 * l3 + 1)
                   for l1, l3, members in self.blocks)


class SphericalLinear(nn.Module):
    """Per degree l, a channel-mixing map (in_channels[l] -> out_channels[l]); a bias on l = 0 only.

    Input and output are lists of (rows, channels_l, 2l+1) tensors, one per degree.
    """

    def __init__(self, in_channels: list[int], out_channels: list[int]):
        super().__init__()
        self.weights = nn.ParameterList(
            nn.Parameter(torch.randn(i, o) / math.sqrt(i)) for i, o in zip(in_channels, out_channels))
        self.bias = nn.Parameter(torch.zeros(out_channels[0]))

    def forward(self, blocks: list[torch.Tensor]) -> list[torch.Tensor]:
        """Mixed blocks (the same linear map on every component m keeps equivariance)."""
        out = []
        for l, (x, w) in enumerate(zip(blocks, self.weights)):
            rows, channels, width = x.shape
            mixed = (x.transpose(1, 2).reshape(rows * width, channels) @ w).view(rows, width, -1).transpose(1, 2)
            out.append(mixed + self.bias.view(1, -1, 1) if l == 0 else mixed)
        return out

    def flops(self, rows: int) -> int:
        """Forward FLOPs on `rows` rows."""
        return sum(2 * rows * (2 * l + 1) * w.shape[0] * w.shape[1] for l, w in enumerate(self.weights))


def gate(blocks: list[torch.Tensor], channels: int) -> list[torch.Tensor]:
    """SiLU on the first `channels` scalars; the next l_max x channels scalars, through a sigmoid, scale l > 0."""
    scalars = blocks[0][:, :channels]
    gates = torch.sigmoid(blocks[0][:, channels:]).view(blocks[0].shape[0], len(blocks) - 1, channels, 1)
    return [torch.nn.functional.silu(scalars)] + [gates[:, l - 1] * b for l, b in enumerate(blocks[1:], start=1)]


def split_blocks(x: torch.Tensor, lmax: int) -> list[torch.Tensor]:
    """(rows, C, D) -> per-degree views (rows, C, 2l+1)."""
    return [x[:, :, block(l)] for l in range(lmax + 1)]
