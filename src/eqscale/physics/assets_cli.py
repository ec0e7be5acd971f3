"""`eqscale assets`: build the procedural KuBasic-like asset set (meshes, URDFs, Kubric manifest)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from eqscale.config import ConfigError, add_config_arguments, config_from_args
from eqscale.physics.assets import build_asset_dir


def main(argv: list[str] | None = None) -> int:
    """Build every configured shape into --out (written atomically)."""
    parser = argparse.ArgumentParser(prog="eqscale assets", description=__doc__)
    add_config_arguments(parser)
    parser.add_argument("--out", type=Path, default=Path("results/assets"), help="output asset directory")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    try:
        config = config_from_args(args)
        assets = config["assets"]
        manifest = build_asset_dir(args.out, assets["shapes"], assets["max_faces"], assets["vhacd_resolution"],
                                   progress=not args.no_progress)
    except (ConfigError, ValueError) as err:
        print(f"eqscale assets: {err}", file=sys.stderr)
        return 1
    print(manifest)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
