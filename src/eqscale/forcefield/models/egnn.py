"""`egnn`: a multi-channel EGNN, scalar features plus C vector (l = 1) channels per atom.

Messages read only invariants: the two atoms' scalars, a radial basis of d_ij, and per channel
the projections V_i . u_ij, V_j . u_ij and V_i . V_j (u_ij the unit vector from j to i). Vector
channels are updated by scalar multiples of u_ij and of the neighbour's channels, then mixed
across channels by a bias-free linear map: all O(3)-equivariant (reflections included, since
every vector here is a polar vector). Scalars see the channels through their squared norms.
Forces are a bias-free linear read-out of the vector channels: F_i = sum_c w_c V_i^c.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.functional import silu

from eqscale.forcefield.graph import Graph, scatter_sum
from eqscale.forcefield.models.common import (NEIGHBOUR_NORM, NUM_ELEMENT_EMBEDDINGS, BesselBasis, ForceFieldNet,
                                              GraphCounts, cosine_envelope, mlp, mlp_flops)


@dataclass(frozen=True)
class EGNNConfig:
    """Scalar width, vector channels, depth and radial basis of an `egnn`."""

    hidden: int
    channels: int
    layers: int = 3
    num_rbf: int = 16


EGNN_SIZES = {name: EGNNConfig(hidden=h, channels=max(4, h // 4)) for name, h in
              (("xs", 16), ("s", 32), ("m", 64), ("l", 128), ("xl", 256), ("xxl", 512), ("xxxl", 1024))}


class EGNNLayer(nn.Module):
    """Invariant messages, vector-channel update and mixing, scalar update."""

    def __init__(self, c: EGNNConfig):
        super().__init__()
        h, k = c.hidden, c.channels
        self.receiver = nn.Linear(h, h)
        self.sender = nn.Linear(h, h, bias=False)
        self.invariants = nn.Linear(c.num_rbf + 3 * k, h, bias=False)
        self.message = nn.Linear(h, h)
        self.coefficients = nn.Linear(h, 2 * k)
        self.mix = nn.Linear(k, k, bias=False)  # a bias would add a fixed vector: not equivariant
        self.update = mlp([2 * h + k, h, h])

    def forward(self, h: torch.Tensor, vec: torch.Tensor, graph: Graph, rbf: torch.Tensor, unit: torch.Tensor,
                envelope: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Updated (scalars (A, H), vector channels (A, C, 3))."""
        k = vec.shape[1]
        v_i, v_j = vec[graph.receivers], vec[graph.senders]
        u = unit.unsqueeze(1)
        invariants = torch.cat([rbf, (v_i * u).sum(-1), (v_j * u).sum(-1), (v_i * v_j).sum(-1)], dim=-1)
        pre = self.receiver(h)[graph.receivers] + self.sender(h)[graph.senders] + self.invariants(invariants)
        m = self.message(silu(pre)) * envelope.unsqueeze(-1)
        along_edge, along_neighbour = self.coefficients(m).split(k, dim=-1)
        vector_messages = along_edge.unsqueeze(-1) * u + along_neighbour.unsqueeze(-1) * v_j
        vec = vec + scatter_sum(vector_messages, graph.receivers, h.shape[0]) / NEIGHBOUR_NORM
        vec = vec + self.mix(vec.transpose(1, 2)).transpose(1, 2)
        aggregated = scatter_sum(m, graph.receivers, h.shape[0]) / NEIGHBOUR_NORM
        h = h + self.update(torch.cat([h, aggregated, (vec * vec).sum(-1)], dim=-1))
        return h, vec


class EGNN(ForceFieldNet):
    """Multi-channel EGNN with an invariant energy head and an equivariant direct force head."""

    def __init__(self, config: EGNNConfig, cutoff: float = 5.0):
        super().__init__(cutoff)
        self.config = config
        h = config.hidden
        self.embed = nn.Embedding(NUM_ELEMENT_EMBEDDINGS, h)
        self.rbf = BesselBasis(config.num_rbf, cutoff)
        self.layers = nn.ModuleList(EGNNLayer(config) for _ in range(config.layers))
        self.energy_head = mlp([h, h, 1])
        self.force_head = nn.Linear(config.channels, 1, bias=False)

    def atoms_to_outputs(self, batch: dict[str, torch.Tensor], graph: Graph) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-atom energies and forces."""
        h = self.embed(batch["numbers"])
        vec = h.new_zeros(h.shape[0], self.config.channels, 3)
        rbf = self.rbf(graph.lengths)
        unit = graph.vectors / graph.lengths.unsqueeze(-1)
        envelope = cosine_envelope(graph.lengths, self.cutoff)
        for layer in self.layers:
            h, vec = layer(h, vec, graph, rbf, unit, envelope)
        forces = self.force_head(vec.transpose(1, 2)).squeeze(-1)
        return self.energy_head(h).squeeze(-1), forces

    def analytic_forward_flops(self, counts: GraphCounts) -> int:
        """Forward FLOPs (matrix products) for a graph of these sizes."""
        c = self.config
        h, k, a, e = c.hidden, c.channels, counts.atoms, counts.edges
        layer = (2 * a * h * h * 2 + 2 * e * (c.num_rbf + 3 * k) * h + 2 * e * h * h + 2 * e * h * 2 * k
                 + 2 * (3 * a) * k * k + mlp_flops(a, [2 * h + k, h, h]))
        return c.layers * layer + mlp_flops(a, [h, h, 1]) + 2 * (3 * a) * k
