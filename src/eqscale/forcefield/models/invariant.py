"""`invariant`: distances and angles, invariant messages (GemNet-OC-like in spirit, much smaller).

Directed edge embeddings m_ji carry the messages. Each layer (1) lets every edge j -> i collect
from the edges k -> j that meet it at j (a triplet), through a basis of the angle k-j-i
(Legendre polynomials of its cosine) times a radial basis of d_kj, with a bottleneck as in
GemNet's efficient interaction; (2) updates each edge from its two atoms; (3) updates atoms from
their incoming edges. Everything the network sees is a distance or an angle, so energies are
invariant under E(3). The direct force head is equivariant by construction:
F_i = sum_j s(m_ji) env(d_ij) (x_i - x_j) / d_ij with a learned scalar s per edge.
Triplets use only edges shorter than `angle_cutoff` (GemNet-OC also takes angles on a shorter
graph), which keeps their number near (bonded neighbours)^2 per atom.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.functional import silu

from eqscale.forcefield.graph import Graph, angle_triplets, scatter_sum
from eqscale.forcefield.models.common import (NEIGHBOUR_NORM, NUM_ELEMENT_EMBEDDINGS, BesselBasis, ForceFieldNet,
                                              GraphCounts, cosine_envelope, legendre, mlp, mlp_flops)

TRIPLET_NORM = 4.0  # typical count of short edges meeting an edge (keeps triplet sums at unit scale)


@dataclass(frozen=True)
class InvariantConfig:
    """Width, bottleneck, depth and bases of an `invariant` network."""

    hidden: int
    bottleneck: int
    layers: int = 3
    num_rbf: int = 16
    num_angular: int = 6  # Legendre orders 0..5 of cos(angle)
    num_angle_rbf: int = 6  # radial functions of d_kj in the angle basis


INVARIANT_SIZES = {name: InvariantConfig(hidden=h, bottleneck=max(8, h // 2)) for name, h in
                   (("xs", 16), ("s", 32), ("m", 64), ("l", 128), ("xl", 256), ("xxl", 512), ("xxxl", 1024))}


class InvariantLayer(nn.Module):
    """Triplet interaction, edge update, atom update."""

    def __init__(self, c: InvariantConfig):
        super().__init__()
        h, b = c.hidden, c.bottleneck
        self.down = nn.Linear(h, b)
        self.angle = nn.Linear(c.num_angular * c.num_angle_rbf, b, bias=False)
        self.up = nn.Linear(b, h)
        self.edge_self = nn.Linear(h, h)
        self.edge_receiver = nn.Linear(h, h, bias=False)
        self.edge_sender = nn.Linear(h, h, bias=False)
        self.edge_out = nn.Linear(h, h)
        self.radial = nn.Linear(c.num_rbf, h, bias=False)
        self.atom_update = mlp([2 * h, h, h])

    def forward(self, h: torch.Tensor, m: torch.Tensor, graph: Graph, rbf: torch.Tensor, angle_basis: torch.Tensor,
                edge_in: torch.Tensor, edge_out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Updated (atom features, edge features)."""
        down = silu(self.down(m))
        triplet = self.angle(angle_basis) * down[edge_in]
        m = m + silu(self.up(scatter_sum(triplet, edge_out, m.shape[0]) / TRIPLET_NORM))
        pre = self.edge_self(m) + self.edge_receiver(h)[graph.receivers] + self.edge_sender(h)[graph.senders]
        m = m + self.edge_out(silu(pre))
        aggregated = scatter_sum(m * self.radial(rbf), graph.receivers, h.shape[0]) / NEIGHBOUR_NORM
        return h + self.atom_update(torch.cat([h, aggregated], dim=-1)), m


