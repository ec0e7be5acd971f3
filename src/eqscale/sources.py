"""Which source files a stage runs: the eqscale modules its entry module imports, read statically.

The Snakemake rules declare these files as inputs, so editing code reruns exactly the jobs that
run it. The list comes from the imports themselves (every `import eqscale...` and `from ... import`
in a module, function-local ones included, followed transitively, with each package's
`__init__.py`), so a new module cannot be forgotten. Nothing is imported to find them: building the
DAG stays fast and torch-free.

A training or evaluation job runs one model family, but the model registry names all of them:
`stage_sources(..., without=...)` leaves out the other families' modules (and what only they
import), so editing GATr's code reruns GATr cells only.
"""

from __future__ import annotations

import functools
import os
import re
from pathlib import Path

PACKAGE = "eqscale"
PACKAGE_DIR = Path(__file__).resolve().parent


def module_path(module: str) -> Path | None:
    """The source file of an eqscale module or package (None if there is none)."""
    if module != PACKAGE and not module.startswith(PACKAGE + "."):
        return None
    parts = module.split(".")[1:]
    if not parts:
        return PACKAGE_DIR / "__init__.py"
    relative = Path(*parts)
    for candidate in (PACKAGE_DIR / relative.with_suffix(".py"), PACKAGE_DIR / relative / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _parents(module: str) -> list[str]:
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


# `from X import a, b` (names possibly in parentheses over several lines) and `import X, Y as Z`, at any
# indentation (function-local imports count). A regex over the text, not an AST: parsing every module
# cost ~1 s per DAG build here, scanning costs milliseconds. A docstring line that looks like an import
# can only add a dependency, never lose one.
_IMPORT_RE = re.compile(r"^[ \t]*(?:from[ \t]+(\.*[\w.]*)[ \t]+import[ \t]+(\([^)]*\)|[^\n#]*)|import[ \t]+([^\n#]*))",
                        re.MULTILINE)


def _names(text: str) -> list[str]:
    return [part.split(" as ")[0].strip() for part in text.strip("() \t\n").replace("\n", " ").split(",")
            if part.strip() and part.strip() != "\\"]


@functools.lru_cache(maxsize=None)
def imports_of(module: str) -> frozenset[str]:
    """The eqscale modules `module` imports directly (packages it imports from included)."""
    path = module_path(module)
    if path is None:
        raise ValueError(f"{module!r} is not a module of the {PACKAGE} package")
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for match in _IMPORT_RE.finditer(path.read_text()):
        origin, names, plain = match.groups()
        if plain is not None:
            found.update(_names(plain))
            continue
        level = len(origin) - len(origin.lstrip("."))
        if level:  # relative: from .x import y inside package p means p.x
            parts = package.split(".")
            base = parts[: len(parts) - level + 1]
            rest = origin.lstrip(".")
            origin = ".".join(base + ([rest] if rest else []))
        found.add(origin)
        found.update(f"{origin}.{name}" for name in _names(names))  # `from pkg import submodule`
    return frozenset(m for m in found if m != module and module_path(m) is not None)


def module_closure(*modules: str, without: tuple[str, ...] = ()) -> frozenset[str]:
    """`modules` and every eqscale module they import, transitively, not entering the modules in `without`."""
    seen: set[str] = set()
    todo = [m for m in modules]
    while todo:
        module = todo.pop()
        if module in seen or module in without:
            continue
        if module_path(module) is None:
            raise ValueError(f"{module!r} is not a module of the {PACKAGE} package")
        seen.add(module)
        todo.extend(_parents(module))  # importing a.b.c runs a/__init__.py and a/b/__init__.py
        todo.extend(imports_of(module))
    return frozenset(seen)


def stage_sources(*modules: str, without: tuple[str, ...] = (), relative_to: str | Path | None = None) -> list[str]:
    """Sorted source files of `module_closure(*modules, without=...)`, relative to `relative_to` if given."""
    paths = sorted(str(module_path(m)) for m in module_closure(*modules, without=without))
    if relative_to is None:
        return paths
    return [os.path.relpath(p, relative_to) for p in paths]
