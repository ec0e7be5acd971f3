"""The fit files on disk: `write_fits` (eqscale fit) and `read_fits`, the one reader plots and report use.

Reading needs only the record types (results.py), never the fitting code.
"""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path
from typing import Any

from eqscale.analysis.results import FILE_TYPES, Fits, RecordError, from_json, to_json
from eqscale.io_utils import atomic_write_text

FIT_FILES = tuple(f.name for f in fields(Fits))


class FitsFileError(ValueError):
    """A fit file that cannot be read; the message names the file and what is wrong."""


def fits_to_json(fits: Fits) -> dict[str, Any]:
    """Each present fit file as plain JSON values, by name."""
    return {name: to_json(getattr(fits, name)) for name in FIT_FILES if getattr(fits, name) is not None}


def write_fits(fits: Fits, out_dir: str | Path) -> list[Path]:
    """Write each fit file to out_dir/<name>.json atomically; return the paths."""
    out_dir = Path(out_dir)
    paths = []
    for name in FIT_FILES:
        doc = getattr(fits, name)
        if doc is None:
            continue
        path = out_dir / f"{name}.json"
        # allow_nan=False: a NaN that slipped through would be invalid JSON; to_json turns them into null
        atomic_write_text(path, json.dumps(to_json(doc), indent=2, allow_nan=False) + "\n")
        paths.append(path)
    return paths


def read_fits(fits_dir: str | Path) -> Fits:
    """The fit files of a directory as records (a missing file reads as None)."""
    fits_dir = Path(fits_dir)
    docs = {}
    for name in FIT_FILES:
        path = fits_dir / f"{name}.json"
        if not path.exists():
            continue
        try:
            docs[name] = from_json(FILE_TYPES[name], json.loads(path.read_text()))
        except json.JSONDecodeError as err:
            raise FitsFileError(f"{path} is not valid JSON ({err.msg} at line {err.lineno})") from None
        except RecordError as err:
            raise FitsFileError(f"{path} does not hold a {name} fit file: {err} (rerun eqscale fit)") from None
    return Fits(**docs)
