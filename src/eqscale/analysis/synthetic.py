"""Synthetic studies drawn from known laws: the tables the analysis tests and the fit bench run on.

A synthetic study is a grid of cells (`grid_table`, or the real grid of a preset via `cells_table`)
plus a truth per arm; `synthetic_study` draws what `eqscale collect` would write for it -- the
summary table (format 2, every column of the data contract) and the per-sample test losses
(`SampleLosses`) -- from:

* for scaling cells, the joint law L(N, S) = E + A*N^-alpha + B*S^-beta of each arm;
* for data-efficiency cells (trained to convergence, early stopping), the converged loss
  L(D) = E + A*D^-delta of each arm at D training trajectories;
* training noise: each run's loss times a lognormal factor (sigma `noise`), independent per seed;
* evaluation noise: every cell is evaluated on the same test samples; a sample's squared error is
  the cell's loss x its number of values x a difficulty shared by all cells (heavy-tailed, lognormal)
  x a small cell-specific factor, so test MSEs carry a realistic standard error and differences
  between cells are paired.

Compute is each family's FLOPs per step F(N) (`Family`): by default F = k*N^p with p < 1, as attention
over the padded scene makes it; steps = budget // F(N). `synthetic_frontier_summary` draws one arm
whose frontier and IsoFLOP minima are known directly.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from eqscale.analysis.allocation import exponents, optimal_allocation
from eqscale.analysis.compute import ComputeModel
from eqscale.analysis.evaluation import SampleLosses
from eqscale.analysis.powerlaw import DATA, FRONTIER, JOINT, DataParams, FrontierParams, JointParams
from eqscale.cells import RUNS_DIR, Cell


@dataclass(frozen=True)
class Family:
    """A model family's sizes: parameters, FLOPs per optimizer step and the attention share of them."""

    name: str
    params: Mapping[str, int]
    flops_per_step: Mapping[str, float]
    attention_share: Mapping[str, float] = field(default_factory=dict)

    @classmethod
    def power(cls, name: str, params: Sequence[float], *, k: float, p: float, n0: float = 1e5,
              attention_at_n0: float = 0.3) -> Family:
        """Sizes named n<params> with F(N) = k*n0*(N/n0)^p; attention's share falls as N grows (p < 1)."""
        sizes = {f"n{int(round(n))}": int(round(n)) for n in params}
        flops = {s: k * n0 * (n / n0) ** p for s, n in sizes.items()}
        # a share that makes F(N) ~ N^p plausible: dense FLOPs ~ N, attention ~ N^(p - something)
        share = {s: float(np.clip(attention_at_n0 * (n / n0) ** (p - 1.0), 0.0, 0.95)) for s, n in sizes.items()}
        return cls(name, sizes, flops, share)

    def F(self, size: str) -> float:
        """FLOPs of one optimizer step of a size."""
        return float(self.flops_per_step[size])


@dataclass(frozen=True)
class ArmTruth:
    """The known laws of one synthetic arm: the joint law (scaling cells) and the converged loss vs D."""

    law: JointParams
    data: DataParams = DataParams(E=0.01, A=0.3, delta=0.6)


