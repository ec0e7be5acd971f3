"""The staircase's symmetries (float64, random molecules), size tables, FLOP counts and the registry."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from eqscale.forcefield.dataset import to_batch
from eqscale.forcefield.models import (FAMILIES, FF_SIZES, build_model, forward_flops_per_atom, kappa,
                                       measure_forward_flops, num_params, reference_batch, training_flops)
from eqscale.forcefield.molecules import ELEMENTS
from eqscale.forcefield.symmetry import random_o3, rotate_batch

EQUIVARIANT = ("invariant", "egnn", "tensor2", "tensor4")


def random_molecules(seed: int = 0, counts=(6, 11, 4), dtype=torch.float64) -> dict[str, torch.Tensor]:
    """Random atoms (study elements) in a 4 A box per molecule: no chemistry, every symmetry still applies."""
    rng = np.random.default_rng(seed)
    numbers = rng.choice(ELEMENTS, size=sum(counts))
    positions = rng.uniform(-2.0, 2.0, size=(sum(counts), 3))
    return to_batch(numbers, positions, np.array(counts), dtype=dtype)


def model64(family: str, size: str = "xs") -> torch.nn.Module:
    torch.manual_seed(1)
    return build_model(family, size).double()


def relative_error(moved: torch.Tensor, expected: torch.Tensor) -> float:
    return float(((moved - expected).abs().max() / expected.abs().max()).detach())


@pytest.mark.parametrize("family", FAMILIES)
def test_energy_and_forces_are_invariant_under_translations_and_atom_permutations(family):
    model, batch = model64(family), random_molecules()
    energy, forces = model(batch)
    assert forces.abs().max() > 1e-3 and energy.abs().max() > 1e-3  # not trivially invariant
    gen = torch.Generator().manual_seed(2)
    shifted = dict(batch, positions=batch["positions"] + 5 * torch.randn(3, 3, generator=gen,
                                                                            dtype=torch.float64)[batch["molecule"]])
    energy_t, forces_t = model(shifted)
    assert relative_error(energy_t, energy) < 1e-12 and relative_error(forces_t, forces) < 1e-12
    # permuting atoms within each molecule permutes the forces and keeps the energy
    order = torch.cat([start + torch.randperm(int(n), generator=gen) for start, n in
                       zip(torch.cumsum(batch["num_atoms"], 0) - batch["num_atoms"], batch["num_atoms"])])
    permuted = dict(batch, positions=batch["positions"][order], numbers=batch["numbers"][order])
    energy_p, forces_p = model(permuted)
    assert relative_error(energy_p, energy) < 1e-12 and relative_error(forces_p, forces[order]) < 1e-12


@pytest.mark.parametrize("family", EQUIVARIANT)
@pytest.mark.parametrize("seed", [0, 1])
def test_invariant_energy_and_equivariant_forces_under_rotations_and_reflections(family, seed):
    model, batch = model64(family), random_molecules(seed)
    gen = torch.Generator().manual_seed(10 + seed)
    q = random_o3(3, gen, torch.float64)
    q[0] = q[0] * torch.linalg.det(q[0])  # det(cQ) = c^3 det Q: a rotation
    q[1] = -q[1] * torch.linalg.det(q[1])  # and a reflection, whatever the draw
    assert torch.linalg.det(q[0]) > 0 > torch.linalg.det(q[1])
    energy, forces = model(batch)
    moved_energy, moved_forces = model(rotate_batch(batch, q))
    rotated_forces = torch.einsum("aij,aj->ai", q[batch["molecule"]], forces)
    assert relative_error(moved_energy, energy) < 1e-9
    assert relative_error(moved_forces, rotated_forces) < 1e-9


def test_mpnn_is_not_rotation_equivariant_at_init():
    model, batch = model64("mpnn"), random_molecules()
    q = random_o3(3, torch.Generator().manual_seed(3), torch.float64)
    _, forces = model(batch)
    _, moved_forces = model(rotate_batch(batch, q))
    assert relative_error(moved_forces, torch.einsum("aij,aj->ai", q[batch["molecule"]], forces)) > 0.1


@pytest.mark.parametrize("family", FAMILIES)
def test_size_table_spans_100x_parameters_at_fixed_depth(family):
    sizes = FF_SIZES[family]
    counts = [num_params(family, s) for s in sizes]
    assert counts == sorted(counts) and counts[-1] >= 100 * counts[0]
    assert len({sizes[s].layers for s in sizes}) == 1


@pytest.mark.parametrize("family", FAMILIES)
def test_measured_forward_flops_equal_the_analytic_count(family):
    batch = random_molecules(4, counts=(7, 12, 3, 9), dtype=torch.float32)
    for size in ("xs", "s"):
        model = build_model(family, size)
        analytic = model.analytic_forward_flops(model.graph_counts(batch))
        assert measure_forward_flops(model, batch) == analytic > 0


def test_flops_per_atom_kappa_and_training_compute():
    batch = reference_batch()
    atoms = int(batch["numbers"].shape[0])
    per_atom = forward_flops_per_atom("egnn", "s")
    assert per_atom == measure_forward_flops(build_model("egnn", "s"), batch) / atoms
    assert kappa("egnn", "s") == pytest.approx(per_atom / num_params("egnn", "s"))
    assert training_flops("egnn", "s", mean_atoms=12.5, samples=1000) == pytest.approx(3 * per_atom * 12.5 * 1000)
    # more symmetry costs more compute per atom at the same width
    assert forward_flops_per_atom("tensor4", "s") > forward_flops_per_atom("tensor2", "s") > per_atom
    # a shorter cutoff leaves fewer edges to pay for
    assert forward_flops_per_atom("egnn", "s", {"cutoff": 3.0, "angle_cutoff": 3.0}) < per_atom


def test_unknown_family_or_size_lists_what_exists():
    with pytest.raises(KeyError, match="known: mpnn, invariant, egnn, tensor2, tensor4"):
        build_model("gemnet", "s")
    with pytest.raises(KeyError, match="known: xs, s, m, l, xl, xxl, xxxl"):
        build_model("egnn", "huge")


@pytest.mark.parametrize("lmax", [2, 4])
def test_spherical_tensor_product_equals_e3nn_uvu(lmax):
    from e3nn import o3

    from eqscale.forcefield.models.spherical import (SphericalTensorProduct, block, num_components,
                                                     spherical_harmonics)

    torch.set_default_dtype(torch.float64)  # e3nn's modules keep their 3j symbols in the default dtype
    try:
        channels, edges = 3, 5
        product = SphericalTensorProduct(lmax)
        gen = torch.Generator().manual_seed(lmax)
        x = torch.randn(edges, channels, num_components(lmax), generator=gen)
        y = spherical_harmonics(torch.randn(edges, 3, generator=gen), lmax)
        weights = torch.randn(edges, product.num_paths, channels, generator=gen)  # e3nn's layout: per path
        block_major = torch.cat([weights[:, members].transpose(1, 2).reshape(edges, -1)
                                 for _, _, members in product.blocks], dim=1)
        one_edge_per_atom = torch.arange(edges)
        ours = product(x, one_edge_per_atom, one_edge_per_atom, product.couple(y), block_major)
        irreps_in = o3.Irreps([(channels, (l, (-1) ** l)) for l in range(lmax + 1)])
        instructions = [(l1, l2, k, "uvu", True, 1.0) for k, (l1, l2, _) in enumerate(product.paths)]
        reference = o3.TensorProduct(irreps_in, o3.Irreps.spherical_harmonics(lmax),
                                     o3.Irreps([(channels, (l3, (-1) ** l3)) for _, _, l3 in product.paths]),
                                     instructions, irrep_normalization="component", path_normalization="none",
                                     shared_weights=False, internal_weights=False)
        x_e3nn = torch.cat([x[:, :, block(l)].reshape(edges, -1) for l in range(lmax + 1)], -1)
        out = reference(x_e3nn, y, weights.reshape(edges, -1))
    finally:
        torch.set_default_dtype(torch.float32)
    # e3nn lays each path out as (channel, m); ours groups paths per l3 as (channel, path, m)
    offset = 0
    for l3 in range(lmax + 1):
        count = product.paths_into(l3)
        width = count * channels * (2 * l3 + 1)
        expected = out[:, offset:offset + width].reshape(edges, count, channels, 2 * l3 + 1)
        torch.testing.assert_close(ours[l3].reshape(edges, channels, count, 2 * l3 + 1),
                                   expected.transpose(1, 2), rtol=1e-12, atol=1e-12)
        offset += width
    assert offset == out.shape[1]


def test_stored_size_table_matches_the_networks():
    """size_table.json (what the grid plans with, torch-free) equals fresh counts: rewrite it after a model change."""
    from eqscale.forcefield.models import table

    stored = table.read_table()
    assert stored["reference"]["atoms"] == int(reference_batch()["numbers"].shape[0])
    for family in FAMILIES:
        assert list(stored["families"][family]) == list(FF_SIZES[family])
        for size in ("xs", "s", "m"):  # the large ones cost seconds each; the same code path
            row = stored["families"][family][size]
            assert row["params"] == num_params(family, size), (family, size)
            assert row["forward_flops_per_atom"] == pytest.approx(forward_flops_per_atom(family, size), rel=1e-12)
