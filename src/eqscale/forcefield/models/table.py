"""The force-field size table on disk: parameters, width and forward FLOPs per atom of every (family, size).

The grid and `eqscale plan` need these numbers when Snakemake builds the DAG, where importing torch
and counting 25 networks would cost seconds on every invocation. size_table.json beside this module
holds them, measured at the default cutoffs on the FLOP reference batch (registry.py); the tests
check it against fresh measurements, and `python -m eqscale.forcefield.models.table` rewrites it
after a model change. A config with other cutoffs is measured instead (torch, cached per process).
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

TABLE_PATH = Path(__file__).with_name("size_table.json")


@functools.lru_cache(maxsize=1)
def read_table() -> dict:
    """The stored table: {"reference": {...}, "families": {family: {size: {params, width, forward_flops_per_atom}}}}."""
    return json.loads(TABLE_PATH.read_text())


def sizes_of(family: str) -> list[str]:
    """The named sizes of a family, smallest first; KeyError lists the families."""
    families = read_table()["families"]
    if family not in families:
        raise KeyError(f"unknown force-field family {family!r} (known: {', '.join(families)})")
    return list(families[family])


def entry(family: str, size: str) -> dict:
    """The table row of a (family, size); KeyError naming what exists."""
    sizes = read_table()["families"].get(family)
    if sizes is None or size not in sizes:
        known = ", ".join(sizes) if sizes else ", ".join(read_table()["families"])
        raise KeyError(f"unknown {family} size {size!r} (known: {known})" if sizes is not None
                       else f"unknown force-field family {family!r} (known: {known})")
    return sizes[size]


def forward_flops_per_atom(family: str, size: str, forcefield: dict) -> float:
    """Forward FLOPs per atom on the reference batch: from the table at its cutoffs, else measured (torch)."""
    row, ref = entry(family, size), read_table()["reference"]
    if (float(forcefield["cutoff"]), float(forcefield["angle_cutoff"])) == (ref["cutoff"], ref["angle_cutoff"]):
        return float(row["forward_flops_per_atom"])
    from eqscale.forcefield.models.registry import forward_flops_per_atom as measured

    return measured(family, size, {"cutoff": forcefield["cutoff"], "angle_cutoff": forcefield["angle_cutoff"]})


def reference_atoms_per_molecule() -> float:
    """Mean atoms per molecule of the FLOP reference batch (what the plan charges a configuration)."""
    ref = read_table()["reference"]
    return ref["atoms"] / ref["molecules"]


def build_table() -> dict:
    """Measure every family and size at the default cutoffs (imports torch; seconds)."""
    from eqscale.config import validate_config
    from eqscale.forcefield.models.registry import (FAMILIES, FF_SIZES, forward_flops_per_atom as measured,
                                                    num_params, reference_batch)

    settings = validate_config({})["forcefield"]
    batch = reference_batch()
    families = {}
    for family in FAMILIES:
        families[family] = {}
        for size, config in FF_SIZES[family].items():
            width = getattr(config, "hidden", None) or config.channels
            families[family][size] = {"params": int(num_params(family, size)), "width": int(width),
                                      "forward_flops_per_atom": float(measured(family, size, settings))}
    return {"reference": {"molecules": int(batch["num_atoms"].shape[0]), "atoms": int(batch["numbers"].shape[0]),
                          "cutoff": float(settings["cutoff"]), "angle_cutoff": float(settings["angle_cutoff"])},
            "families": families}


def main() -> None:
    """Rewrite size_table.json from fresh measurements."""
    TABLE_PATH.write_text(json.dumps(build_table(), indent=1) + "\n")
    print(f"wrote {TABLE_PATH}")


if __name__ == "__main__":
    main()
