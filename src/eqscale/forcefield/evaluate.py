"""`eqscale ff-evaluate --cell-dir results/runs/<cell>`: test metrics of a trained force-field cell -> eval.json.

Which configurations. Every cell walks the test split in one fixed order (a permutation of the
global seed, `eqscale.training.measure.evaluation_order`, the same for every cell, so cells pair),
a pilot of `evaluation.min_samples` configurations, then on until the test loss's standard error is
at most `evaluation.target_rel_se` of it, or `evaluation.max_samples` (or the split) is reached.

The test loss is a ratio of sums over configurations i, so that it pairs and resamples like the
rigid study's MSE (`eqscale.measurement`):

    loss = sum_i e_i / sum_i n_i,   e_i = |E_i - E_ref,i| + sum_{atoms a of i} |F_a - F_ref,a|,   n_i = atoms of i

the energy error per atom (atom-weighted) plus the mean force L2 error per atom, in eV (energies in
eV, forces in eV/A: the sum is paper 2's per-atom loss, as the training loss weighs its terms).
eval.json keeps the rigid study's field names: test_mse holds this loss, const_velocity_mse that of
the trivial baseline, the zero predictor (E = 0 on reference-subtracted energies, F = 0), and
energy_mae (eV/atom), force_mae (eV/A per component) and force_l2 (eV/A per atom) its parts.
equivariance_error is mean |F(Qx) - Q F(x)| / mean |F(x)| over the first
`evaluation.equivariance_samples` configurations and `evaluation.equivariance_transforms` random
O(3) elements each: float round-off for the equivariant families, O(1) for an untrained mpnn.

eval_samples.npz beside eval.json has the rigid study's keys, so `eqscale collect` stacks both
studies alike: sample (test configuration ids, evaluation order), sq_error (e_i above: the name is
the rigid study's, the value is not squared), cv_sq_error (e_i of the zero predictor), n_values
(atoms), in_contact (all false: molecules have no contact events). A diverged cell gets an
eval.json without test metrics and no samples.
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
from eqscale.config import ConfigError, add_config_arguments, add_runtime_arguments, config_from_args, config_hash
from eqscale.forcefield.dataset import MoleculeData, load_split
from eqscale.forcefield.models import build_model
from eqscale.forcefield.splits import StatisticsError, read_statistics
from eqscale.forcefield.symmetry import random_o3, rotate_batch
from eqscale.measurement import measure_ratio, ratio_se, samples_for_target
from eqscale.records import EvalRecord, RecordError, read_run, write_record
from eqscale.training.device import choose_device
from eqscale.training.cell_files import SAMPLES_NAME, load_weights, write_diverged_eval, write_samples
from eqscale.training.measure import evaluation_order

STATS_NAME = "stats.json"
SAMPLE_KEYS = ("sample", "sq_error", "cv_sq_error", "n_values", "in_contact")  # what eval_samples.npz holds
# per configuration, kept in memory for eval.json's parts of the loss
PART_KEYS = ("energy_abs_error", "force_abs_error_sum", "force_l2_error_sum")


def molecule_files(molecules_dir: str | Path) -> tuple[list[Path], Path]:
    """(the label shards stats.json was fitted on, stats.json) of a molecules directory."""
    stats_path = Path(molecules_dir) / STATS_NAME
    stats = read_statistics(stats_path)
    return [stats_path.parent / s["name"] for s in stats["shards"]], stats_path


def load_molecules(molecules_dir: str | Path, split: str, config: dict) -> MoleculeData:
    """A split of the molecules directory, refused when it was labelled under another `molecules` config."""
    shards, stats_path = molecule_files(molecules_dir)
    expected = config_hash(config, ["seed", "molecules"])
    labelled = read_statistics(stats_path)["config_hash"]
    if labelled != expected:
        raise StatisticsError(f"{stats_path} was labelled under config hash {labelled}, this config's seed and "
                              f"molecules sections hash to {expected}: re-run eqscale molecules, or pass the config "
                              "the molecules were labelled with")
    return load_split(shards, stats_path, split)


def _model_batch(data: MoleculeData, indices: np.ndarray, device: torch.device) -> tuple[dict, dict]:
    """(float32 batch for the model on `device`, float64 reference batch on the CPU) of the same configurations."""
    reference = data.batch(indices, dtype=torch.float64)
    # float64 -> float32 rounds exactly as building the batch in float32 does: the model sees training's inputs
    model_batch = {k: (v.to(torch.float32) if v.is_floating_point() else v).to(device) for k, v in reference.items()}
    return model_batch, reference


@torch.no_grad()
def configuration_errors(model: torch.nn.Module, data: MoleculeData, indices: np.ndarray, batch_size: int,
                         device: torch.device) -> dict[str, np.ndarray]:
    """Per configuration of `indices`, in order: the SAMPLE_KEYS of eval_samples.npz and the PART_KEYS (float64)."""
    model.eval()
    parts: dict[str, list[np.ndarray]] = {k: [] for k in SAMPLE_KEYS + PART_KEYS}
    indices = np.asarray(indices, np.int64)
    for start in range(0, len(indices), batch_size):
        chunk = indices[start:start + batch_size]
        batch, reference = _model_batch(data, chunk, device)
        energy, forces = model(batch)
        counts = reference["num_atoms"].numpy()
        first = np.cumsum(counts) - counts
        energy_error = np.abs(energy.double().cpu().numpy() - reference["energy"].numpy())
        force_error = forces.double().cpu().numpy() - reference["forces"].numpy()
        force_l2 = np.add.reduceat(np.linalg.norm(force_error, axis=1), first)
        force_abs = np.add.reduceat(np.abs(force_error).sum(axis=1), first)
        zero_l2 = np.add.reduceat(np.linalg.norm(reference["forces"].numpy(), axis=1), first)
        parts["sample"].append(chunk)
        parts["sq_error"].append(energy_error + force_l2)
        parts["cv_sq_error"].append(np.abs(reference["energy"].numpy()) + zero_l2)
        parts["n_values"].append(counts.astype(np.int64))
        parts["in_contact"].append(np.zeros(len(chunk), bool))
        parts["energy_abs_error"].append(energy_error)
        parts["force_abs_error_sum"].append(force_abs)
        parts["force_l2_error_sum"].append(force_l2)
    empty = {"sample": np.int64, "n_values": np.int64, "in_contact": bool}
    return {k: np.concatenate(v) if v else np.zeros(0, empty.get(k, np.float64)) for k, v in parts.items()}


def _concat(a: dict, b: dict) -> dict:
    return {k: np.concatenate([a[k], b[k]]) for k in a}


def measure_test_split(model: torch.nn.Module, data: MoleculeData, order: np.ndarray, evaluation: dict,
                       device: torch.device) -> dict[str, np.ndarray]:
    """Per-configuration errors over a prefix of `order`: the pilot, then as far as the error target (or cap) needs."""
    cap = len(order) if evaluation["max_samples"] is None else min(len(order), evaluation["max_samples"])
    batch = evaluation["batch_size"]

    def run(start: int, stop: int) -> dict:
        return configuration_errors(model, data, order[start:stop], batch, device)

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


@torch.no_grad()
def equivariance_error(model: torch.nn.Module, data: MoleculeData, indices: np.ndarray, transforms: int, seed: int,
                       batch_size: int, device: torch.device) -> float:
    """mean |F(Qx) - Q F(x)| / mean |F(x)| over the configurations' atoms and `transforms` random O(3) elements each."""
    model.eval()
    gen = torch.Generator().manual_seed(seed)
    moved_error, size = 0.0, 0.0
    for start in range(0, len(indices), batch_size):
        batch, _ = _model_batch(data, np.asarray(indices[start:start + batch_size]), device)
        _, forces = model(batch)
        for _ in range(transforms):
            rotations = random_o3(int(batch["num_atoms"].shape[0]), gen, torch.float32, device)
            _, moved_forces = model(rotate_batch(batch, rotations))
            expected = rotate_batch({"forces": forces, "molecule": batch["molecule"]}, rotations)["forces"]
            moved_error += float(torch.linalg.vector_norm(moved_forces - expected, dim=-1).double().sum())
            size += float(torch.linalg.vector_norm(forces, dim=-1).double().sum())
    return moved_error / size if size > 0 else math.nan


