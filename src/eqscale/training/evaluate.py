"""`eqscale evaluate --cell-dir results/runs/<cell>`: test metrics of a trained cell, as measurements -> eval.json.

Which samples. Every cell of a study walks the test split in one fixed order (a permutation drawn
from the study's global seed, not the cell's), so any two cells share their first samples and every
comparison between cells can be paired. A cell evaluates a pilot of `evaluation.min_samples`, then
continues along the order until the test MSE's standard error is at most `evaluation.target_rel_se`
of it, or `evaluation.max_samples` (or the whole split) is reached.

What it reports (see `eqscale.measurement` for the statistics):
* test_mse: the paper's metric, mean squared error of predicted vertex positions (m^2), with its
  delta-method standard error and a bootstrap interval over test samples;
* const_velocity_mse: the same for constant-velocity extrapolation x_t + h (x_t - x_{t-1}) on the
  same samples, the trivial baseline every model must beat; both split by whether two objects touch
  in the sample's frames (contact) or not (free flight);
* equivariance_error: mean relative change of the prediction under random transforms of the
  problem's symmetry group (z-rotations, x-y translations, vertical mirrors) on the first
  `equivariance_samples` samples of the order: float round-off for GATr, learned (or not) for the
  transformer.

eval_samples.npz beside eval.json holds the per-sample numbers (sample ids in evaluation order, the
model's and constant velocity's summed squared errors, the coordinates counted, the contact flag);
`eqscale collect` stacks them into results/sample_losses.npz for the analysis. A diverged cell
(run.json says so) gets an eval.json without test metrics and no samples: there is nothing to measure.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

from eqscale.cells import CellError
from eqscale.config import ConfigError, add_config_arguments, add_runtime_arguments, config_from_args
from eqscale.data.batch import num_scenes, prediction_equivariance_error
from eqscale.data.dataset import BatchLoader, TokenDataset
from eqscale.measurement import measure_ratio, ratio_se, samples_for_target
from eqscale.models.registry import build_model
from eqscale.records import EvalRecord, read_run, write_record
from eqscale.symmetry import random_group
from eqscale.training.cell_files import SAMPLES_NAME, load_weights, write_diverged_eval, write_samples  # noqa: F401  (re-exported)
from eqscale.training.device import choose_device
from eqscale.training.measure import evaluation_order, loader_of, per_sample_losses



@torch.no_grad()
def equivariance_error(model: torch.nn.Module, loader: BatchLoader, transforms: int, seed: int,
                       device: torch.device) -> float:
    """Mean relative prediction change under `transforms` random problem-group transforms per batch."""
    model.eval()
    gen = torch.Generator().manual_seed(seed)
    errors = []
    for batch in loader:
        batch = {k: v.to(device) for k, v in batch.items()}
        groups = [random_group(num_scenes(batch), gen, torch.float32, kind="problem").to(device)
                  for _ in range(transforms)]
        errors.append(sum(prediction_equivariance_error(model, batch, g) for g in groups) / transforms)
    return float(np.mean(errors)) if errors else math.nan


def _concat(a: dict, b: dict) -> dict:
    return {k: np.concatenate([a[k], b[k]]) for k in a}


def measure_test_split(model: torch.nn.Module, dataset: TokenDataset, order: np.ndarray, evaluation: dict,
                       horizon: int, device: torch.device) -> dict:
    """Per-sample losses over a prefix of `order`: the pilot, then as far as the error target (or the cap) needs."""
    cap = len(order) if evaluation["max_samples"] is None else min(len(order), evaluation["max_samples"])
    batch = evaluation["batch_size"]

    def run(start: int, stop: int) -> dict:
        return per_sample_losses(model, loader_of(dataset, order[start:stop], batch), horizon, device)

    done = min(cap, evaluation["min_samples"])
    samples = run(0, done)
    while done < cap:
        rel_se = ratio_se(samples["sq_error"], samples["n_values"]) / (samples["sq_error"].sum()
                                                                       / samples["n_values"].sum())
        if not rel_se > evaluation["target_rel_se"]:  # reached (or NaN: nothing more to learn)
            break
        wanted = samples_for_target(samples["sq_error"], samples["n_values"], evaluation["target_rel_se"])
        # a little beyond the estimate, so the next check usually passes instead of creeping up on it
        stop = min(cap, max(done + batch, math.ceil(1.1 * wanted)))
        samples = _concat(samples, run(done, stop))
        done = stop
    return samples


def _split_mse(samples: dict, mask: np.ndarray, key: str) -> float:
    n = samples["n_values"][mask].sum()
    return float(samples[key][mask].sum() / n) if n > 0 else math.nan


def evaluate_cell(cell_dir: str | Path, tokens_dir: str | Path, config: dict, device: str = "auto") -> EvalRecord:
    """Evaluate the final weights of a trained cell; write eval.json and eval_samples.npz."""
    start = time.perf_counter()
    cell_dir = Path(cell_dir)
    run = read_run(cell_dir)
    cell = run.cell
    if run.diverged:
        return write_diverged_eval(run, cell_dir, time.perf_counter() - start)
    torch.set_num_threads(config["training"]["threads"])
    dev = choose_device(device)
    model = build_model(cell.model, cell.size).to(dev)
    model.load_state_dict(load_weights(cell_dir, run, dev))
    ev = config["evaluation"]
    horizon = config["tokens"]["horizon"]
    dataset = TokenDataset(tokens_dir, "test", horizon)
    order = evaluation_order(len(dataset), config["seed"])
    samples = measure_test_split(model, dataset, order, ev, horizon, dev)
    write_samples(cell_dir / SAMPLES_NAME, samples)
    test = measure_ratio(samples["sq_error"], samples["n_values"], confidence=ev["confidence"], seed=cell.seed)
    equi_loader = loader_of(dataset, order[: ev["equivariance_samples"]], ev["batch_size"])
    contact = samples["in_contact"]
    record = EvalRecord(
        cell=cell, model_sha256=run.model_sha256, test_mse=test.value, test_mse_se=test.se, test_mse_lo=test.lo,
        test_mse_hi=test.hi, confidence=ev["confidence"], n_test_samples=test.n_samples,
        const_velocity_mse=_split_mse(samples, np.ones_like(contact), "cv_sq_error"),
        test_mse_contact=_split_mse(samples, contact, "sq_error"), test_mse_free=_split_mse(samples, ~contact, "sq_error"),
        const_velocity_mse_contact=_split_mse(samples, contact, "cv_sq_error"),
        const_velocity_mse_free=_split_mse(samples, ~contact, "cv_sq_error"),
        equivariance_error=equivariance_error(model, equi_loader, ev["equivariance_transforms"], cell.seed, dev),
        samples_file=SAMPLES_NAME, wall_time_s=time.perf_counter() - start)
    write_record(record, cell_dir)
    return record


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and evaluate one cell."""
    parser = argparse.ArgumentParser(prog="eqscale evaluate", description=__doc__.splitlines()[0])
    add_config_arguments(parser)
    add_runtime_arguments(parser)
    parser.add_argument("--cell-dir", type=Path, required=True)
    parser.add_argument("--tokens", type=Path, default=Path("results/tokens"))
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)
    try:
        config = config_from_args(args)
        result = evaluate_cell(args.cell_dir, args.tokens, config, device=args.device)
    except (ConfigError, CellError, ValueError, FileNotFoundError) as err:
        print(f"eqscale evaluate: {err}", file=sys.stderr)
        return 1
    if result.diverged:
        print(f"{result.cell.id}: diverged in training; nothing to evaluate")
    else:
        print(f"{result.cell.id}: test MSE {result.test_mse:.4g} +- {result.test_mse_se:.2g} m^2 "
              f"({result.n_test_samples} samples), constant velocity {result.const_velocity_mse:.4g}, "
              f"equivariance error {result.equivariance_error:.3g}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
