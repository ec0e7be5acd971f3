"""GATr size presets."""

from __future__ import annotations

import pytest
import torch

from eqscale.models.gatr import GATR_SIZES, GATr, gatr_config


def _params(name: str) -> int:
    with torch.device("meta"):  # counting needs shapes only
        return GATr(gatr_config(name)).num_params()


def test_presets_grow_and_span_more_than_30x_in_parameters():
    counts = [_params(name) for name in GATR_SIZES]
    assert counts == sorted(counts) and len(set(counts)) == len(counts)
    assert counts[-1] / counts[0] >= 30


def test_design_configs_are_among_the_presets():
    configs = {(c.mv_channels, c.s_channels, c.num_blocks) for c in GATR_SIZES.values()}
    assert {(8, 16, 4), (16, 32, 4), (16, 64, 8), (32, 64, 8)} <= configs
    assert all(c.num_heads == 8 for c in GATR_SIZES.values() if c.mv_channels >= 8)


def test_smallest_preset_is_cheap():
    config = gatr_config("xxs")
    assert config.mv_channels <= 8 and config.s_channels <= 16 and config.num_blocks <= 2
    assert _params("xxs") < 20_000


def test_unknown_size_lists_the_valid_names():
    with pytest.raises(KeyError) as err:
        gatr_config("huge")
    for name in GATR_SIZES:
        assert name in str(err.value)


def test_num_params_matches_the_modules():
    model = GATr(gatr_config("xxs"))
    assert model.num_params() == sum(p.numel() for p in model.parameters()) == _params("xxs")
