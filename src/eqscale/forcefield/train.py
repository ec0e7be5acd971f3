"""`eqscale ff-train --cell-dir results/runs/<cell>`: train one force-field cell on one epoch, to its compute budget.

As paper 2 (Ngo & Ravanbakhsh 2025): every configuration is seen at most once. The training split
is walked in one seeded permutation (from the global seed and the cell's), in consecutive batches
of `forcefield.batch_size` configurations; the cell takes the longest prefix of those batches whose
training FLOPs fit its budget, so samples seen D = steps x batch_size. A budget beyond one epoch is
an error (label more molecules), never a second pass.

Compute. A batch's training FLOPs are 3 x the network's analytic forward FLOPs of that batch
(forward + backward ~ 3 forwards), times 1 + M for the symmetry-loss arm, whose every step also runs
M rotated copies forward and backward. The analytic counts are linear in the graph's sizes (atoms,
edges, molecules, triplets), so each configuration's sizes are counted once, with the network's
own radius graph (and angle triplets), and a batch's are their sums: exactly what the network
would count on the batch. Rotated copies (augmentation, the symmetry loss) are charged the
un-rotated graph: a rotation changes distances only by float round-off.

Optimisation: schedule-free AdamW (`eqscale.training.loop`, optimizer="schedulefree") at the rate of
`learning_rate`, warm-up `forcefield.warmup_steps`, loss `forcefield_loss` (per-atom energy L1 +
per-atom force L2 norm). Arms: `aug~1` rotates each molecule of a batch by a random O(3) element,
`aug~sym` adds the symmetry loss (M = forcefield.symmetry_loss_copies, lambda =
forcefield.symmetry_loss_weight); their random draws come from (seeds, step), so a resumed run
draws the same ones. A killed job rerun with the same arguments resumes from its last good
checkpoint and ends with the same weights as an uninterrupted run.

Outputs in the cell directory, as `eqscale train`: metrics.csv, checkpoint.pt (+ .prev),
val.csv (with a validation split), model.pt (the schedule-free averaged weights) and run.json
(written last; its presence means the cell is done).
"""

from __future__ import annotations

import argparse
import bisect
import hashlib
import io
import itertools
import logging
import math
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from eqscale.cells import Cell, CellError
from eqscale.config import RUNTIME_SETTINGS, ConfigError, add_config_arguments, add_runtime_arguments, config_from_args
from eqscale.forcefield.dataset import MoleculeData
from eqscale.forcefield.evaluate import configuration_errors, load_molecules
from eqscale.forcefield.loss import forcefield_loss
from eqscale.forcefield.models import build_model, num_params, size_config
from eqscale.forcefield.models.common import ForceFieldNet, GraphCounts
from eqscale.forcefield.plan import step_passes
from eqscale.forcefield.symmetry import augment, loss_with_symmetry
from eqscale.grid import plan_cell
from eqscale.io_utils import atomic_write_bytes, package_versions
from eqscale.records import MODEL_NAME, RunRecord, write_record
from eqscale.training.device import choose_device
from eqscale.training.cell_files import diverged_wall_time
from eqscale.training.loop import TrainingDiverged, train_loop
from eqscale.training.measure import evaluation_order
from eqscale.training.seeding import seed_everything
from eqscale.training.cell_lock import CellBusy, cell_lock

SIZE_XS = "xs"  # the size the configured learning rates are for
_ORDER_SALT, _ROTATION_SALT = 0xFF0D, 0xFF07  # streams of the global and cell seeds apart from every other use
# the `training` keys this stage reads (the rest of that section is the rigid study's)
TRAINING_KEYS = RUNTIME_SETTINGS + ("log_every", "early_stopping")
COUNT_CHUNK = 4096  # configurations per radius-graph call when counting (bounds memory: sum of n^2 pairs)

Batch = dict[str, torch.Tensor]


def width(family: str, size: str) -> int:
    """The width the learning rate scales with: hidden features (mpnn, invariant, egnn) or channels (tensor2/4)."""
    config = size_config(family, size)
    return int(config.channels if family.startswith("tensor") else config.hidden)


def learning_rate(family: str, size: str, forcefield: dict) -> float:
    """The cell's learning rate: lr[family] * (width(xs) / width(size)) ** lr_width_exponent.

    `forcefield.lr[family]` is the rate at size xs; wider sizes get proportionally smaller rates
    (exponent 1: lr ~ 1 / width, muP-like for Adam; exponent 0: one rate for every size). width is the size config's `hidden` (mpnn, invariant, egnn) or
    `channels` (tensor2, tensor4).
    """
    ratio = width(family, SIZE_XS) / width(family, size)
    return float(forcefield["lr"][family]) * ratio ** float(forcefield["lr_width_exponent"])


