"""Per-sample losses of a model over a fixed list of samples: what evaluation and validation both measure.

The evaluation order (a permutation of a split's samples drawn from the study's global seed) is
the same for every cell, so cells evaluated on a prefix of it share their samples; validation takes
the first samples of the same kind of order on the validation split.
"""

from __future__ import annotations

import numpy as np
import torch

from eqscale.data.batch import per_scene_squared_error
from eqscale.data.dataset import BatchLoader, TokenDataset

_ORDER_SALT = 0xE7A1  # the evaluation order's stream, apart from every other use of the global seed


def constant_velocity(batch: dict[str, torch.Tensor], horizon: int) -> torch.Tensor:
    """Constant-velocity extrapolation of every vertex `horizon` frames ahead."""
    curr = batch["vertices_curr"]
    return curr + horizon * (curr - batch["vertices_prev"])


def evaluation_order(num_samples: int, global_seed: int) -> np.ndarray:
    """A split's samples in the order every cell of a study evaluates them (a permutation of the global seed)."""
    rng = np.random.default_rng(np.random.SeedSequence([int(global_seed), _ORDER_SALT]))
    return rng.permutation(num_samples).astype(np.int64)


@torch.no_grad()
def per_sample_losses(model: torch.nn.Module, loader: BatchLoader, horizon: int, device: torch.device) -> dict:
    """Per sample: id, the model's and constant velocity's summed squared errors, coordinates counted, contact."""
    model.eval()
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("sample", "sq_error", "cv_sq_error", "n_values",
                                                          "in_contact")}
    for batch in loader:
        batch = {k: v.to(device) for k, v in batch.items()}
        sq, n = per_scene_squared_error(model(batch), batch["vertices_target"], batch)
        cv, _ = per_scene_squared_error(constant_velocity(batch, horizon), batch["vertices_target"], batch)
        parts["sample"].append(batch["sample"].cpu().numpy())
        parts["sq_error"].append(sq.double().cpu().numpy())
        parts["cv_sq_error"].append(cv.double().cpu().numpy())
        parts["n_values"].append(n.cpu().numpy().astype(np.int64))
        parts["in_contact"].append(batch["in_contact"].cpu().numpy().astype(bool))
    return {k: np.concatenate(v) if v else np.zeros(0) for k, v in parts.items()}


def loader_of(dataset: TokenDataset, indices: np.ndarray, batch_size: int) -> BatchLoader:
    """One pass over `indices` of `dataset`, in that order."""
    return BatchLoader(dataset, batch_size, shuffle=False, drop_last=False, epochs=1, num_workers=0, seed=0,
                       sample_indices=indices)


class ValidationLoss:
    """validate_fn of the training loop: vertex MSE over the first `samples` of the validation split's order."""

    def __init__(self, tokens_dir, horizon: int, samples: int, global_seed: int, batch_size: int,
                 device: torch.device) -> None:
        self.dataset = TokenDataset(tokens_dir, "val", horizon)
        order = evaluation_order(len(self.dataset), global_seed)[:samples]
        self.loader, self.horizon, self.device = loader_of(self.dataset, order, batch_size), horizon, device

    def __call__(self, model: torch.nn.Module) -> float:
        losses = per_sample_losses(model, self.loader, self.horizon, self.device)
        return float(losses["sq_error"].sum() / losses["n_values"].sum())
