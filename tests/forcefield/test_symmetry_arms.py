"""The mpnn's symmetry arms: O(3) augmentation and the symmetry loss."""

from __future__ import annotations

import pytest
import torch

from eqscale.forcefield.loss import forcefield_loss, loss_terms
from eqscale.forcefield.symmetry import augment, loss_with_symmetry, random_o3, rotate_batch, symmetry_loss

from test_staircase import model64, random_molecules


def test_augmentation_samples_all_of_o3_uniformly():
    q = random_o3(20_000, torch.Generator().manual_seed(0), torch.float64)
    torch.testing.assert_close(q @ q.transpose(1, 2), torch.eye(3, dtype=torch.float64).expand(20_000, 3, 3))
    det = torch.linalg.det(q)
    assert torch.allclose(det.abs(), torch.ones_like(det))
    assert 0.48 < float((det < 0).double().mean()) < 0.52  # reflections as often as rotations
    # Haar measure: every entry averages 0 with variance 1/3, in both components of O(3)
    for part in (q[det > 0], q[det < 0]):
        assert part.mean(0).abs().max() < 0.03
        assert (part.pow(2).mean(0) - 1 / 3).abs().max() < 0.02


def test_augment_moves_positions_and_forces_together_per_molecule():
    batch = random_molecules()
    batch["forces"] = torch.randn_like(batch["positions"])
    batch["energy"] = torch.randn(3, dtype=torch.float64)
    moved = augment(batch, torch.Generator().manual_seed(1))
    torch.testing.assert_close(moved["energy"], batch["energy"])
    for m in range(3):  # one orthogonal map per molecule, the same for positions and forces
        atoms = batch["molecule"] == m
        x, y = batch["positions"][atoms], moved["positions"][atoms]
        q = torch.linalg.lstsq(x, y).solution.T
        torch.testing.assert_close(q @ q.T, torch.eye(3, dtype=torch.float64))
        torch.testing.assert_close(moved["forces"][atoms], batch["forces"][atoms] @ q.T)
        # distances within the molecule are kept, so its labels stay right
        torch.testing.assert_close(torch.cdist(y, y), torch.cdist(x, x))


def test_symmetry_loss_vanishes_for_an_equivariant_model_and_not_for_the_mpnn():
    batch = random_molecules()
    gen = torch.Generator().manual_seed(2)
    assert symmetry_loss(model64("egnn"), batch, copies=5, generator=gen).item() < 1e-12
    mpnn = model64("mpnn")
    penalty = symmetry_loss(mpnn, batch, copies=5, generator=gen)
    assert penalty.item() > 1e-3
    penalty.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in mpnn.parameters())


def test_loss_with_symmetry_is_loss_plus_lambda_penalty():
    mpnn = model64("mpnn")
    batch = random_molecules()
    batch["energy"] = torch.randn(3, dtype=torch.float64)
    batch["forces"] = torch.randn_like(batch["positions"])
    total, loss, penalty = loss_with_symmetry(mpnn, batch, copies=3, weight=0.7,
                                              generator=torch.Generator().manual_seed(3))
    assert total.item() == pytest.approx(loss.item() + 0.7 * penalty.item())
    assert loss.item() == pytest.approx(forcefield_loss(mpnn(batch), batch).item())
    # the rotations come from the generator: the same seed gives the same penalty
    again = loss_with_symmetry(mpnn, batch, 3, 0.7, torch.Generator().manual_seed(3))[2]
    assert again.item() == penalty.item()


def test_forcefield_loss_is_per_atom_energy_l1_plus_force_l2_norm():
    batch = {"energy": torch.tensor([1.0, -2.0]), "num_atoms": torch.tensor([2, 4]),
             "forces": torch.zeros(6, 3)}
    forces = torch.zeros(6, 3)
    forces[0] = torch.tensor([3.0, 4.0, 0.0])  # norm 5 on one of six atoms
    energy_term, force_term = loss_terms((torch.tensor([2.0, 2.0]), forces), batch)
    assert float(energy_term) == pytest.approx((1.0 / 2 + 4.0 / 4) / 2)
    assert float(force_term) == pytest.approx(5.0 / 6)
    assert float(forcefield_loss((torch.tensor([2.0, 2.0]), forces), batch)) == pytest.approx(0.75 + 5.0 / 6)


def test_rotating_twice_by_inverse_is_identity():
    batch = random_molecules()
    q = random_o3(3, torch.Generator().manual_seed(4), torch.float64)
    back = rotate_batch(rotate_batch(batch, q), q.transpose(1, 2))
    torch.testing.assert_close(back["positions"], batch["positions"])
