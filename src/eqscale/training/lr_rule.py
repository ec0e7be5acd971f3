"""`eqscale lr-rule`: each family's learning rate as a function of its size, fitted from a short sweep.

The sweep (`lr_sweep` in the config) trains a few rates at two or more sizes of each family for a
small budget and records each run's validation loss. Per size, the best rate is the vertex of a
parabola of validation loss against log rate through the best swept rate and its two neighbours
(the best swept rate itself when it sits at the edge of the sweep: that size is then flagged
unbracketed, and the sweep should widen). Across sizes the rule is the power law

    lr(N) = lr_ref * (N / N_ref) ** -k       (least squares in log-log, N in parameters)

which every `lr~auto` cell of the family reads. One rule per family: sizes spanning 100x or more in
parameters do not share one best rate, and a single rate would bend the fitted scaling exponents.
results/lr/<model>.json records the sweep (every rate, its loss), the best rates and the rule.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from eqscale.io_utils import atomic_write_text
from eqscale.records import RecordError, read_run

RULE_FORMAT = "eqscale-lr-rule"
RULE_VERSION = 1


class RuleError(ValueError):
    """The sweep cannot give a rule (too few sizes, a run without a validation loss); the message says which."""


@dataclass(frozen=True)
class Rule:
    """lr(N) = lr_ref * (N / params_ref) ** -exponent."""

    lr_ref: float
    params_ref: float
    exponent: float

    def __call__(self, params: float) -> float:
        """The learning rate of a model with `params` parameters."""
        return float(self.lr_ref * (params / self.params_ref) ** -self.exponent)


def best_rate(lrs: list[float], losses: list[float]) -> tuple[float, bool]:
    """(best rate, bracketed): the vertex of a parabola in log rate through the best point and its neighbours."""
    order = np.argsort(lrs)
    x, y = np.log(np.asarray(lrs, float)[order]), np.asarray(losses, float)[order]
    finite = np.isfinite(y)
    if not finite.any():
        raise RuleError("every rate of this size diverged")
    y = np.where(finite, y, np.inf)  # a diverged rate is the worst
    i = int(np.argmin(y))
    if i == 0 or i == len(x) - 1 or not np.isfinite(y[i - 1:i + 2]).all():
        return float(math.exp(x[i])), False
    c2, c1, _ = np.polyfit(x[i - 1:i + 2], y[i - 1:i + 2], 2)
    vertex = -c1 / (2 * c2) if c2 > 0 else x[i]
    return float(math.exp(min(max(vertex, x[i - 1]), x[i + 1]))), True


def fit_rule(params: list[float], rates: list[float]) -> Rule:
    """The power law through (params, best rate) points, least squares in log-log, referenced at the geometric mean."""
    n, r = np.log(np.asarray(params, float)), np.log(np.asarray(rates, float))
    if np.unique(n).size < 2:
        raise RuleError(f"a rule across sizes needs at least two sizes with different parameter counts, got {len(n)}")
    slope, intercept = np.polyfit(n - n.mean(), r, 1)
    return Rule(lr_ref=float(math.exp(intercept)), params_ref=float(math.exp(n.mean())), exponent=float(-slope))


def rules_from_cells(cell_dirs: list[str | Path]) -> dict:
    """rule.json's content from the sweep cells' run.json files: per family the sweep, the best rates and the rule."""
    by_family: dict[str, dict[str, dict]] = {}
    for directory in cell_dirs:
        run = read_run(directory)
        if run.cell.lr is None:
            raise RuleError(f"{directory} is not a sweep cell (its learning rate is 'auto')")
        if run.val_loss is None and not run.diverged:
            raise RuleError(f"{directory}/run.json records no validation loss: retrain it with this eqscale")
        size = by_family.setdefault(run.cell.model, {}).setdefault(run.cell.size, {"params": run.params, "runs": []})
        size["runs"].append({"lr": run.cell.lr, "val_loss": None if run.diverged else run.val_loss,
                             "diverged": run.diverged})
    out: dict = {"format": RULE_FORMAT, "format_version": RULE_VERSION, "rule": "lr(N) = lr_ref * (N / params_ref)^-exponent",
                 "families": {}}
    for model, sizes in sorted(by_family.items()):
        points = []
        for size, entry in sorted(sizes.items(), key=lambda kv: kv[1]["params"]):
            runs = sorted(entry["runs"], key=lambda r: r["lr"])
            best, bracketed = best_rate([r["lr"] for r in runs],
                                        [math.nan if r["val_loss"] is None else r["val_loss"] for r in runs])
            points.append({"size": size, "params": entry["params"], "runs": runs, "best_lr": best,
                           "bracketed": bracketed})
        rule = fit_rule([p["params"] for p in points], [p["best_lr"] for p in points])
        out["families"][model] = {"sizes": points, "lr_ref": rule.lr_ref, "params_ref": rule.params_ref,
                                  "exponent": rule.exponent, "all_bracketed": all(p["bracketed"] for p in points)}
    return out


def read_rule(path: str | Path, model: str) -> Rule:
    """The rule of `model` in a rule.json; RuleError names the file and what is wrong."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
        family = data["families"][model]
        if data.get("format") != RULE_FORMAT or data.get("format_version") != RULE_VERSION:
            raise RuleError(f"{path} is not an {RULE_FORMAT} file of version {RULE_VERSION}: rerun eqscale lr-rule")
        rule = Rule(float(family["lr_ref"]), float(family["params_ref"]), float(family["exponent"]))
    except FileNotFoundError:
        raise RuleError(f"{path} not found: run the learning-rate sweep first (eqscale lr-rule)") from None
    except (OSError, json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
        if isinstance(err, RuleError):
            raise
        raise RuleError(f"{path} holds no usable rule for {model} ({type(err).__name__}: {err})") from None
    if not all(math.isfinite(v) and v > 0 for v in (rule.lr_ref, rule.params_ref)) or not math.isfinite(rule.exponent):
        raise RuleError(f"{path}: the rule of {model} is not finite and positive: {rule}")
    return rule


def main(argv: list[str] | None = None) -> int:
    """`eqscale lr-rule --cells DIR... --out results/lr/<model>.json`: fit each family's learning-rate rule."""
    parser = argparse.ArgumentParser(prog="eqscale lr-rule", description=__doc__.splitlines()[0])
    parser.add_argument("--cells", nargs="+", required=True, metavar="DIR", help="the sweep's cell directories")
    parser.add_argument("--out", type=Path, required=True, help="the family's rule file (results/lr/<model>.json)")
    args = parser.parse_args(argv)
    try:
        rules = rules_from_cells(args.cells)
    except (RuleError, RecordError) as err:
        print(f"eqscale lr-rule: error: {err}", file=sys.stderr)
        return 1
    atomic_write_text(args.out, json.dumps(rules, indent=2, sort_keys=True, allow_nan=False, default=str) + "\n")
    for model, family in rules["families"].items():
        note = "" if family["all_bracketed"] else " (a best rate sits at the edge of the sweep: widen lr_sweep.factors)"
        print(f"{model}: lr(N) = {family['lr_ref']:.3g} * (N / {family['params_ref']:.3g})^-{family['exponent']:.3f}"
              + note)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