DEFAULT_SIZES = (1e4, 3e4, 1e5, 3e5, 1e6)
# GATr spends more FLOPs per parameter; attention makes F grow slower than N for both
DEFAULT_FAMILIES: dict[str, Family] = {
    "gatr": Family.power("gatr", DEFAULT_SIZES, k=1.5e5, p=0.65),
    "transformer": Family.power("transformer", DEFAULT_SIZES, k=4e4, p=0.75),
}
# A truth in which the paper's three findings hold (on DEFAULT_FAMILIES' compute):
# 1. converged loss vs D: the transformer is worse than GATr at every D (2.5x at D = 125, 1.9x at 2000);
#    with augmentation it is 5% better than GATr;
# 2. L*(C) of the transformer is 1.40x GATr's at every budget (same gamma = 0.228, E scaled alike);
# 3. GATr: a = 0.76 > b = 0.51 (size grows faster); transformer: a = 0.46 < b = 0.66.
DEFAULT_TRUTH: dict[str, ArmTruth] = {
    "gatr": ArmTruth(JointParams(E=1e-3, A=2.0, alpha=0.3, B=1.03, beta=0.45), DataParams(E=0.01, A=0.3, delta=0.6)),
    "transformer": ArmTruth(JointParams(E=1.4e-3, A=16.8676, alpha=0.5, B=1.6868, beta=0.3465),
                            DataParams(E=0.012, A=0.6, delta=0.5)),
    "transformer+aug": ArmTruth(JointParams(E=1.4e-3, A=16.8676, alpha=0.5, B=1.6868, beta=0.3465),
                                DataParams(E=0.0095, A=0.285, delta=0.6)),
}
DEFAULT_BUDGETS = (1e12, 3e12, 1e13, 3e13, 1e14)
DEFAULT_FRACTIONS = (0.0625, 0.125, 0.25, 0.5, 1.0)
SAMPLES_PER_TRAJECTORY = 90  # (trajectory, t) pairs: 96 frames minus the two inputs and the horizon
BATCH_SIZE = 8
CV_LEVEL = 0.5  # constant-velocity MSE in m^2 (every synthetic model beats it)


def model_of(arm: str) -> str:
    """The model family of an arm name ('transformer+aug' -> 'transformer')."""
    return arm.split("+")[0]


def cell_id(model: str, size: str, budget: float, fraction: float, augment: bool, seed: int,
            converge: bool = False) -> str:
    """The cell's id as eqscale.cells writes it (data-efficiency cells train to convergence)."""
    return Cell(model=model, size=size, budget=budget, data_fraction=fraction, augment=augment, seed=seed,
                converge=converge).id


