"""The `eqscale` command: one subcommand per workflow stage, each a thin CLI over library code."""

from __future__ import annotations

import importlib
import signal
import sys

# stage name -> module with `main(argv) -> int`; imported lazily so `eqscale --help` stays fast
STAGES: dict[str, tuple[str, str]] = {
    "assets": ("eqscale.physics.assets_cli", "build the procedural KuBasic-like assets"),
    "simulate": ("eqscale.physics.simulate", "simulate one shard of Kubric MOVi-B scenes"),
    "molecules": ("eqscale.forcefield.molecules_cli", "label one shard of molecules with GFN2-xTB (force fields)"),
    "tokenize": ("eqscale.data.tokenize", "turn raw shards into token shards"),
    "train": ("eqscale.training.train", "train one grid cell"),
    "evaluate": ("eqscale.training.evaluate", "evaluate one trained cell"),
    "ff-train": ("eqscale.forcefield.train", "train one force-field grid cell (one epoch, schedule-free AdamW)"),
    "ff-evaluate": ("eqscale.forcefield.evaluate", "evaluate one trained force-field cell"),
    "lr-rule": ("eqscale.training.lr_rule", "fit each family's learning-rate rule from its sweep"),
    "collect": ("eqscale.analysis.collect", "gather every cell into summary.csv"),
    "fit": ("eqscale.analysis.fit_cli", "fit scaling laws with bootstrap intervals"),
    "plot": ("eqscale.analysis.plots", "draw the figures"),
    "report": ("eqscale.analysis.report", "write results/report.md"),
    "plan": ("eqscale.plan", "print a config's job count and estimated compute"),
    "validate": ("eqscale.validate", "check a config the way snakemake does (schema, splits, grid)"),
}


def _usage() -> str:
    width = max(len(name) for name in STAGES)
    lines = ["usage: eqscale <stage> [options]   (eqscale <stage> --help for a stage's options)", "", "stages:"]
    lines += [f"  {name:<{width}}  {help_}" for name, (_, help_) in STAGES.items()]
    return "\n".join(lines)


def _terminate(signum: int, frame) -> None:
    # Snakemake (and SLURM) stop jobs with SIGTERM, which by default kills Python without unwinding:
    # as an exception, `finally` blocks and context managers remove temp files and release locks
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    """Dispatch `eqscale <stage> ...` to the stage's `main`."""
    if argv is None:  # a real command, not a call from Python code that owns its signal handlers
        signal.signal(signal.SIGTERM, _terminate)
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0
    if argv[0] in ("-V", "--version"):
        from eqscale import __version__

        print(__version__)
        return 0
    stage, rest = argv[0], argv[1:]
    if stage not in STAGES:
        print(f"eqscale: unknown stage {stage!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(STAGES[stage][0])
    return int(module.main(rest) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