def configuration_counts(model: ForceFieldNet, data: MoleculeData) -> np.ndarray:
    """(C, 4) int64 graph sizes of every configuration: atoms, edges, molecules (1), triplets (0 without angles).

    Counted with the network's own radius graph (and triplets, where it has them) on float32
    positions, as training batches are: the sums over a batch equal `model.graph_counts(batch)`.
    """
    counts = np.zeros((len(data), 4), np.int64)
    counts[:, 0], counts[:, 2] = data.num_atoms, 1
    with torch.no_grad():
        for start in range(0, len(data), COUNT_CHUNK):
            index = np.arange(start, min(start + COUNT_CHUNK, len(data)))
            batch = data.batch(index)
            graph = model.graph(batch)
            molecule = batch["molecule"]
            counts[index, 1] = torch.bincount(molecule[graph.receivers], minlength=len(index)).numpy()
            if hasattr(model, "triplets"):
                _, edge_out = model.triplets(graph, int(batch["numbers"].shape[0]))
                counts[index, 3] = torch.bincount(molecule[graph.receivers[edge_out]], minlength=len(index)).numpy()
    return counts


def training_flops(model: ForceFieldNet, counts: np.ndarray, passes: int = 1) -> int:
    """Training FLOPs of a batch of configurations with these counts: 3 x forward FLOPs x passes (1, or 1 + M)."""
    atoms, edges, molecules, triplets = (int(x) for x in counts.sum(axis=0))
    forward = model.analytic_forward_flops(GraphCounts(atoms=atoms, edges=edges, molecules=molecules,
                                                       triplets=triplets))
    return 3 * passes * int(forward)


def epoch_order(num_configurations: int, global_seed: int, cell_seed: int) -> np.ndarray:
    """The one permutation of the training split a cell walks (seeded by the global and the cell's seed)."""
    rng = np.random.default_rng(np.random.SeedSequence([int(global_seed), int(cell_seed), _ORDER_SALT]))
    return rng.permutation(num_configurations).astype(np.int64)


def step_generator(global_seed: int, cell_seed: int, step: int) -> torch.Generator:
    """The generator of a step's random rotations (augmentation or symmetry loss): a function of the seeds and step."""
    words = np.random.SeedSequence([int(global_seed), int(cell_seed), int(step), _ROTATION_SALT]).generate_state(2)
    return torch.Generator().manual_seed((int(words[0]) << 31) ^ int(words[1]))


@dataclass(frozen=True)
class EpochPlan:
    """The batches a cell trains on: `order` cut into full batches, each batch's training FLOPs, the steps taken."""

    order: np.ndarray  # configuration indices of the training split, in training order
    batch_size: int
    batch_flops: list[int]  # training FLOPs of each full batch of the epoch, in order
    steps: int  # the longest prefix of batches within the budget (at least 1)

    def indices(self, step: int) -> np.ndarray:
        """The configurations of the 0-based step's batch."""
        return self.order[step * self.batch_size:(step + 1) * self.batch_size]

    def flops(self, steps: int) -> int:
        """Training FLOPs of the first `steps` batches."""
        return sum(self.batch_flops[:steps])


def plan_epoch(cell: Cell, model: ForceFieldNet, data: MoleculeData, config: dict) -> EpochPlan:
    """The cell's batches and steps; ValueError naming the cell when one epoch cannot spend its budget."""
    ff = config["forcefield"]
    batch_size = int(ff["batch_size"])
    # a data fraction below 1 keeps that share of the permutation: a smaller training set, still one epoch
    order = epoch_order(len(data), config["seed"], cell.seed)[:max(1, round(cell.data_fraction * len(data)))]
    num_batches = len(order) // batch_size  # full batches only: every step sees batch_size configurations
    counts = configuration_counts(model, data)[order[:num_batches * batch_size]]
    passes = step_passes(config, cell.symmetry_loss)
    batch_flops = [training_flops(model, counts[k * batch_size:(k + 1) * batch_size], passes)
                   for k in range(num_batches)]
    cumulative = list(itertools.accumulate(batch_flops))
    epoch = cumulative[-1] if cumulative else 0
    if epoch < cell.budget:
        per_configuration = epoch / max(1, num_batches * batch_size)
        if per_configuration > 0:
            more = math.ceil((cell.budget - epoch) / per_configuration)
            need = f"about {more} more training configurations (~{more * 100 // max(1, len(order))}% more)"
        else:
            need = f"at least {batch_size - len(order)} more training configurations (not one full batch now)"
        raise ValueError(f"{cell.id}: one epoch of the training split ({len(order)} configurations, {num_batches} "
                         f"batches of {batch_size}) gives {epoch:.4g} training FLOPs, below the budget of "
                         f"{cell.budget:.4g}; force-field cells train a single epoch, so the config's molecules "
                         f"section must label {need} (more molecules, conformers, temperatures or configurations_per_run), "
                         "or lower the budget")
    steps = max(1, bisect.bisect_right(cumulative, cell.budget))
    return EpochPlan(order=order, batch_size=batch_size, batch_flops=batch_flops, steps=steps)


