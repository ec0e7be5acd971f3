"""`eqscale fit`: scaling-law fits with bootstrap intervals, summary.csv -> results/fits/*.json.

Writes frontier.json, joint.json, isoflop.json and data_efficiency.json, each with one entry per arm
and the comparisons between arms. A fit that cannot be done (too few points, one budget only, ...)
is recorded with its reason; the stage fails only on an unreadable summary.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import pandas as pd

from eqscale.analysis.bootstrap import DEFAULT_CONFIDENCE, DEFAULT_RESAMPLES
from eqscale.analysis.fit import fit_all
from eqscale.analysis.errors import FitError
from eqscale.analysis.results import Skipped
from eqscale.analysis.store import FIT_FILES, write_fits


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, fit, write the JSON files."""
    parser = argparse.ArgumentParser(prog="eqscale fit", description=__doc__.splitlines()[0])
    parser.add_argument("--summary", type=Path, default=Path("results/summary.csv"), help="output of eqscale collect")
    parser.add_argument("--out-dir", type=Path, default=Path("results/fits"), help="directory for the JSON files")
    parser.add_argument("--bootstrap", type=int, default=DEFAULT_RESAMPLES, metavar="N",
                        help=f"bootstrap resamples per fit (default {DEFAULT_RESAMPLES}; 0 = no intervals)")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    parser.add_argument("--confidence", type=float, default=DEFAULT_CONFIDENCE,
                        help=f"level of the percentile intervals (default {DEFAULT_CONFIDENCE})")
    parser.add_argument("--jobs", type=int, default=1, help="processes to fit arms in parallel (default 1)")
    args = parser.parse_args(argv)
    try:
        summary = pd.read_csv(args.summary)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        print(f"eqscale fit: error: cannot read {args.summary}: {err}", file=sys.stderr)
        return 1
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            fits = fit_all(summary, n_resamples=args.bootstrap, seed=args.seed, confidence=args.confidence,
                           jobs=args.jobs)
        except FitError as err:
            print(f"eqscale fit: error: {args.summary}: {err}", file=sys.stderr)
            return 1
    for w in caught:
        print(f"warning: {w.message}", file=sys.stderr)
    for path in write_fits(fits, args.out_dir):
        print(f"wrote {path}")
    for kind in FIT_FILES:
        doc = getattr(fits, kind)
        for arm, res in (doc.arms.items() if doc is not None else ()):
            if isinstance(res, Skipped):
                print(f"{kind} {arm}: skipped: {res.reason}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
