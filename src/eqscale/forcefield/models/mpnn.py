"""`mpnn`: messages on relative position vectors; translation-invariant only (the staircase's bottom step).

Each message reads the two atoms' features and the raw vector x_i - x_j (with a radial basis of
its length), so the network can learn any function of the geometry, rotations included: nothing
makes it rotation-equivariant (its symmetry arms, augmentation and the symmetry loss, live in
forcefield/symmetry.py). Forces are a per-atom head on the atom features, three numbers in the
input's frame.

    h_i <- embed(Z_i)
    per layer: m_ij = W_m SiLU(W_r h_i + W_s h_j + W_g [ (x_i - x_j) / c, rbf(d_ij) ]) * env(d_ij)
               h_i <- h_i + MLP([h_i, sum_j m_ij / n0])
    E = sum_i MLP_E(h_i),   F_i = MLP_F(h_i)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from eqscale.forcefield.graph import Graph, scatter_sum
from eqscale.forcefield.models.common import (NEIGHBOUR_NORM, NUM_ELEMENT_EMBEDDINGS, BesselBasis, ForceFieldNet,
                                              GraphCounts, cosine_envelope, mlp, mlp_flops)


@dataclass(frozen=True)
class MPNNConfig:
    """Width, depth and radial basis of an `mpnn`."""

    hidden: int
    layers: int = 3
    num_rbf: int = 16


MPNN_SIZES = {name: MPNNConfig(hidden=h) for name, h in
              (("xs", 16), ("s", 32), ("m", 64), ("l", 128), ("xl", 256), ("xxl", 512), ("xxxl", 1024))}


class MPNNLayer(nn.Module):
    """One round of messages and the residual atom update."""

    def __init__(self, hidden: int, num_rbf: int):
        super().__init__()
        self.receiver = nn.Linear(hidden, hidden)
        self.sender = nn.Linear(hidden, hidden, bias=False)
        self.geometry = nn.Linear(3 + num_rbf, hidden, bias=False)
        self.message = nn.Linear(hidden, hidden)
        self.update = mlp([2 * hidden, hidden, hidden])

    def forward(self, h: torch.Tensor, graph: Graph, geometry: torch.Tensor, envelope: torch.Tensor) -> torch.Tensor:
        """Updated atom features."""
        # the receiver and sender projections run per atom, then are gathered per edge (cheaper than per edge)
        pre = self.receiver(h)[graph.receivers] + self.sender(h)[graph.senders] + self.geometry(geometry)
        messages = self.message(torch.nn.functional.silu(pre)) * envelope.unsqueeze(-1)
        aggregated = scatter_sum(messages, graph.receivers, h.shape[0]) / NEIGHBOUR_NORM
        return h + self.update(torch.cat([h, aggregated], dim=-1))


class MPNN(ForceFieldNet):
    """Message passing on relative vectors with direct energy and force heads."""

    def __init__(self, config: MPNNConfig, cutoff: float = 5.0):
        super().__init__(cutoff)
        self.config = config
        h = config.hidden
        self.embed = nn.Embedding(NUM_ELEMENT_EMBEDDINGS, h)
        self.rbf = BesselBasis(config.num_rbf, cutoff)
        self.layers = nn.ModuleList(MPNNLayer(h, config.num_rbf) for _ in range(config.layers))
        self.energy_head = mlp([h, h, 1])
        self.force_head = mlp([h, h, 3])

    def atoms_to_outputs(self, batch: dict[str, torch.Tensor], graph: Graph) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-atom energies and forces."""
        h = self.embed(batch["numbers"])
        geometry = torch.cat([graph.vectors / self.cutoff, self.rbf(graph.lengths)], dim=-1)
        envelope = cosine_envelope(graph.lengths, self.cutoff)
        for layer in self.layers:
            h = layer(h, graph, geometry, envelope)
        return self.energy_head(h).squeeze(-1), self.force_head(h)

    def analytic_forward_flops(self, counts: GraphCounts) -> int:
        """Forward FLOPs (matrix products) for a graph of these sizes."""
        h, r, a, e = self.config.hidden, self.config.num_rbf, counts.atoms, counts.edges
        layer = 2 * a * h * h * 2 + 2 * e * (3 + r) * h + 2 * e * h * h + mlp_flops(a, [2 * h, h, h])
        return self.config.layers * layer + mlp_flops(a, [h, h, 1]) + mlp_flops(a, [h, h, 3])
