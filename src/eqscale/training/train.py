"""`eqscale train --cell-dir results/runs/<cell>`: train one grid cell to exactly its number of steps.

The cell's model, size, steps, data fraction, augmentation and seed are read from its directory
name (`eqscale.grid.cell_dir` is the one place that writes it); the optimisation settings come from
the config's `training` section. A killed job rerun with the same arguments resumes from its last
good checkpoint and ends with the same weights as an uninterrupted run.

Outputs in the cell directory: metrics.csv (during training), checkpoint.pt (+ .prev, during),
model.pt (final weights) and run.json (written last; its presence means the cell is done).
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import platform
import sys
import time
from importlib import metadata
from pathlib import Path

import torch

from eqscale.config import ConfigError, add_config_arguments, config_from_args
from eqscale.grid import parse_cell_dir
from eqscale.io_utils import atomic_write_bytes, atomic_write_text


def package_versions() -> dict[str, str]:
    """Versions recorded in run.json."""
    out = {"python": platform.python_version()}
    for name in ("eqscale", "torch", "numpy", "h5py"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def train_cell(cell_dir: str | Path, tokens_dir: str | Path, config: dict, device: str = "auto",
               progress: bool = True, budget: float | None = None) -> dict:
    """Train the cell in `cell_dir`; return the run record written to run.json."""
    from eqscale.data.dataset import train_batch_stream
    from eqscale.models.registry import build_model
    from eqscale.training.device import choose_device
    from eqscale.training.loop import train_loop
    from eqscale.training.seeding import seed_everything

    cell_dir = Path(cell_dir)
    cell = parse_cell_dir(str(cell_dir))
    training = config["training"]
    torch.set_num_threads(training["threads"])
    dev = choose_device(device)
    seed_everything(cell["seed"])
    model = build_model(cell["model"], cell["size"]).to(dev)
    stream = train_batch_stream(
        tokens_dir, batch_size=training["batch_size"], horizon=config["tokens"]["horizon"],
        data_fraction=cell["data_fraction"], augment=cell["augment"], seed=cell["seed"],
        num_workers=training["num_workers"],
    )
    lr = training["lr"][cell["model"]]
    start = time.time()
    result = train_loop(
        model, stream, steps=cell["steps"], lr=lr, warmup_fraction=training["warmup_fraction"],
        schedule=training["schedule"], weight_decay=training["weight_decay"], grad_clip=training["grad_clip"],
        out_dir=cell_dir, checkpoint_every_s=training["checkpoint_every_s"], log_every=training["log_every"],
        device=dev,
        flops_per_step_fn=lambda batch: model.flops_per_step(*batch["face_mask"].shape, batch["object_mask"].shape[1]),
        # only what decides the result: an unrelated config edit must not void a resumable checkpoint
        progress=progress, config={"seed": config["seed"], "tokens": config["tokens"], "cell": cell,
                                   "training": {k: v for k, v in training.items() if k not in ("threads", "num_workers")}},
    )
    buffer = io.BytesIO()  # torch.save names its archive after the file: keep temp names out of the bytes
    torch.save(model.state_dict(), buffer)
    atomic_write_bytes(cell_dir / "model.pt", buffer.getvalue())
    record = {
        "cell": {**cell, "batch_size": training["batch_size"], "lr": lr, "budget": budget},
        "params": int(model.num_params()),
        "flops_per_step": result["total_flops"] / max(1, cell["steps"]),
        "total_flops": result["total_flops"],
        "tokens_per_step": result["total_tokens"] / max(1, cell["steps"]),
        "train_tokens": result["total_tokens"],
        "num_train_trajectories": result.get("num_train_trajectories"),
        "final_train_loss": result.get("final_loss"),
        "wall_time_s": time.time() - start,
        "device": str(dev) if dev.type == "cpu" else torch.cuda.get_device_name(dev),
        "versions": package_versions(),
        "config": {k: config[k] for k in ("seed", "training", "tokens")},
        "resumed_from_step": result.get("resumed_from_step"),
    }
    atomic_write_text(cell_dir / "run.json", json.dumps(record, indent=2, sort_keys=True))
    return record


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and train one cell."""
    parser = argparse.ArgumentParser(prog="eqscale train", description=__doc__.splitlines()[0])
    add_config_arguments(parser)
    parser.add_argument("--cell-dir", type=Path, required=True,
                        help="results/runs/<model>/size~S/steps~N/data~F/aug~A/seed~K")
    parser.add_argument("--tokens", type=Path, default=Path("results/tokens"), help="token shard directory")
    parser.add_argument("--device", default="auto", help="auto (a free GPU, else CPU), cpu, cuda or cuda:N")
    parser.add_argument("--budget", type=float, default=None, help="nominal FLOPs budget of the cell (recorded)")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        config = config_from_args(args)
        train_cell(args.cell_dir, args.tokens, config, device=args.device, progress=not args.no_progress,
                   budget=args.budget or None)
    except (ConfigError, ValueError, FileNotFoundError) as err:
        print(f"eqscale train: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
