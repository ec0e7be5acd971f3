"""Force-field families, their size tables and what the grid asks of them: parameters and FLOPs per atom.

Families (the symmetry staircase): `mpnn` (translations only), `invariant` (distances and
angles), `egnn` (multi-channel, l = 1), `tensor2` and `tensor4` (e3nn, l_max 2 and 4; one class,
l_max in the size config). Every family has sizes xs, s, m, l, xl, xxl, xxxl at fixed depth (3 layers),
spanning more than 100x in parameters.

Compute: `forward_flops_per_atom(family, size)` is measured with torch's FlopCounterMode
(matrix products, 2 FLOPs per multiply-add; eqscale.models.flops) on a fixed reference batch of
16 molecules of the shipped list (RDKit conformers), divided by its atoms. Training compute is
C = 3 x forward FLOPs per sample x samples seen, i.e. `training_flops(family, size, mean_atoms,
samples)`: the backward pass costs about twice the forward (input and weight gradients).
"""

from __future__ import annotations

import functools

import torch

from eqscale.forcefield.models.common import ForceFieldNet

FAMILIES = ("mpnn", "invariant", "egnn", "tensor2", "tensor4")
REFERENCE_MOLECULES = 16


def _family_table():
    from eqscale.forcefield.models.egnn import EGNN, EGNN_SIZES
    from eqscale.forcefield.models.invariant import INVARIANT_SIZES, InvariantNet
    from eqscale.forcefield.models.mpnn import MPNN, MPNN_SIZES
    from eqscale.forcefield.models.tensor import TENSOR2_SIZES, TENSOR4_SIZES, TensorNet

    return {"mpnn": (MPNN, MPNN_SIZES), "invariant": (InvariantNet, INVARIANT_SIZES), "egnn": (EGNN, EGNN_SIZES),
            "tensor2": (TensorNet, TENSOR2_SIZES), "tensor4": (TensorNet, TENSOR4_SIZES)}


class _Sizes(dict):
    """FF_SIZES[family][size] -> the size's config dataclass (loaded on first access)."""

    def __missing__(self, family: str):
        table = _family_table()
        if family not in table:
            raise KeyError(f"unknown force-field family {family!r} (known: {', '.join(FAMILIES)})")
        self[family] = table[family][1]
        return self[family]


FF_SIZES = _Sizes()


def size_config(family: str, size: str):
    """The config dataclass of a named size; KeyError lists what exists."""
    sizes = FF_SIZES[family]
    if size not in sizes:
        raise KeyError(f"unknown {family} size {size!r} (known: {', '.join(sizes)})")
    return sizes[size]


def build_model(family: str, size: str, forcefield: dict | None = None) -> ForceFieldNet:
    """A freshly initialised network; `forcefield` is the config section (cutoffs; defaults from the schema)."""
    from eqscale.forcefield.config import forcefield_settings

    settings = forcefield_settings({"forcefield": forcefield or {}})
    config = size_config(family, size)
    cls = _family_table()[family][0]
    if family == "invariant":
        return cls(config, cutoff=settings["cutoff"], angle_cutoff=settings["angle_cutoff"])
    return cls(config, cutoff=settings["cutoff"])


@functools.lru_cache(maxsize=None)
def num_params(family: str, size: str) -> int:
    """Trainable parameters of a family's size."""
    return build_model(family, size).num_params()


@functools.lru_cache(maxsize=1)
def reference_batch_arrays() -> tuple:
    """(numbers, positions, num_atoms) of the FLOP reference: every 32nd molecule of the shipped list, seed 0."""
    import numpy as np

    from eqscale.forcefield.molecules import conformer_positions, load_molecule_list

    molecules = load_molecule_list()
    step = max(1, len(molecules) // REFERENCE_MOLECULES)
    picked = molecules[::step][:REFERENCE_MOLECULES]
    numbers = np.concatenate([m.numbers for m in picked])
    positions = np.concatenate([conformer_positions(m, 0) for m in picked])
    return numbers, positions, np.array([m.num_atoms for m in picked])


def reference_batch(dtype: torch.dtype = torch.float32) -> dict[str, torch.Tensor]:
    """The FLOP reference batch as a model batch dict (no labels)."""
    from eqscale.forcefield.dataset import to_batch

    return to_batch(*reference_batch_arrays(), dtype=dtype)


def measure_forward_flops(model: ForceFieldNet, batch: dict[str, torch.Tensor]) -> int:
    """Forward FLOPs of `model` on `batch`, counted by FlopCounterMode."""
    from eqscale.models.flops import measure_flops

    with torch.no_grad():
        return measure_flops(lambda: model(batch))


@functools.lru_cache(maxsize=None)
def _flops_per_atom(family: str, size: str, cutoff: float, angle_cutoff: float) -> float:
    model = build_model(family, size, {"cutoff": cutoff, "angle_cutoff": angle_cutoff})
    batch = reference_batch()
    return measure_forward_flops(model, batch) / int(batch["numbers"].shape[0])


def forward_flops_per_atom(family: str, size: str, forcefield: dict | None = None) -> float:
    """Measured forward FLOPs per atom on the reference batch (cached per family, size and cutoffs)."""
    from eqscale.forcefield.config import forcefield_settings

    settings = forcefield_settings({"forcefield": forcefield or {}})
    return _flops_per_atom(family, size, float(settings["cutoff"]), float(settings["angle_cutoff"]))


def kappa(family: str, size: str, forcefield: dict | None = None) -> float:
    """Forward FLOPs per atom per parameter (paper 2's kappa, per token = per atom)."""
    return forward_flops_per_atom(family, size, forcefield) / num_params(family, size)


def training_flops(family: str, size: str, mean_atoms: float, samples: float, forcefield: dict | None = None) -> float:
    """C = 3 x forward FLOPs per sample x samples seen (forward + backward ~ 3 forwards)."""
    return 3.0 * forward_flops_per_atom(family, size, forcefield) * mean_atoms * samples