class ConfigurationStream:
    """The loop's batch stream: `stream(k)` yields the batches of steps k, k+1, ... to the end of the one epoch.

    Each batch carries its 0-based step as `batch["step"]` (what the FLOP count and the symmetry
    loss's generator read); augmented batches are rotated with the step's own generator.
    """

    def __init__(self, data: MoleculeData, plan: EpochPlan, augment_batches: bool, global_seed: int,
                 cell_seed: int) -> None:
        self.data, self.plan, self.augment = data, plan, augment_batches
        self.global_seed, self.cell_seed = global_seed, cell_seed
        self.seed = int(np.random.SeedSequence([int(global_seed), int(cell_seed), _ORDER_SALT]).generate_state(1)[0])
        # molecules (the loop's name for the unit of a split) among those configurations
        self.num_trajectories = int(len(np.unique(data.molecule_id[plan.order])))
        self.num_samples = len(plan.order)  # the configurations the cell may draw from (its data fraction)

    def __call__(self, start: int) -> Iterator[Batch]:
        for step in range(start, len(self.plan.batch_flops)):
            batch = self.data.batch(self.plan.indices(step))
            if self.augment:
                batch = augment(batch, step_generator(self.global_seed, self.cell_seed, step))
            batch["step"] = torch.tensor(step)
            yield batch


