"""The studies the analysis can judge: config key `study` -> its findings module.

A findings module holds STUDY (the paper, as findings.json records it), REFERENCE_ARM, Evidence and
`findings(ev)`. `eqscale fit` picks one by key; report and plot recognise it again from the `study`
text findings.json records.
"""

from __future__ import annotations

from types import ModuleType

from eqscale.analysis import findings_forcefield, findings_rigid
from eqscale.analysis.errors import FitError
from eqscale.cells import FORCEFIELD, RIGID

STUDIES: dict[str, ModuleType] = {RIGID: findings_rigid, FORCEFIELD: findings_forcefield}


def study_module(key: str | None) -> ModuleType:
    """The findings module of a study key (None: the rigid study); FitError names the known keys."""
    key = RIGID if key is None else key
    if key not in STUDIES:
        raise FitError(f"unknown study {key!r} (known: {', '.join(STUDIES)})")
    return STUDIES[key]


def study_key(described: str | None) -> str:
    """The key of the study a findings file describes (its `study` text); the rigid study when unknown."""
    return next((key for key, module in STUDIES.items() if module.STUDY == described), RIGID)
