"""Symmetry arms of the `mpnn`: O(3) data augmentation and the symmetry loss (paper 2).

The true symmetry of an isolated molecule's energy is E(3) (with permutations of like atoms);
translations are built into every network (they read only x_i - x_j), so the arms deal with the
orthogonal part. Rotations are drawn Haar-uniformly from all of O(3), reflections included (half
of the draws have det -1), through eqscale.symmetry.random_orthogonal. A batch is rotated about
the origin: positions and forces transform as x -> Q x, energies do not change.

Symmetry loss: M random elements Q_1..Q_M per batch (config forcefield.symmetry_loss_copies,
paper 5), each applied to the whole batch; the penalty is the mean over copies of the training
loss's form between the prediction on the moved batch and the moved prediction,
    L_sym = 1/M sum_m [ mean |E(Q_m x) - E(x)| / atoms + mean |F(Q_m x) - Q_m F(x)| ],
and the objective is L + lambda L_sym (forcefield.symmetry_loss_weight, paper 1). Gradients flow
through both sides.
"""

from __future__ import annotations

import torch

from eqscale import symmetry
from eqscale.forcefield.loss import forcefield_loss, loss_terms


def random_o3(n: int, generator: torch.Generator | None = None, dtype: torch.dtype = torch.float32,
              device: torch.device | str = "cpu") -> torch.Tensor:
    """n Haar-random elements of O(3) (n, 3, 3), half of them reflections."""
    return symmetry.random_orthogonal(n, generator, torch.float64, reflections=True).to(dtype=dtype, device=device)


def rotate_batch(batch: dict[str, torch.Tensor], rotations: torch.Tensor) -> dict[str, torch.Tensor]:
    """The batch with molecule m's positions and forces multiplied by rotations[m] (M, 3, 3) or one (3, 3)."""
    per_atom = rotations if rotations.dim() == 2 else rotations[batch["molecule"]]
    moved = dict(batch)
    for key in ("positions", "forces"):
        if key in batch:
            moved[key] = _apply(per_atom.to(batch[key].dtype), batch[key])
    return moved


def _apply(rotation: torch.Tensor, vectors: torch.Tensor) -> torch.Tensor:
    if rotation.dim() == 2:
        return vectors @ rotation.T
    return torch.einsum("aij,aj->ai", rotation, vectors)


def augment(batch: dict[str, torch.Tensor], generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """Data augmentation: each molecule of the batch moved by its own random O(3) element."""
    rotations = random_o3(int(batch["num_atoms"].shape[0]), generator, batch["positions"].dtype,
                          batch["positions"].device)
    return rotate_batch(batch, rotations)


def symmetry_loss(model: torch.nn.Module, batch: dict[str, torch.Tensor], copies: int,
                  generator: torch.Generator | None = None,
                  pred: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
    """Mean over `copies` random O(3) elements of the loss between f(Q x) and Q f(x) (see the module docstring)."""
    energy, forces = model(batch) if pred is None else pred
    rotations = random_o3(copies, generator, batch["positions"].dtype, batch["positions"].device)
    total = energy.new_zeros(())
    for rotation in rotations:
        moved_energy, moved_forces = model(rotate_batch(batch, rotation))
        target = {"energy": energy, "forces": _apply(rotation, forces), "num_atoms": batch["num_atoms"]}
        energy_term, force_term = loss_terms((moved_energy, moved_forces), target)
        total = total + energy_term + force_term
    return total / copies


def loss_with_symmetry(model: torch.nn.Module, batch: dict[str, torch.Tensor], copies: int, weight: float,
                       generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(L + lambda L_sym, L, L_sym) for one batch: the symmetry-loss arm's objective."""
    pred = model(batch)
    loss = forcefield_loss(pred, batch)
    penalty = symmetry_loss(model, batch, copies, generator, pred=pred)
    return loss + weight * penalty, loss, penalty
