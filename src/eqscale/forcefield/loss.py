"""The force-field loss (paper 2): per-atom energy L1 plus per-atom force L2 norm, equal weights."""

from __future__ import annotations

import torch


def loss_terms(pred: tuple[torch.Tensor, torch.Tensor], batch: dict[str, torch.Tensor]
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean over molecules of |E - E_ref| / atoms in eV/atom, mean over atoms of |F - F_ref| in eV/A)."""
    energy, forces = pred
    energy_term = ((energy - batch["energy"]).abs() / batch["num_atoms"].to(energy.dtype)).mean()
    force_term = torch.linalg.vector_norm(forces - batch["forces"], dim=-1).mean()
    return energy_term, force_term


def forcefield_loss(pred: tuple[torch.Tensor, torch.Tensor], batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Per-atom energy L1 + per-atom force L2 norm (the training loss and the test metric)."""
    energy_term, force_term = loss_terms(pred, batch)
    return energy_term + force_term
