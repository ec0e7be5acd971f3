"""`tensor2` / `tensor4`: spherical-tensor message passing, l_max 2 or 4 (eSEN-like in spirit).

Atom features are C channels of every degree l = 0..l_max, each with the parity of a spherical
harmonic ((-1)^l: 0e, 1o, 2e, 3o, 4e in e3nn's notation). A message is the tensor product of the
sender's features with the spherical harmonics Y(u_ij) up to l_max, one weight per channel and
path (l1, l2 -> l3; e3nn's 'uvu') from a radial MLP of d_ij times the cutoff envelope; paths into
degrees above l_max or of the other parity are dropped. Aggregated messages and the atom's own
features go through per-degree channel-mixing maps into a gated non-linearity (SiLU on scalars,
sigmoid gates on l > 0), added residually. The energy is an MLP of the l = 0 channels; the direct
force head is a linear map of the l = 1 channels (polar vectors: x, y, z). The products use
e3nn's Wigner 3j symbols and spherical harmonics through spherical.py (see there for why not
e3nn's own modules).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from eqscale.forcefield.graph import Graph
from eqscale.forcefield.models.common import (NEIGHBOUR_NORM, NUM_ELEMENT_EMBEDDINGS, BesselBasis, ForceFieldNet,
                                              GraphCounts, cosine_envelope, mlp, mlp_flops)
from eqscale.forcefield.models.spherical import (SphericalLinear, SphericalTensorProduct, block, gate,
                                                 num_components, spherical_harmonics, split_blocks)


@dataclass(frozen=True)
class TensorConfig:
    """Channels per degree, l_max, depth and radial network of a `tensor` network."""

    channels: int
    lmax: int
    layers: int = 3
    num_rbf: int = 16
    radial_hidden: int = 32


def _sizes(lmax: int) -> dict[str, TensorConfig]:
    return {name: TensorConfig(channels=c, lmax=lmax, radial_hidden=r) for name, c, r in
            (("xs", 4, 16), ("s", 8, 32), ("m", 16, 64), ("l", 32, 64), ("xl", 64, 128), ("xxl", 128, 128),
             ("xxxl", 256, 256))}


TENSOR2_SIZES = _sizes(2)
TENSOR4_SIZES = _sizes(4)


class TensorLayer(nn.Module):
    """Tensor-product messages, per-degree linear maps, gate, residual."""

    def __init__(self, c: TensorConfig, product: SphericalTensorProduct):
        super().__init__()
        self.config = c
        self.product = product
        self.radial = mlp([c.num_rbf, c.radial_hidden, c.channels * self.product.num_paths])
        gated_in = [c.channels + c.channels * c.lmax] + [c.channels] * c.lmax  # scalars + gates, then each l > 0
        paths_into = [self.product.paths_into(l) for l in range(c.lmax + 1)]
        self.message_linear = SphericalLinear([c.channels * n for n in paths_into], gated_in)
        self.self_linear = SphericalLinear([c.channels] * (c.lmax + 1), gated_in)

    def forward(self, h: torch.Tensor, graph: Graph, coupled: list[torch.Tensor], rbf: torch.Tensor,
                envelope: torch.Tensor) -> torch.Tensor:
        """Updated atom features (A, C, D); `coupled` = product.couple(harmonics of the edges)."""
        c = self.config
        weights = self.radial(rbf) * envelope.unsqueeze(-1)
        summed = self.product(h, graph.senders, graph.receivers, coupled, weights)
        per_degree = [m / NEIGHBOUR_NORM for m in summed]
        mixed = [a + b for a, b in zip(self.message_linear(per_degree), self.self_linear(split_blocks(h, c.lmax)))]
        return h + torch.cat(gate(mixed, c.channels), dim=-1)

    def flops(self, atoms: int, edges: int) -> int:
        """Forward FLOPs (matrix products) of this layer."""
        c = self.config
        radial = mlp_flops(edges, [c.num_rbf, c.radial_hidden, c.channels * self.product.num_paths])
        return (self.product.flops(edges, c.channels) + radial + self.message_linear.flops(atoms)
                + self.self_linear.flops(atoms))


class TensorNet(ForceFieldNet):
    """Spherical-tensor network with invariant energy and equivariant direct forces."""

    def __init__(self, config: TensorConfig, cutoff: float = 5.0):
        super().__init__(cutoff)
        self.config = config
        c = config.channels
        self.embed = nn.Embedding(NUM_ELEMENT_EMBEDDINGS, c)
        self.rbf = BesselBasis(config.num_rbf, cutoff)
        self.product = SphericalTensorProduct(config.lmax)  # no weights: one shared by every layer
        self.layers = nn.ModuleList(TensorLayer(config, self.product) for _ in range(config.layers))
        self.energy_head = mlp([c, c, 1])
        self.force_head = nn.Linear(c, 1, bias=False)  # a bias would be a fixed vector: not equivariant

    def atoms_to_outputs(self, batch: dict[str, torch.Tensor], graph: Graph) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-atom energies and forces."""
        c = self.config
        scalars = self.embed(batch["numbers"])
        # the l = 0 component of every channel from the element; l > 0 start at zero
        h = torch.cat([scalars.unsqueeze(-1), scalars.new_zeros(*scalars.shape, num_components(c.lmax) - 1)], -1)
        coupled = self.product.couple(spherical_harmonics(graph.vectors, c.lmax))
        rbf = self.rbf(graph.lengths)
        envelope = cosine_envelope(graph.lengths, self.cutoff)
        for layer in self.layers:
            h = layer(h, graph, coupled, rbf, envelope)
        energy = self.energy_head(h[:, :, 0]).squeeze(-1)
        forces = self.force_head(h[:, :, block(1)].transpose(1, 2)).squeeze(-1)
        return energy, forces

    def analytic_forward_flops(self, counts: GraphCounts) -> int:
        """Forward FLOPs (matrix products) for a graph of these sizes."""
        c, a = self.config.channels, counts.atoms
        layers = sum(layer.flops(a, counts.edges) for layer in self.layers)
        return self.product.coupling_flops(counts.edges) + layers + mlp_flops(a, [c, c, 1]) + 2 * (3 * a) * c
