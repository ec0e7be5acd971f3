"""Radius graphs and angle triplets of concatenated molecules, in plain torch (no compiled graph extensions).

A batch holds M molecules back to back: `num_atoms` (M,) says how many atoms each has. Edges join
two different atoms of the same molecule closer than the cutoff, in both directions; edge e runs
from `senders[e]` (j) to `receivers[e]` (i), its vector is x_i - x_j, and edges are ordered by
receiver, then sender. Candidate pairs are enumerated per molecule (sum of n_m^2 of them), so
nothing of size (atoms x atoms) of the whole batch is built. A triplet (k -> j, j -> i), k != i,
pairs an edge into atom j with an edge out of it: the angle at j between x_k - x_j and x_i - x_j.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Graph:
    """Edges of a batch (E of them) with their geometry."""

    senders: torch.Tensor  # (E,) long, j
    receivers: torch.Tensor  # (E,) long, i
    vectors: torch.Tensor  # (E, 3) x_i - x_j
    lengths: torch.Tensor  # (E,)

    @property
    def num_edges(self) -> int:
        """E."""
        return int(self.senders.shape[0])


def molecule_offsets(num_atoms: torch.Tensor) -> torch.Tensor:
    """(M,) index of each molecule's first atom."""
    return torch.cumsum(num_atoms, 0) - num_atoms


def _segment_arange(counts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For segments of the given lengths: (segment of each element, position within its segment)."""
    segment = torch.repeat_interleave(torch.arange(len(counts), device=counts.device), counts)
    starts = torch.cumsum(counts, 0) - counts
    return segment, torch.arange(int(counts.sum()), device=counts.device) - starts[segment]


def radius_graph(positions: torch.Tensor, num_atoms: torch.Tensor, cutoff: float) -> Graph:
    """Directed edges between atoms of the same molecule closer than `cutoff` (Angstrom), both directions."""
    num_atoms = num_atoms.to(torch.long)
    molecule, local = _segment_arange(num_atoms * num_atoms)
    n = num_atoms[molecule]
    first = molecule_offsets(num_atoms)[molecule]
    receivers, senders = local // n + first, local % n + first
    with torch.no_grad():  # which pairs are edges is a discrete choice; gradients flow through `vectors`
        distance2 = (positions[receivers] - positions[senders]).pow(2).sum(-1)
        keep = (receivers != senders) & (distance2 < cutoff * cutoff)
    receivers, senders = receivers[keep], senders[keep]
    vectors = positions[receivers] - positions[senders]
    return Graph(senders, receivers, vectors, vectors.norm(dim=-1))


def angle_triplets(graph: Graph, num_nodes: int, edge_mask: torch.Tensor | None = None
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """Triplets (k -> j, j -> i), k != i, as indices (edge_in, edge_out) into the graph's edges.

    edge_mask (E,) bool restricts both edges of a triplet to the masked edges (a shorter angle cutoff).
    """
    index = torch.arange(graph.num_edges, device=graph.senders.device)
    if edge_mask is not None:
        index = index[edge_mask]
    senders, receivers = graph.senders[index], graph.receivers[index]
    # edges into atom j: the receiver-ordered list; edges out of j: the same edges ordered by sender
    into = index[torch.argsort(receivers, stable=True)]
    out_of = index[torch.argsort(senders, stable=True)]
    degree = torch.bincount(receivers, minlength=num_nodes)
    start = torch.cumsum(degree, 0) - degree
    center, local = _segment_arange(degree * degree)
    d = degree[center]
    edge_in = into[start[center] + local // d]
    edge_out = out_of[start[center] + local % d]
    keep = graph.senders[edge_in] != graph.receivers[edge_out]
    return edge_in[keep], edge_out[keep]


def scatter_sum(values: torch.Tensor, index: torch.Tensor, size: int) -> torch.Tensor:
    """out[index[r]] += values[r] along the first dimension (deterministic on CPU)."""
    out = values.new_zeros((size, *values.shape[1:]))
    return out.index_add_(0, index, values)
