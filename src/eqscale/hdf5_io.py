"""Opening eqscale's HDF5 files: one checked opener for every versioned format (raw, tokens, meshes, molecules).

Every format writes `format`, `format_version` and `complete` (False until its writer finishes) as
root attributes. `open_checked` refuses a file that is missing, unreadable, foreign, of another
version or incomplete, with the path and what to re-run, and lets the caller add its own checks
(counts against the header, say) under the same error type.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import h5py


def open_checked(path: str | Path, *, fmt: str, version: int, what: str, error: type[Exception], rerun: str,
                 check: Callable[[h5py.File], None] | None = None, needs_complete: bool = True) -> h5py.File:
    """`path` opened read-only once it is a complete `fmt` file of `version`; else `error` naming it.

    what: how to name the file in messages ("raw shard"); rerun: what rebuilds it ("re-run eqscale
    simulate"); check(fh) may raise `error` (or KeyError/OSError/ValueError, reported as damage).
    """
    path = Path(path)
    if not path.exists():
        raise error(f"{what} {path} does not exist ({rerun})")
    try:
        fh = h5py.File(path, "r")
    except OSError as err:
        raise error(f"{what} {path} is not a readable HDF5 file (truncated or corrupt?): {err}; {rerun}") from err
    try:
        found = fh.attrs.get("format")
        if isinstance(found, bytes):
            found = found.decode(errors="replace")
        if found != fmt:
            raise error(f"{path} is not an eqscale {what} (format attribute {found!r}, expected {fmt!r})")
        found_version = int(fh.attrs.get("format_version", -1))
        if found_version != version:
            raise error(f"{what} {path} has format_version {found_version}; this eqscale reads {version}: {rerun}")
        if needs_complete and not fh.attrs.get("complete", False):
            raise error(f"{what} {path} is incomplete (its writer did not finish): {rerun}")
        if check is not None:
            check(fh)
    except error:
        fh.close()
        raise
    except (KeyError, OSError, ValueError, TypeError) as err:
        fh.close()
        raise error(f"{what} {path} is damaged: {err}; {rerun}") from err
    return fh
