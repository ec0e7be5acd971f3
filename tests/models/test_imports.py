"""Import layering of the algebra, symmetry, data and model packages: imports at module level only, pointing
downward (algebra <- symmetry <- data <- models; data may use the torch-free counting leaf models.counts)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "eqscale"
FILES = sorted([*SRC.joinpath("algebra").glob("*.py"), *SRC.joinpath("data").glob("*.py"),
                *SRC.joinpath("models").glob("*.py"), SRC / "symmetry.py"])
# what each layer may import from eqscale (besides itself)
ALLOWED = {
    "algebra": set(),
    "symmetry": {"algebra"},
    "data": {"algebra", "symmetry", "models.counts", "models.configs", "hdf5_io", "io_utils", "config", "physics"},
    "models": {"algebra", "symmetry", "data.batch"},
}


def _layer(path: Path) -> str:
    return "symmetry" if path.name == "symmetry.py" else path.parent.name


def _eqscale_imports(tree: ast.Module) -> list[str]:
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("eqscale."):
            names.append(node.module.removeprefix("eqscale."))
        elif isinstance(node, ast.Import):
            names += [a.name.removeprefix("eqscale.") for a in node.names if a.name.startswith("eqscale.")]
    return names


@pytest.mark.parametrize("path", FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_imports_are_at_module_level_and_point_downward(path):
    tree = ast.parse(path.read_text())
    nested = [node.lineno for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
              for inner in ast.walk(node) if isinstance(inner, (ast.Import, ast.ImportFrom))]
    assert not nested, f"{path}: function-local imports at lines {nested}"
    layer = _layer(path)
    for name in _eqscale_imports(tree):
        own = name == layer or name.startswith(layer + ".")
        assert own or any(name == a or name.startswith(a + ".") for a in ALLOWED[layer]), \
            f"{path}: {layer} imports eqscale.{name}"