def grid_table(*, families: Mapping[str, Family] | None = None, scaling_arms: Sequence[str] = ("gatr", "transformer"),
               budgets: Sequence[float] = DEFAULT_BUDGETS, sizes: Sequence[float] | None = None,
               seeds: Sequence[int] = (0,), min_steps: int = 20,
               data_arms: Sequence[str] = ("transformer", "transformer+aug", "gatr"), data_budget: float = 2e13,
               data_size: float = 1e5, fractions: Sequence[float] = DEFAULT_FRACTIONS,
               full_trajectories: int = 2000, replicated: Iterable[tuple[str, float]] = ()) -> pd.DataFrame:
    """The cells of a study as the grid plans them: one row per (arm, size, budget, fraction, seed).

    Scaling cells run every size with at least `min_steps` steps on every budget; data-efficiency
    cells run `data_size` at `data_budget` on each fraction. A cell both designs want runs once.
    `replicated` names (arm, budget) pairs whose scaling cells get the seeds beyond the first.
    """
    families = DEFAULT_FAMILIES if families is None else families
    rows: dict[str, dict] = {}
    replicated = set(replicated)

    def add(arm: str, size: str, budget: float, fraction: float, seed: int, design: str) -> None:
        fam = families[model_of(arm)]
        steps = int(budget // fam.F(size))
        key = cell_id(model_of(arm), size, budget, fraction, arm.endswith("+aug"), seed,
                      converge=design == "data_efficiency")
        row = rows.setdefault(key, {"cell": key, "arm": arm, "model": model_of(arm), "size": size,
                                    "params": int(fam.params[size]), "budget": float(budget), "steps": steps,
                                    "flops_per_step_nominal": fam.F(size),
                                    "attention_share": fam.attention_share.get(size, 0.0),
                                    "data_fraction": float(fraction), "seed": int(seed),
                                    "num_train_trajectories": int(round(fraction * full_trajectories)),
                                    "in_scaling": False, "in_data_efficiency": False})
        row[f"in_{design}"] = True

    for arm in scaling_arms:
        fam = families[model_of(arm)]
        chosen = fam.params if sizes is None else {s: n for s, n in fam.params.items()
                                                  if any(math.isclose(n, x, rel_tol=1e-6) for x in sizes)}
        for budget in budgets:
            # every seed everywhere, unless `replicated` restricts the extra seeds to some budget lines
            line_seeds = seeds if not replicated or (arm, budget) in replicated else seeds[:1]
            for size in chosen:
                if budget // fam.F(size) < min_steps:
                    continue
                for seed in line_seeds:
                    add(arm, size, budget, 1.0, seed, "scaling")
    for arm in data_arms:
        fam = families[model_of(arm)]
        size = min(fam.params, key=lambda s: abs(math.log(fam.params[s] / data_size)))
        for fraction in fractions:
            for seed in seeds:
                add(arm, size, data_budget, fraction, seed, "data_efficiency")
    return pd.DataFrame(list(rows.values()))


def cells_table(cells: Iterable, families: Mapping[str, Family], *, full_trajectories: int = 400_000) -> pd.DataFrame:
    """The grid table of real `eqscale.cells.Cell`s (e.g. eqscale.grid.build_grid of a preset)."""
    rows = []
    for c in cells:
        fam = families[c.model]
        rows.append({"cell": c.id, "arm": c.arm, "model": c.model, "size": c.size, "params": int(fam.params[c.size]),
                     "budget": float(c.budget), "steps": int(c.steps), "flops_per_step_nominal": fam.F(c.size),
                     "attention_share": fam.attention_share.get(c.size, 0.0), "data_fraction": float(c.data_fraction),
                     "seed": int(c.seed), "num_train_trajectories": int(round(c.data_fraction * full_trajectories)),
                     "in_scaling": "scaling" in c.designs, "in_data_efficiency": "data_efficiency" in c.designs})
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class SyntheticStudy:
    """A synthetic summary table, its per-sample test losses, and each cell's noise-free loss."""

    summary: pd.DataFrame
    sample_losses: SampleLosses | None
    clean_loss: np.ndarray  # the law's value per summary row (no training or evaluation noise)


def true_loss(grid: pd.DataFrame, truth: Mapping[str, ArmTruth]) -> np.ndarray:
    """The law's loss of every grid row: the joint law for scaling cells, the converged L(D) for the others."""
    out = np.empty(len(grid))
    for i, row in enumerate(grid.itertuples(index=False)):
        t = truth[row.arm]
        if row.in_scaling:
            out[i] = float(JOINT(t.law, row.params, row.steps))
        else:
            out[i] = float(DATA(t.data, row.num_train_trajectories))
    return out


def synthetic_study(grid: pd.DataFrame | None = None, *, truth: Mapping[str, ArmTruth] | None = None,
                    noise: float = 0.03, n_test_samples: int | None = 256, difficulty_sigma: float = 0.8,
                    cell_sigma: float = 0.25, diverged: Sequence[str] = (), rng_seed: int = 0,
                    loss_factor: Mapping[str, float] | None = None) -> SyntheticStudy:
    """Draw the summary (and sample losses) of `grid` from `truth` with training and evaluation noise.

    `n_test_samples=None` leaves evaluation noise out (and writes no sample losses); `diverged` lists
    cell ids whose runs diverged (NaN test metrics); `loss_factor` multiplies chosen cells' losses.
    """
    grid = grid_table() if grid is None else grid
    truth = DEFAULT_TRUTH if truth is None else truth
    rng = np.random.default_rng(rng_seed)
    clean = true_loss(grid, truth)
    if loss_factor:
        clean = clean * np.array([loss_factor.get(c, 1.0) for c in grid["cell"]])
    trained = clean * np.exp(noise * rng.standard_normal(len(grid)))
    n_cells = len(grid)
    samples: SampleLosses | None = None
    if n_test_samples:
        s = n_test_samples
        n_values = 3 * rng.integers(100, 1000, s)
        in_contact = rng.random(s) < 0.4
        # heavy-tailed difficulty shared by every cell; contact frames are harder
        difficulty = np.exp(difficulty_sigma * rng.standard_normal(s) - 0.5 * difficulty_sigma ** 2)
        difficulty *= np.where(in_contact, 1.6, 0.6)
        difficulty /= np.average(difficulty, weights=n_values)
        own = np.exp(cell_sigma * rng.standard_normal((n_cells, s)) - 0.5 * cell_sigma ** 2)
        sq = trained[:, None] * n_values[None, :] * difficulty[None, :] * own
        cv = CV_LEVEL * n_values * difficulty * np.exp(0.2 * rng.standard_normal(s))
        samples = SampleLosses(cells=np.array(grid["cell"], dtype=str), sample=np.arange(s, dtype=np.int64),
                               sq_error=sq, n_values=n_values.astype(np.int64), cv_sq_error=cv, in_contact=in_contact)
    rows = []
    for i, g in enumerate(grid.itertuples(index=False)):
        bad = g.cell in diverged
        row = _summary_row(g, trained[i], samples, i, bad, rng)
        rows.append(row)
    summary = pd.DataFrame(rows)
    return SyntheticStudy(summary=summary, sample_losses=samples, clean_loss=clean)


def _summary_row(g, loss: float, samples: SampleLosses | None, i: int, diverged: bool,
                 rng: np.random.Generator) -> dict:
    """One summary row (the columns of the data contract) of grid row g."""
    augment = g.arm.endswith("+aug")
    flops = float(g.steps * g.flops_per_step_nominal)
    train_samples = g.num_train_trajectories * SAMPLES_PER_TRAJECTORY
    # early stopping on the data-efficiency cells: small sets stop early (seen more epochs than needed)
    converged = bool(g.in_data_efficiency and g.data_fraction < 1.0)
    best_step = int(g.steps * (0.4 + 0.6 * g.data_fraction)) if converged else int(g.steps)
    epochs = best_step * BATCH_SIZE / max(train_samples, 1)
    row = {"cell": g.cell, "run_dir": f"{RUNS_DIR}/{g.cell}", "model": g.model, "arm": g.arm, "size": g.size,
           "params": int(g.params), "seed": int(g.seed), "augment": augment, "in_scaling": bool(g.in_scaling),
           "in_data_efficiency": bool(g.in_data_efficiency), "budget": float(g.budget), "steps": int(g.steps),
           "flops": flops, "flops_attention": flops * float(g.attention_share),
           "flops_per_step_nominal": float(g.flops_per_step_nominal), "tokens": float(g.steps * BATCH_SIZE * 344),
           "data_fraction": float(g.data_fraction), "num_train_trajectories": int(g.num_train_trajectories),
           "epochs": float(epochs), "best_step": best_step, "stopped_early": converged,
           "lr": 1e-3, "batch_size": BATCH_SIZE, "diverged": diverged, "equivariance_error":
               0.0 if g.model == "gatr" else 0.05, "wall_time_s": flops / 5e10, "eval_wall_time_s": 2.0,
           "device": "synthetic", "symmetry_loss": False,
           # the force-field study's parts of its loss: not measured in the rigid study
           "energy_mae": math.nan, "force_mae": math.nan, "force_l2": math.nan}
    if samples is None:
        mse = loss
        stats = {"test_mse": mse, "test_mse_se": math.nan, "test_mse_lo": math.nan, "test_mse_hi": math.nan,
                 "n_test_samples": 0, "const_velocity_mse": CV_LEVEL, "test_mse_contact": math.nan,
                 "test_mse_free": math.nan}
    else:
        stats = samples.cell_statistics(i)
    if diverged:
        stats = {k: (math.nan if k.startswith("test_mse") else v) for k, v in stats.items()}
    row.update(stats)
    cv = row["const_velocity_mse"]
    row["cv_ratio"] = row["test_mse"] / cv
    cv_contact, cv_free = (samples.cv_mse(contact) for contact in (True, False)) if samples is not None else (
        math.nan, math.nan)
    row["cv_ratio_contact"] = row["test_mse_contact"] / cv_contact
    row["cv_ratio_free"] = row["test_mse_free"] / cv_free
    return row


def synthetic_summary(*, truth: Mapping[str, ArmTruth] | None = None, noise: float = 0.03, rng_seed: int = 0,
                      n_test_samples: int | None = None, **grid: object) -> pd.DataFrame:
    """The summary table of a default-shaped synthetic study (grid options as in `grid_table`)."""
    return synthetic_study(grid_table(**grid), truth=truth, noise=noise, rng_seed=rng_seed,
                           n_test_samples=n_test_samples).summary


def synthetic_frontier_summary(*, law: FrontierParams = FrontierParams(E=2e-3, A=40.0, gamma=0.25),
                               frontier: Callable[[float], float] | None = None, arm: str = "gatr",
                               budgets: Sequence[float] = DEFAULT_BUDGETS, G: float = 0.5, a: float = 0.45,
                               k: float = 1e5, offsets: Sequence[float] = (-1.5, -0.75, 0, 0.75, 1.5),
                               kappa: float = 0.3, noise: float = 0.02, seeds: Sequence[int] = (0,),
                               rng_seed: int = 0) -> pd.DataFrame:
    """One arm whose frontier is known (the law E + A*C^-gamma, or any `frontier(C)`) and whose IsoFLOP minima are
    N*(C) = G*C^a: per budget the best size reaches the frontier, sizes at ln offsets are worse by 1 + kappa*offset^2.

    F = k*N here (C = k*N*S), so S*(C) = C / (k*N*(C)).
    """
    rng = np.random.default_rng(rng_seed)
    rows = []
    for budget in budgets:
        n_opt = G * budget ** a
        # the frontier at the optimal cell's actual FLOPs (steps are rounded down from the budget)
        c_opt = k * round(n_opt) * max(1, int(budget // (k * round(n_opt))))
        best = float(frontier(c_opt)) if frontier is not None else float(FRONTIER(law, c_opt))
        for u in offsets:
            n = int(round(n_opt * math.exp(u)))
            steps = max(1, int(budget // (k * n)))
            for seed in seeds:
                loss = best * (1 + kappa * u * u) * math.exp(noise * rng.standard_normal())
                size = f"n{n}"
                cid = cell_id(model_of(arm), size, budget, 1.0, arm.endswith("+aug"), seed)
                rows.append({"cell": cid, "run_dir": f"{RUNS_DIR}/{cid}", "model": model_of(arm), "arm": arm,
                             "size": size, "params": n, "seed": seed, "augment": arm.endswith("+aug"),
                             "in_scaling": True, "in_data_efficiency": False, "budget": float(budget),
                             "steps": steps, "flops": float(k * n * steps), "flops_per_step_nominal": float(k * n),
                             "data_fraction": 1.0, "num_train_trajectories": 2000, "diverged": False,
                             "test_mse": loss, "const_velocity_mse": 0.5, "wall_time_s": 1.0, "device": "synthetic"})
    return pd.DataFrame(rows)


def compute_model(family: Family) -> ComputeModel:
    """The analysis's compute model F(N) of a synthetic family."""
    sizes = sorted(family.params, key=family.params.get)
    return ComputeModel(family.name, np.array([family.params[s] for s in sizes], float),
                        np.array([family.F(s) for s in sizes], float))


def true_exponents(truth: ArmTruth, family: Family, budgets: Sequence[float],
                   size_range: tuple[float, float]) -> dict[str, float]:
    """The compute-optimal a, b, gamma of a known law under the family's FLOP counting, over `budgets`.

    The same definition the joint fit reports: least-squares slopes of ln N*, ln S*, -ln(L* - E)
    against ln C at the budgets, N* minimising L(N, C/F(N)) over a continuous N.
    """
    budgets = np.asarray(budgets, float)
    params = np.array([tuple(truth.law)])
    alloc = optimal_allocation(params, compute_model(family), budgets, size_range)
    return {k: float(v[0]) for k, v in exponents(alloc, budgets, params[:, 0]).items()}
