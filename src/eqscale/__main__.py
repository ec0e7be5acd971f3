"""`python -m eqscale <stage> ...` is the same as the `eqscale` console script."""

from eqscale.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