def evaluate_cell(cell_dir: str | Path, molecules_dir: str | Path, config: dict, device: str = "auto") -> EvalRecord:
    """Evaluate the final weights of a trained force-field cell; write eval.json and eval_samples.npz."""
    start = time.perf_counter()
    cell_dir = Path(cell_dir)
    run = read_run(cell_dir)
    cell = run.cell
    if run.diverged:
        return write_diverged_eval(run, cell_dir, time.perf_counter() - start)
    torch.set_num_threads(config["training"]["threads"])
    dev = choose_device(device)
    model = build_model(cell.model, cell.size, config["forcefield"]).to(dev)
    model.load_state_dict(load_weights(cell_dir, run, dev))
    ev = config["evaluation"]
    data = load_molecules(molecules_dir, "test", config)
    if not len(data):
        raise ValueError(f"{molecules_dir}: the test split holds no configuration; raise molecules.test_fraction")
    order = evaluation_order(len(data), config["seed"])
    samples = measure_test_split(model, data, order, ev, dev)
    write_samples(cell_dir / SAMPLES_NAME, {k: samples[k] for k in SAMPLE_KEYS})
    test = measure_ratio(samples["sq_error"], samples["n_values"], confidence=ev["confidence"], seed=cell.seed)
    atoms = float(samples["n_values"].sum())
    record = EvalRecord(
        cell=cell, model_sha256=run.model_sha256, test_mse=test.value, test_mse_se=test.se, test_mse_lo=test.lo,
        test_mse_hi=test.hi, confidence=ev["confidence"], n_test_samples=test.n_samples,
        const_velocity_mse=float(samples["cv_sq_error"].sum() / atoms),
        energy_mae=float(np.mean(samples["energy_abs_error"] / samples["n_values"])),
        force_mae=float(samples["force_abs_error_sum"].sum() / (3 * atoms)),
        force_l2=float(samples["force_l2_error_sum"].sum() / atoms),
        equivariance_error=equivariance_error(model, data, order[:ev["equivariance_samples"]],
                                              ev["equivariance_transforms"], cell.seed, ev["batch_size"], dev),
        samples_file=SAMPLES_NAME, wall_time_s=time.perf_counter() - start)
    write_record(record, cell_dir)
    return record


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and evaluate one force-field cell."""
    parser = argparse.ArgumentParser(prog="eqscale ff-evaluate", description=__doc__.splitlines()[0])
    add_config_arguments(parser)
    add_runtime_arguments(parser)
    parser.add_argument("--cell-dir", type=Path, required=True)
    parser.add_argument("--molecules", type=Path, default=Path("results/molecules"),
                        help="the labelled molecules: stats.json and the shards it lists")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)
    try:
        config = config_from_args(args)
        result = evaluate_cell(args.cell_dir, args.molecules, config, device=args.device)
    except (ConfigError, CellError, RecordError, ValueError, FileNotFoundError) as err:
        print(f"eqscale ff-evaluate: {err}", file=sys.stderr)
        return 1
    if result.diverged:
        print(f"{result.cell.id}: diverged in training; nothing to evaluate")
    else:
        print(f"{result.cell.id}: test loss {result.test_mse:.4g} +- {result.test_mse_se:.2g} eV/atom "
              f"({result.n_test_samples} configurations; energy MAE {result.energy_mae:.3g} eV/atom, force MAE "
              f"{result.force_mae:.3g} eV/A), zero predictor {result.const_velocity_mse:.4g}, "
              f"equivariance error {result.equivariance_error:.3g}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
