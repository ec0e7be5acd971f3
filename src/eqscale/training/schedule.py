"""Learning-rate schedule: linear warm-up, then cosine or linear decay to the end of the run.

Every cell gets its own full schedule over exactly its number of steps, so a shorter run is not a
prefix of a longer one (its decay starts and ends earlier). The factor is a picklable callable
object, so `LambdaLR.state_dict()` carries it and a resumed run continues the same curve.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

SCHEDULES = ("cosine", "linear")


def warmup_steps_for(steps: int, warmup_fraction: float) -> int:
    """Warm-up length in steps for a run of `steps` steps (rounded; at least 1 when the fraction is > 0)."""
    if not 0 <= warmup_fraction < 1:
        raise ValueError(f"warmup_fraction must be in [0, 1), got {warmup_fraction}")
    if warmup_fraction == 0:
        return 0
    return min(steps - 1, max(1, round(warmup_fraction * steps)))


@dataclass
class WarmupDecay:
    """Multiplier of the peak learning rate for the optimizer step with 0-based index `step`.

    Warm-up: (step + 1) / (warmup + 1), so no step is taken at zero learning rate. Decay: from 1 at
    the end of the warm-up towards `final_fraction`, over progress p = (step - warmup) / (steps -
    warmup), which is 0 for the first decay step and just below 1 for the last step of the run.
    """

    steps: int
    warmup: int = 0
    kind: str = "cosine"
    final_fraction: float = 0.0

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ValueError(f"a run needs at least one step, got steps={self.steps}")
        if not 0 <= self.warmup < self.steps:
            raise ValueError(f"warm-up of {self.warmup} steps does not fit in a run of {self.steps} steps")
        if self.kind not in SCHEDULES:
            raise ValueError(f"unknown schedule {self.kind!r} (valid: {', '.join(SCHEDULES)})")
        if not 0 <= self.final_fraction <= 1:
            raise ValueError(f"final_fraction must be in [0, 1], got {self.final_fraction}")

    def __call__(self, step: int) -> float:
        """The multiplier at 0-based step index `step`."""
        if step < self.warmup:
            return (step + 1) / (self.warmup + 1)
        progress = min(1.0, (step - self.warmup) / max(1, self.steps - self.warmup))
        if self.kind == "cosine":
            shape = 0.5 * (1.0 + math.cos(math.pi * progress))
        else:
            shape = 1.0 - progress
        return self.final_fraction + (1.0 - self.final_fraction) * shape


def build_scheduler(optimizer: torch.optim.Optimizer, steps: int, warmup: int, kind: str = "cosine",
                    final_fraction: float = 0.0) -> torch.optim.lr_scheduler.LambdaLR:
    """A LambdaLR following `WarmupDecay`; call `.step()` once after every optimizer step."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, WarmupDecay(steps, warmup, kind, final_fraction))
