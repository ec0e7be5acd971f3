"""Pieces every force-field network shares: radial bases, the cutoff envelope, heads, the batch contract.

A batch is a dict of tensors for M molecules concatenated (A atoms): positions (A, 3) Angstrom,
numbers (A,) atomic numbers, molecule (A,) the molecule of each atom, num_atoms (M,), and for
training energy (M,) eV (reference energies removed) and forces (A, 3) eV/Angstrom. A network
maps it to (energy (M,), forces (A, 3)); forces come from a head of their own (direct forces),
not from -dE/dx.

FLOPs follow eqscale.models.flops: matrix products only, 2 per multiply-add. Each network's
`analytic_forward_flops(counts)` gives its forward count from the graph's sizes, checked against
FlopCounterMode in the tests.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from eqscale.forcefield.graph import Graph, radius_graph, scatter_sum
from eqscale.forcefield.molecules import MAX_ATOMIC_NUMBER

NUM_ELEMENT_EMBEDDINGS = MAX_ATOMIC_NUMBER + 1  # indexed by atomic number
# sums over neighbours are divided by this (a typical neighbour count at 5 A in small organics),
# so activations keep unit scale; a constant keeps the networks smooth in the positions
NEIGHBOUR_NORM = 3.0


@dataclass(frozen=True)
class GraphCounts:
    """Sizes of one batch's graph, what analytic FLOP counts need."""

    atoms: int
    edges: int
    molecules: int
    triplets: int = 0


def cosine_envelope(lengths: torch.Tensor, cutoff: float) -> torch.Tensor:
    """0.5 (cos(pi d / c) + 1) inside the cutoff, 0 outside: smooth where edges appear and vanish."""
    inside = lengths < cutoff
    return torch.where(inside, 0.5 * (torch.cos(math.pi * lengths / cutoff) + 1.0), torch.zeros_like(lengths))


class BesselBasis(nn.Module):
    """sqrt(2/c) sin(n pi d / c) / d, n = 1..num (DimeNet's radial basis), times the cosine envelope."""

    def __init__(self, num: int, cutoff: float):
        super().__init__()
        self.cutoff = float(cutoff)
        self.register_buffer("frequencies", math.pi * torch.arange(1, num + 1) / self.cutoff, persistent=False)

    def forward(self, lengths: torch.Tensor) -> torch.Tensor:
        """(E,) lengths -> (E, num) features."""
        d = lengths.unsqueeze(-1)
        basis = math.sqrt(2.0 / self.cutoff) * torch.sin(self.frequencies.to(d.dtype) * d) / d
        return basis * cosine_envelope(lengths, self.cutoff).unsqueeze(-1)


def legendre(x: torch.Tensor, num: int) -> torch.Tensor:
    """Legendre polynomials P_0 .. P_{num-1} of x (..., ) -> (..., num), by the three-term recursion."""
    out = [torch.ones_like(x), x]
    for n in range(1, num - 1):
        out.append(((2 * n + 1) * x * out[n] - n * out[n - 1]) / (n + 1))
    return torch.stack(out[:num], dim=-1)


def mlp(sizes: list[int], final_activation: bool = False) -> nn.Sequential:
    """Linear layers with SiLU between them (and after the last when asked)."""
    layers: list[nn.Module] = []
    for k, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if k < len(sizes) - 2 or final_activation:
            layers.append(nn.SiLU())
    return nn.Sequential(*layers)


def mlp_flops(rows: int, sizes: list[int]) -> int:
    """Forward FLOPs of `mlp(sizes)` applied to `rows` rows."""
    return sum(2 * rows * a * b for a, b in zip(sizes[:-1], sizes[1:]))


def per_molecule_sum(per_atom: torch.Tensor, molecule: torch.Tensor, num_molecules: int) -> torch.Tensor:
    """(A,) per-atom values -> (M,) sums."""
    return scatter_sum(per_atom, molecule, num_molecules)


class ForceFieldNet(nn.Module):
    """Base class: builds the radius graph and sums per-atom energies; subclasses implement `atoms_to_outputs`."""

    def __init__(self, cutoff: float):
        super().__init__()
        self.cutoff = float(cutoff)

    def graph(self, batch: dict[str, torch.Tensor]) -> Graph:
        """The batch's radius graph at this network's cutoff."""
        return radius_graph(batch["positions"], batch["num_atoms"], self.cutoff)

    def num_params(self) -> int:
        """Trainable parameters."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def forward(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """(energy (M,) eV, forces (A, 3) eV/A) of a batch."""
        graph = self.graph(batch)
        atom_energy, forces = self.atoms_to_outputs(batch, graph)
        return per_molecule_sum(atom_energy, batch["molecule"], int(batch["num_atoms"].shape[0])), forces

    def atoms_to_outputs(self, batch: dict[str, torch.Tensor], graph: Graph) -> tuple[torch.Tensor, torch.Tensor]:
        """(per-atom energy (A,), forces (A, 3)); implemented by each network."""
        raise NotImplementedError

    def graph_counts(self, batch: dict[str, torch.Tensor]) -> GraphCounts:
        """Atoms, edges and molecules of a batch (networks with triplets add theirs)."""
        graph = self.graph(batch)
        return GraphCounts(atoms=int(batch["numbers"].shape[0]), edges=graph.num_edges,
                           molecules=int(batch["num_atoms"].shape[0]))