def loss_function(cell: Cell, forcefield: dict, global_seed: int
                  ) -> Callable[[torch.nn.Module, Batch], torch.Tensor | tuple[torch.Tensor, torch.Tensor]]:
    """The cell's training objective; the symmetry-loss arm returns (L + lambda L_sym, L) so metrics.csv logs L."""
    if not cell.symmetry_loss:
        return lambda model, batch: forcefield_loss(model(batch), batch)
    copies, weight = int(forcefield["symmetry_loss_copies"]), float(forcefield["symmetry_loss_weight"])

    def with_symmetry(model: torch.nn.Module, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        generator = step_generator(global_seed, cell.seed, int(batch["step"]))
        total, plain, _ = loss_with_symmetry(model, batch, copies, weight, generator)
        return total, plain

    return with_symmetry


class ValidationLoss:
    """validate_fn of the loop: the test loss (energy + force L2 error per atom) on the first val configurations."""

    def __init__(self, data: MoleculeData, samples: int, global_seed: int, batch_size: int,
                 device: torch.device) -> None:
        self.data, self.batch_size, self.device = data, batch_size, device
        self.indices = evaluation_order(len(data), global_seed)[:samples]

    def __call__(self, model: torch.nn.Module) -> float:
        errors = configuration_errors(model, self.data, self.indices, self.batch_size, self.device)
        return float(errors["sq_error"].sum() / errors["n_values"].sum())


def train_cell(cell_dir: str | Path, molecules_dir: str | Path, config: dict, device: str = "auto",
               progress: bool = True) -> RunRecord:
    """Train the force-field cell in `cell_dir` on the molecules in `molecules_dir`; return its run.json record."""
    cell_dir = Path(cell_dir)
    cell = plan_cell(Cell.from_dir(cell_dir), config)
    if cell.converge:
        raise ValueError(f"{cell.id}: force-field cells train one epoch to their budget; there is no converging "
                         "force-field cell (use budget~, not converge~)")
    with cell_lock(cell_dir):
        return _train_locked(cell, cell_dir, Path(molecules_dir), config, device, progress)


def _train_locked(cell: Cell, cell_dir: Path, molecules_dir: Path, config: dict, device: str,
                  progress: bool) -> RunRecord:
    """`train_cell` once the cell's lock is held: train (or resume), write model.pt, then run.json."""
    training, ff = config["training"], config["forcefield"]
    torch.set_num_threads(training["threads"])
    dev = choose_device(device)
    seed_everything(cell.seed)
    model = build_model(cell.model, cell.size, ff)
    data = load_molecules(molecules_dir, "train", config)
    plan = plan_epoch(cell, model, data, config)
    stream = ConfigurationStream(data, plan, cell.augment, config["seed"], cell.seed)
    lr = cell.lr if cell.lr is not None else learning_rate(cell.model, cell.size, ff)
    validation = None
    val_samples = training["early_stopping"]["val_samples"]
    val_data = load_molecules(molecules_dir, "val", config)
    if len(val_data):
        validation = ValidationLoss(val_data, val_samples, config["seed"], config["evaluation"]["batch_size"], dev)
    diverged = None
    try:
        result = train_loop(
            model, stream, steps=plan.steps, lr=lr, warmup_steps=ff["warmup_steps"], weight_decay=ff["weight_decay"],
            grad_clip=ff["grad_clip"], optimizer="schedulefree", out_dir=cell_dir,
            # fp32 on every device: bf16's ~3 significant digits would floor the force error of the larger cells
            bf16=False,
            checkpoint_every_s=training["checkpoint_every_s"], log_every=training["log_every"], device=dev,
            loss_fn=loss_function(cell, ff, config["seed"]), tokens_fn=lambda batch: int(batch["numbers"].shape[0]),
            flops_per_step_fn=lambda batch: plan.batch_flops[int(batch["step"])],
            # only what decides the result: an edit of the rigid study's training keys must not void a checkpoint
            progress=progress, config={"seed": config["seed"], "molecules": config["molecules"], "forcefield": ff,
                                       "cell": cell.as_record(), "val_samples": val_samples},
            validate_fn=validation,
        )
    except TrainingDiverged as err:
        # a result, not a crash: the cell is recorded as diverged and counts against its family
        diverged = err
        result = {"steps": err.step - 1, "final_loss": None, "resumed_from_step": None, "val_loss": None,
                  "wall_time_s": math.nan}
    done = int(result["steps"])
    buffer = io.BytesIO()  # torch.save names its archive after the file: keep temp names out of the bytes
    torch.save(model.state_dict(), buffer)
    weights = buffer.getvalue()
    atomic_write_bytes(cell_dir / MODEL_NAME, weights)
    seen = np.concatenate([plan.indices(k) for k in range(done)]) if done else np.zeros(0, np.int64)
    total_flops = plan.flops(done)
    record = RunRecord(
        cell=cell, steps=done, batch_size=plan.batch_size, lr=lr, params=int(num_params(cell.model, cell.size)),
        total_flops=float(total_flops),
        flops_per_step_nominal=float(cell.flops_per_step if cell.flops_per_step is not None
                                     else plan.flops(plan.steps) / plan.steps),
        train_tokens=int(data.num_atoms[seen].sum()),
        num_train_trajectories=stream.num_trajectories, num_train_samples=stream.num_samples,
        final_train_loss=result["final_loss"], val_loss=result["val_loss"], stopped_early=False,
        wall_time_s=float(result["wall_time_s"]) if diverged is None else diverged_wall_time(cell_dir),
        device=str(dev) if dev.type == "cpu" else torch.cuda.get_device_name(dev),
        model_sha256=hashlib.sha256(weights).hexdigest(),
        versions=package_versions("eqscale", "torch", "numpy", "h5py", "schedulefree", "e3nn"),
        config={"seed": config["seed"], "molecules": config["molecules"], "forcefield": ff,
                "training": {k: v for k, v in training.items() if k in TRAINING_KEYS}},
        resumed_from_step=result["resumed_from_step"],
        diverged=diverged is not None, diverged_message=None if diverged is None else str(diverged),
    )
    write_record(record, cell_dir)  # last: its presence means the cell is done
    return record


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and train one force-field cell."""
    parser = argparse.ArgumentParser(prog="eqscale ff-train", description=__doc__.splitlines()[0])
    add_config_arguments(parser)
    add_runtime_arguments(parser)
    parser.add_argument("--cell-dir", type=Path, required=True,
                        help="the cell's run directory, "
                             "results/runs/<family>/size~S/budget~B/data~1/aug~<0|1|sym>/lr~auto/seed~K")
    parser.add_argument("--molecules", type=Path, default=Path("results/molecules"),
                        help="the labelled molecules: stats.json and the shards it lists")
    parser.add_argument("--device", default="auto", help="auto (a free GPU, else CPU), cpu, cuda or cuda:N")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        config = config_from_args(args)
        train_cell(args.cell_dir, args.molecules, config, device=args.device, progress=not args.no_progress)
    except (ConfigError, CellError, CellBusy, ValueError, FileNotFoundError) as err:
        print(f"eqscale ff-train: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
