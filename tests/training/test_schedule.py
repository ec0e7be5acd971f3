"""Learning-rate schedule: warm-up, decay to the end of each run, and a state that survives a checkpoint."""

from __future__ import annotations

import math

import pytest
import torch

from eqscale.training.schedule import WarmupDecay, build_scheduler, warmup_steps_for


@pytest.mark.parametrize("kind", ["cosine", "linear"])
def test_warms_up_then_decays_to_the_final_fraction_by_the_end(kind):
    schedule = WarmupDecay(steps=100, warmup=10, kind=kind, final_fraction=0.1)
    factors = [schedule(i) for i in range(100)]
    assert factors[0] == pytest.approx(1 / 11) and factors[0] > 0
    assert all(a < b for a, b in zip(factors[:10], factors[1:11]))
    assert factors[10] == 1.0 and max(factors) == 1.0
    assert all(a >= b for a, b in zip(factors[10:], factors[11:]))
    assert 0.1 < factors[-1] < 0.1 + 0.05
    assert min(factors[10:]) >= 0.1


def test_cosine_and_linear_have_their_shapes():
    cosine, linear = WarmupDecay(100, 0, "cosine"), WarmupDecay(100, 0, "linear")
    assert cosine(50) == pytest.approx(0.5) and linear(50) == pytest.approx(0.5)
    assert cosine(25) == pytest.approx(0.5 * (1 + math.cos(math.pi / 4)))
    assert linear(25) == pytest.approx(0.75)


def test_a_shorter_run_is_not_a_prefix_of_a_longer_one():
    short, long = WarmupDecay(100, 5), WarmupDecay(200, 10)
    assert short(99) < 0.01 and long(99) > 0.5
    assert [short(i) for i in range(50)] != [long(i) for i in range(50)]


def test_warmup_length_from_a_fraction():
    assert warmup_steps_for(100, 0.05) == 5
    assert warmup_steps_for(10, 0.01) == 1  # a positive fraction always warms up
    assert warmup_steps_for(10, 0.0) == 0
    assert warmup_steps_for(1, 0.5) == 0  # a one-step run has no room for warm-up
    with pytest.raises(ValueError, match="warmup_fraction"):
        warmup_steps_for(10, 1.5)


def test_invalid_schedules_say_what_is_valid():
    with pytest.raises(ValueError, match="cosine, linear"):
        WarmupDecay(10, 1, "step")
    with pytest.raises(ValueError, match="does not fit"):
        WarmupDecay(10, 10)
    with pytest.raises(ValueError, match="at least one step"):
        WarmupDecay(0)


def test_scheduler_state_round_trips_and_continues_the_same_curve():
    def make():
        opt = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(2))], lr=0.01)
        return opt, build_scheduler(opt, steps=20, warmup=3, kind="cosine")

    opt, sched = make()
    for _ in range(7):
        opt.step()
        sched.step()
    state = sched.state_dict()
    assert state["lr_lambdas"][0] == {"steps": 20, "warmup": 3, "kind": "cosine", "final_fraction": 0.0}
    reference = []
    for _ in range(5):
        opt.step()
        sched.step()
        reference.append(opt.param_groups[0]["lr"])
    opt2, sched2 = make()
    sched2.load_state_dict(state)
    resumed = []
    for _ in range(5):
        opt2.step()
        sched2.step()
        resumed.append(opt2.param_groups[0]["lr"])
    assert resumed == reference
    assert reference[-1] == 0.01 * WarmupDecay(20, 3)(12)
