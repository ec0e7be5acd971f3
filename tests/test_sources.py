"""Rerun triggers from imports: the static closure of every stage covers what Python really imports, every rule that
runs a stage passes that closure's digest as a parameter, and the digest follows content only."""

import modulefinder
import re
from pathlib import Path

import pytest

from eqscale.cells import MODEL_MODULES
from eqscale.cli import STAGES
from eqscale.sources import PACKAGE_DIR, module_closure, sources_digest, stage_sources

SRC = PACKAGE_DIR.parent
RULES = Path(__file__).resolve().parents[1] / "workflow" / "rules"


def imported_eqscale_modules(module: str) -> set[str]:
    """eqscale modules `module` imports, by the standard library's bytecode scanner (an independent oracle)."""
    finder = modulefinder.ModuleFinder(path=[str(SRC)])  # only our sources: third-party imports are not followed
    finder.import_hook(module, fromlist=["*"])
    return {name for name in finder.modules if name == "eqscale" or name.startswith("eqscale.")}


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_static_closure_covers_what_python_imports(stage):
    module = STAGES[stage][0]
    missing = imported_eqscale_modules(module) - module_closure(module)
    assert not missing, f"{stage}: imported but not declared as inputs: {sorted(missing)}"


def test_a_cell_depends_on_its_own_family_only():
    gatr = stage_sources(STAGES["train"][0], without=(MODEL_MODULES["transformer"],))
    transformer = stage_sources(STAGES["train"][0], without=(MODEL_MODULES["gatr"],))
    assert any(p.endswith("models/gatr.py") for p in gatr) and not any(p.endswith("models/transformer.py") for p in gatr)
    assert any(p.endswith("models/transformer.py") for p in transformer)
    assert not any(p.endswith(("models/gatr.py", "models/layers_equivariant.py")) for p in transformer)
    for shared in ("training/loop.py", "data/dataset.py", "cells.py"):
        assert any(p.endswith(shared) for p in gatr) and any(p.endswith(shared) for p in transformer)


def test_shape_builders_are_inputs_of_the_assets_stage():
    # editing a shape builder must rebuild the assets (it once rebuilt nothing)
    assets = stage_sources(STAGES["assets"][0])
    for name in ("shapes_parametric.py", "shapes_teapot.py", "shapes_implicit.py", "sdf.py", "shape_catalog.py"):
        assert any(p.endswith(name) for p in assets), name


def test_digest_follows_content_not_place():
    # a digest over package-relative names and contents: the same in a moved clone, different after an edit
    # of any file of the closure, unchanged by an edit elsewhere
    paths = stage_sources(STAGES["tokenize"][0], relative_to=SRC.parent)
    assert paths and all(p.startswith("src/eqscale/") for p in paths)
    digest = sources_digest(STAGES["tokenize"][0])
    assert len(digest) == 64 and digest != sources_digest(STAGES["plot"][0])
    gatr = sources_digest(STAGES["train"][0], without=(MODEL_MODULES["transformer"],))
    transformer = sources_digest(STAGES["train"][0], without=(MODEL_MODULES["gatr"],))
    assert gatr != transformer


def test_every_rule_that_runs_a_stage_declares_its_code():
    text = "\n".join(p.read_text() for p in sorted(RULES.glob("*.smk")))
    rules = re.split(r"^rule ", text, flags=re.MULTILINE)[1:]
    checked = 0
    for body in rules:
        name = body.split(":", 1)[0].strip()
        runs = re.findall(r'"eqscale (\w+) ', body)
        if not runs:
            continue
        (stage,) = set(runs)
        params = body.split("params:", 1)[1] if "params:" in body else ""
        assert re.search(rf'^        code=(lambda w: )?code\("{stage}"', params, re.MULTILINE), \
            f"rule {name} runs eqscale {stage} but does not pass code(\"{stage}\") as a parameter"
        checked += 1
    assert checked >= 9  # assets, simulate, tokenize, train, evaluate, collect, fit, plot, report
