"""Which source files a stage runs: the eqscale modules its entry module imports, read statically.

The Snakemake rules pass a digest of these files' contents as a parameter, so editing code reruns
exactly the jobs that run it (a changed parameter is one of Snakemake's rerun triggers). A digest
rather than the files as inputs: it follows content, not modification times (a `touch` or a fresh
clone reruns nothing), and a DAG of hundreds of cells does not stat forty files per job.

The list comes from the imports themselves (every `import eqscale...` and `from ... import` in a
module, function-local ones included, followed transitively, with each package's `__init__.py`),
so a new module cannot be forgotten. Nothing is imported to find them: building the DAG stays fast
and torch-free. A training or evaluation job runs one model family, but the model registry names
all of them: `without=` leaves out the other families' modules (and what only they import), so
editing GATr's code reruns GATr cells only.

Every function takes the package's source directory (default: this installed package); the
Snakefile passes the workflow's own `src/eqscale` when it has one.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
from pathlib import Path

PACKAGE = "eqscale"
PACKAGE_DIR = Path(__file__).resolve().parent

# `from X import a, b` (names possibly in parentheses over several lines) and `import X, Y as Z`, at any
# indentation (function-local imports count). A regex over the text, not an AST: parsing every module
# cost ~1 s per DAG build here, scanning costs milliseconds. A docstring line that looks like an import
# can only add a dependency, never lose one.
_IMPORT_RE = re.compile(r"^[ \t]*(?:from[ \t]+(\.*[\w.]*)[ \t]+import[ \t]+(\([^)]*\)|[^\n#]*)|import[ \t]+([^\n#]*))",
                        re.MULTILINE)


def module_path(module: str, package_dir: Path = PACKAGE_DIR) -> Path | None:
    """The source file of an eqscale module or package (None if there is none)."""
    if module != PACKAGE and not module.startswith(PACKAGE + "."):
        return None
    parts = module.split(".")[1:]
    if not parts:
        return package_dir / "__init__.py"
    relative = Path(*parts)
    for candidate in (package_dir / relative.with_suffix(".py"), package_dir / relative / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _parents(module: str) -> list[str]:
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def _names(text: str) -> list[str]:
    return [part.split(" as ")[0].strip() for part in text.strip("() \t\n").replace("\n", " ").split(",")
            if part.strip() and part.strip() != "\\"]


@functools.lru_cache(maxsize=None)
def imports_of(module: str, package_dir: Path = PACKAGE_DIR) -> frozenset[str]:
    """The eqscale modules `module` imports directly (packages it imports from included)."""
    path = module_path(module, package_dir)
    if path is None:
        raise ValueError(f"{module!r} is not a module of the {PACKAGE} package in {package_dir}")
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
    return frozenset(m for m in found if m != module and module_path(m, package_dir) is not None)


def module_closure(*modules: str, without: tuple[str, ...] = (), package_dir: Path = PACKAGE_DIR) -> frozenset[str]:
    """`modules` and every eqscale module they import, transitively, not entering the modules in `without`."""
    seen: set[str] = set()
    todo = list(modules)
    while todo:
        module = todo.pop()
        if module in seen or module in without:
            continue
        if module_path(module, package_dir) is None:
            raise ValueError(f"{module!r} is not a module of the {PACKAGE} package in {package_dir}")
        seen.add(module)
        todo.extend(_parents(module))  # importing a.b.c runs a/__init__.py and a/b/__init__.py
        todo.extend(imports_of(module, package_dir))
    return frozenset(seen)


def stage_sources(*modules: str, without: tuple[str, ...] = (), relative_to: str | Path | None = None,
                  package_dir: Path = PACKAGE_DIR) -> list[str]:
    """Sorted source files of `module_closure(*modules, without=...)`, relative to `relative_to` if given."""
    paths = sorted(str(module_path(m, package_dir)) for m in module_closure(*modules, without=without,
                                                                              package_dir=package_dir))
    return paths if relative_to is None else [os.path.relpath(p, relative_to) for p in paths]


@functools.lru_cache(maxsize=None)
def sources_digest(*modules: str, without: tuple[str, ...] = (), package_dir: Path = PACKAGE_DIR) -> str:
    """sha256 over the package-relative names and contents of `module_closure(*modules, without=...)`."""
    digest = hashlib.sha256()
    for module in sorted(module_closure(*modules, without=without, package_dir=package_dir)):
        path = module_path(module, package_dir)
        digest.update(str(path.relative_to(package_dir)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()
