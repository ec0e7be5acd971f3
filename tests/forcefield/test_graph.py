"""Radius graphs and angle triplets of concatenated molecules against brute force."""

from __future__ import annotations

import itertools

import numpy as np
import torch

from eqscale.forcefield.graph import angle_triplets, radius_graph, scatter_sum


def _random_batch(seed: int = 0, counts=(5, 1, 9, 3)):
    rng = np.random.default_rng(seed)
    positions = rng.uniform(-2.5, 2.5, size=(sum(counts), 3))
    return torch.tensor(positions), torch.tensor(counts)


def _brute_edges(positions, counts, cutoff):
    edges, start = set(), 0
    for n in counts:
        for i, j in itertools.permutations(range(start, start + n), 2):
            if np.linalg.norm(positions[i] - positions[j]) < cutoff:
                edges.add((j, i))  # (sender, receiver)
        start += n
    return edges


def test_radius_graph_matches_brute_force_within_molecules_only():
    positions, counts = _random_batch()
    graph = radius_graph(positions, counts, cutoff=3.0)
    found = set(zip(graph.senders.tolist(), graph.receivers.tolist()))
    assert found == _brute_edges(positions.numpy(), counts.tolist(), 3.0)
    assert len(found) == graph.num_edges  # no duplicates
    torch.testing.assert_close(graph.vectors, positions[graph.receivers] - positions[graph.senders])
    torch.testing.assert_close(graph.lengths, graph.vectors.norm(dim=-1))
    assert graph.receivers.tolist() == sorted(graph.receivers.tolist())


def test_angle_triplets_match_brute_force():
    positions, counts = _random_batch(1)
    graph = radius_graph(positions, counts, cutoff=3.5)
    mask = graph.lengths < 2.5
    edge_in, edge_out = angle_triplets(graph, len(positions), mask)
    pairs = {(int(graph.senders[a]), int(graph.receivers[a]), int(graph.receivers[b]))
             for a, b in zip(edge_in.tolist(), edge_out.tolist())}
    assert len(pairs) == len(edge_in)
    short = [(s, r) for s, r, keep in zip(graph.senders.tolist(), graph.receivers.tolist(), mask.tolist()) if keep]
    expected = {(k, j, i) for (k, j) in short for (j2, i) in short if j2 == j and i != k}
    assert pairs == expected
    assert torch.all(graph.receivers[edge_in] == graph.senders[edge_out])  # both edges meet at the centre


def test_scatter_sum_adds_rows_by_index():
    values = torch.arange(12.0).view(6, 2)
    out = scatter_sum(values, torch.tensor([2, 0, 2, 1, 0, 2]), 4)
    torch.testing.assert_close(out, torch.tensor([[10.0, 12.0], [6.0, 7.0], [14.0, 17.0], [0.0, 0.0]]))