class InvariantNet(ForceFieldNet):
    """Distances and angles in, invariant energy and equivariant direct forces out."""

    def __init__(self, config: InvariantConfig, cutoff: float = 5.0, angle_cutoff: float = 3.0):
        super().__init__(cutoff)
        self.config = config
        self.angle_cutoff = float(angle_cutoff)
        h = config.hidden
        self.embed = nn.Embedding(NUM_ELEMENT_EMBEDDINGS, h)
        self.rbf = BesselBasis(config.num_rbf, cutoff)
        self.angle_rbf = BesselBasis(config.num_angle_rbf, angle_cutoff)
        self.edge_receiver = nn.Linear(h, h)
        self.edge_sender = nn.Linear(h, h, bias=False)
        self.edge_radial = nn.Linear(config.num_rbf, h, bias=False)
        self.layers = nn.ModuleList(InvariantLayer(config) for _ in range(config.layers))
        self.energy_head = mlp([h, h, 1])
        self.force_head = mlp([h, h, 1])

    def triplets(self, graph: Graph, num_atoms: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(edge_in, edge_out) of the angles this network uses."""
        return angle_triplets(graph, num_atoms, graph.lengths < self.angle_cutoff)

    def atoms_to_outputs(self, batch: dict[str, torch.Tensor], graph: Graph) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-atom energies and forces."""
        num_atoms = batch["numbers"].shape[0]
        h = self.embed(batch["numbers"])
        rbf = self.rbf(graph.lengths)
        edge_in, edge_out = self.triplets(graph, num_atoms)
        # angle at j between x_k - x_j (= -vector of k -> j) and x_i - x_j (= vector of j -> i)
        v_in, v_out = graph.vectors[edge_in], graph.vectors[edge_out]
        d_in, d_out = graph.lengths[edge_in], graph.lengths[edge_out]
        cosine = -(v_in * v_out).sum(-1) / (d_in * d_out)
        angle_basis = legendre(cosine, self.config.num_angular).unsqueeze(-1) * self.angle_rbf(d_in).unsqueeze(-2)
        angle_basis = angle_basis.flatten(1) * cosine_envelope(d_out, self.angle_cutoff).unsqueeze(-1)
        m = silu(self.edge_receiver(h)[graph.receivers] + self.edge_sender(h)[graph.senders] + self.edge_radial(rbf))
        for layer in self.layers:
            h, m = layer(h, m, graph, rbf, angle_basis, edge_in, edge_out)
        weights = self.force_head(m).squeeze(-1) * cosine_envelope(graph.lengths, self.cutoff) / NEIGHBOUR_NORM
        forces = scatter_sum(weights.unsqueeze(-1) * graph.vectors / graph.lengths.unsqueeze(-1), graph.receivers,
                             num_atoms)
        return self.energy_head(h).squeeze(-1), forces

    def graph_counts(self, batch: dict[str, torch.Tensor]) -> GraphCounts:
        """Atoms, edges, molecules and triplets of a batch."""
        graph = self.graph(batch)
        edge_in, _ = self.triplets(graph, int(batch["numbers"].shape[0]))
        return GraphCounts(atoms=int(batch["numbers"].shape[0]), edges=graph.num_edges,
                           molecules=int(batch["num_atoms"].shape[0]), triplets=int(edge_in.shape[0]))

    def analytic_forward_flops(self, counts: GraphCounts) -> int:
        """Forward FLOPs (matrix products) for a graph of these sizes."""
        c = self.config
        h, b, a, e, t = c.hidden, c.bottleneck, counts.atoms, counts.edges, counts.triplets
        embed = 2 * a * h * h * 2 + 2 * e * c.num_rbf * h
        layer = (2 * e * h * b + 2 * t * c.num_angular * c.num_angle_rbf * b + 2 * e * b * h
                 + 2 * e * h * h * 2 + 2 * a * h * h * 2 + 2 * e * c.num_rbf * h + mlp_flops(a, [2 * h, h, h]))
        return embed + c.layers * layer + mlp_flops(a, [h, h, 1]) + mlp_flops(e, [h, h, 1])
