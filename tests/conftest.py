"""Shared fixtures: deterministic seeds, one torch thread, temporary work dirs."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "tests"))  # `from helpers import ...`
os.environ.setdefault("EPATH_USE_TF", "false")


@pytest.fixture(autouse=True)
def _deterministic():
    import numpy as np
    import torch

    torch.manual_seed(0)
    np.random.seed(0)
    torch.set_num_threads(1)
    yield


@pytest.fixture
def repo_root() -> Path:
    return REPO_ROOT
