"""`eqscale evaluate --cell-dir results/runs/<cell>`: test metrics of a trained cell -> eval.json.

Reports, on the test split (all of it unless evaluation.max_samples caps it):
* test_mse: the paper's metric, mean squared error of predicted vertex positions (m^2);
* const_velocity_mse: the same for constant-velocity extrapolation x_t + h (x_t - x_{t-1}), the
  trivial baseline every model must beat;
* equivariance_error: mean relative change of the prediction under random transforms of the
  problem's symmetry group (z-rotations, x-y translations, vertical mirrors), see
  `eqscale.symmetry.equivariance_error`: float round-off for GATr, learned (or not) for the transformer.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import sys
import time
from pathlib import Path

import torch

from eqscale.cells import CellError
from eqscale.config import ConfigError, add_config_arguments, config_from_args
from eqscale.data.batch import masked_vertex_mse
from eqscale.data.dataset import eval_batches
from eqscale.models.registry import build_model
from eqscale.records import MODEL_NAME, EvalRecord, RecordError, RunRecord, read_run, write_record
from eqscale.symmetry import equivariance_error, random_problem_transform
from eqscale.training.device import choose_device


def constant_velocity(batch: dict[str, torch.Tensor], horizon: int) -> torch.Tensor:
    """Constant-velocity extrapolation of every vertex `horizon` frames ahead."""
    curr = batch["vertices_curr"]
    return curr + horizon * (curr - batch["vertices_prev"])


@torch.no_grad()
def evaluate_model(model: torch.nn.Module, batches, horizon: int, equivariance_samples: int,
                   equivariance_transforms: int, seed: int, device: torch.device) -> dict:
    """Test MSE, constant-velocity MSE and equivariance error of `model` over `batches`."""
    model.eval()
    sq_model = sq_const = 0.0
    count = 0
    samples = 0
    equi_errors: list[float] = []
    gen = torch.Generator().manual_seed(seed)
    for batch in batches:
        batch = {k: v.to(device) for k, v in batch.items()}
        n = batch["vertex_mask"].sum().item() * 3
        pred = model(batch)
        sq_model += masked_vertex_mse(pred, batch["vertices_target"], batch["vertex_mask"]).item() * n
        sq_const += masked_vertex_mse(constant_velocity(batch, horizon), batch["vertices_target"],
                                      batch["vertex_mask"]).item() * n
        count += n
        b = batch["vertex_mask"].shape[0]
        if samples < equivariance_samples:
            transforms = [tuple(x.to(device) for x in random_problem_transform(b, gen, dtype=torch.float32))
                          for _ in range(equivariance_transforms)]
            equi_errors.append(equivariance_error(model, batch, transforms))
        samples += b
    if count == 0:
        raise ValueError("the test split is empty: no samples to evaluate")
    return {
        "test_mse": sq_model / count,
        "const_velocity_mse": sq_const / count,
        "equivariance_error": sum(equi_errors) / len(equi_errors),
        "num_test_samples": samples,
    }


def load_weights(cell_dir: Path, run: RunRecord, device: torch.device) -> dict:
    """The state dict in the cell's model.pt, after checking its sha256 against run.json's."""
    path = cell_dir / MODEL_NAME
    try:
        blob = path.read_bytes()
    except FileNotFoundError:
        raise RecordError(f"{path} not found: train the cell first (eqscale train --cell-dir {cell_dir})") from None
    digest = hashlib.sha256(blob).hexdigest()
    if digest != run.model_sha256:
        raise RecordError(f"{path} does not match the sha256 run.json records ({digest[:12]}... vs "
                          f"{run.model_sha256[:12]}...): the file is corrupt or from another run; retrain the cell")
    return torch.load(io.BytesIO(blob), map_location=device, weights_only=True)


def evaluate_cell(cell_dir: str | Path, tokens_dir: str | Path, config: dict, device: str = "auto") -> EvalRecord:
    """Evaluate the final weights of a trained cell and write eval.json."""
    start = time.perf_counter()
    cell_dir = Path(cell_dir)
    run = read_run(cell_dir)
    cell = run.cell
    torch.set_num_threads(config["training"]["threads"])
    dev = choose_device(device)
    model = build_model(cell.model, cell.size).to(dev)
    model.load_state_dict(load_weights(cell_dir, run, dev))
    ev = config["evaluation"]
    horizon = config["tokens"]["horizon"]
    batches = eval_batches(tokens_dir, "test", batch_size=ev["batch_size"], horizon=horizon,
                           max_samples=ev["max_samples"])
    result = evaluate_model(model, batches, horizon, ev["equivariance_samples"], ev["equivariance_transforms"],
                            seed=cell.seed, device=dev)
    record = EvalRecord(cell=cell, model_sha256=run.model_sha256, test_mse=result["test_mse"],
                        const_velocity_mse=result["const_velocity_mse"],
                        equivariance_error=result["equivariance_error"], n_test_samples=result["num_test_samples"],
                        wall_time_s=time.perf_counter() - start)
    write_record(record, cell_dir)
    return record


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and evaluate one cell."""
    parser = argparse.ArgumentParser(prog="eqscale evaluate", description=__doc__.splitlines()[0])
    add_config_arguments(parser)
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
    print(f"{result.cell.id}: test MSE {result.test_mse:.4g} m^2, constant velocity {result.const_velocity_mse:.4g}, "
          f"equivariance error {result.equivariance_error:.3g} ({result.n_test_samples} samples)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
