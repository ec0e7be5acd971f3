"""`eqscale fit`: scaling laws, comparisons and the findings' verdicts, summary.csv -> results/fits/*.json.

Reads results/summary.csv and, next to it, results/sample_losses.npz (per-sample test losses: the
evaluation error enters every interval, paired between cells). Writes compute.json, frontier.json,
joint.json, isoflop.json, data_efficiency.json and findings.json. The findings are those of the
study named by `study` in --settings (rigid or forcefield; studies.py), or by --study. A fit that
cannot be done is recorded with its reason; the stage fails only on an unreadable summary or
sample-loss file, or an unknown study.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

import pandas as pd

from eqscale.analysis.errors import FitError
from eqscale.analysis.evaluation import SampleLosses, SampleLossError
from eqscale.analysis.fit import fit_all, settings_from_config
from eqscale.analysis.results import Skipped
from eqscale.analysis.store import FIT_FILES, write_fits
from eqscale.analysis.studies import STUDIES, study_module


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, fit, write the JSON files."""
    parser = argparse.ArgumentParser(prog="eqscale fit", description=__doc__.splitlines()[0])
    parser.add_argument("--summary", type=Path, default=Path("results/summary.csv"), help="output of eqscale collect")
    parser.add_argument("--samples", type=Path, default=None,
                        help="per-sample test losses (default: sample_losses.npz beside the summary; without it the "
                             "evaluation error comes from test_mse_se, unpaired)")
    parser.add_argument("--out-dir", type=Path, default=Path("results/fits"), help="directory for the JSON files")
    parser.add_argument("--settings", default=None, metavar="JSON",
                        help="config sections as JSON: {\"analysis\": {...}, \"evaluation\": {\"target_rel_se\": ...}, "
                             "\"study\": \"rigid\"}")
    parser.add_argument("--study", choices=sorted(STUDIES), default=None,
                        help="whose findings to judge (overrides `study` of --settings; default rigid)")
    parser.add_argument("--bootstrap", type=int, default=None, metavar="N",
                        help="bootstrap resamples per fit (overrides analysis.bootstrap; 0 = no intervals)")
    parser.add_argument("--seed", type=int, default=None, help="bootstrap seed (overrides analysis.seed)")
    parser.add_argument("--confidence", type=float, default=None,
                        help="level of the percentile intervals (overrides analysis.confidence)")
    parser.add_argument("--jobs", type=int, default=1, help="processes to fit arms in parallel (default 1)")
    args = parser.parse_args(argv)
    try:
        config = json.loads(args.settings) if args.settings else None
        settings = settings_from_config(config)
        study = study_module(args.study or (config or {}).get("study"))
    except (json.JSONDecodeError, TypeError, AttributeError) as err:
        print(f"eqscale fit: error: --settings is not a JSON object of config sections: {err}", file=sys.stderr)
        return 1
    except FitError as err:
        print(f"eqscale fit: error: --settings: {err}", file=sys.stderr)
        return 1
    try:
        summary = pd.read_csv(args.summary)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        print(f"eqscale fit: error: cannot read {args.summary}: {err}", file=sys.stderr)
        return 1
    samples_path = args.samples or args.summary.with_name("sample_losses.npz")
    samples = None
    if samples_path.exists():
        try:
            samples = SampleLosses.load(samples_path)
        except SampleLossError as err:
            print(f"eqscale fit: error: {err}", file=sys.stderr)
            return 1
    elif args.samples is not None:
        print(f"eqscale fit: error: {samples_path} does not exist", file=sys.stderr)
        return 1
    else:
        print(f"warning: {samples_path} not found: evaluation error from test_mse_se (unpaired)", file=sys.stderr)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            fits = fit_all(summary, samples=samples, settings=settings, n_resamples=args.bootstrap, seed=args.seed,
                           confidence=args.confidence, jobs=args.jobs, study=study)
        except FitError as err:
            print(f"eqscale fit: error: {args.summary}: {err}", file=sys.stderr)
            return 1
    for w in caught:
        print(f"warning: {w.message}", file=sys.stderr)
    for path in write_fits(fits, args.out_dir):
        print(f"wrote {path}")
    for kind in FIT_FILES:
        doc = getattr(fits, kind)
        for arm, res in (getattr(doc, "arms", {}) or {}).items():
            if isinstance(res, Skipped):
                print(f"{kind} {arm}: skipped: {res.reason}")
    for finding in fits.findings.findings:
        print(f"finding {finding.number}: {finding.verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
