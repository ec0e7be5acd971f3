"""Molecules of the force-field study: the SMILES list, the seeded selection, RDKit starting conformers.

A molecule's id is its index in the SMILES list (comments and blank lines skipped), so ids, seeds
and splits stay put when shards or selections change. Conformers are RDKit's ETKDGv3 embedding
with a seed derived from (global seed, molecule id, conformer), relaxed with MMFF94 (which covers
H, C, N, O, F, S and Cl) when RDKit has parameters for every atom; atom order is RDKit's (heavy
atoms as written, then hydrogens).
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

# H, C, N, O, F, S, Cl: what the shipped list holds and what the models embed
ELEMENTS = (1, 6, 7, 8, 9, 16, 17)
MAX_ATOMIC_NUMBER = max(ELEMENTS)


class MoleculeListError(ValueError):
    """A SMILES list is missing or holds a line that is not a usable molecule; the message names file and line."""


@dataclass(frozen=True)
class Molecule:
    """One entry of the SMILES list."""

    molecule_id: int
    smiles: str
    name: str
    numbers: tuple[int, ...]  # atomic numbers in RDKit's order, hydrogens included

    @property
    def num_atoms(self) -> int:
        """Atoms including hydrogens."""
        return len(self.numbers)


def bundled_smiles_path() -> Path:
    """The SMILES list shipped with eqscale."""
    return Path(str(resources.files("eqscale.forcefield").joinpath("smiles.txt")))


def smiles_path(smiles_file: str | Path = "") -> Path:
    """The list a config names (`molecules.smiles_file`; empty = the shipped one)."""
    return Path(smiles_file) if str(smiles_file) else bundled_smiles_path()


def file_sha256(path: str | Path) -> str:
    """sha256 (hex) of a file's bytes, recorded with every shard labelled from it."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _with_hydrogens(smiles: str):
    from rdkit import Chem

    mol = Chem.MolFromSmiles(smiles)
    return None if mol is None else Chem.AddHs(mol)


@functools.lru_cache(maxsize=8)
def _load(path: Path, mtime_ns: int) -> tuple[Molecule, ...]:
    from rdkit import Chem, RDLogger
    from rdkit.Chem import Descriptors

    RDLogger.DisableLog("rdApp.*")  # failures are reported below with the file and line
    molecules, seen = [], {}
    for line_no, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        smiles, _, name = line.partition("\t")
        smiles, name = smiles.strip(), name.strip() or smiles.strip()
        where = f"SMILES list {path} line {line_no} ({smiles!r})"
        mol = _with_hydrogens(smiles)
        if mol is None:
            raise MoleculeListError(f"{where}: RDKit cannot parse this SMILES")
        canonical = Chem.MolToSmiles(Chem.RemoveHs(mol))
        if canonical in seen:
            raise MoleculeListError(f"{where}: the same molecule as line {seen[canonical]}")
        seen[canonical] = line_no
        numbers = tuple(atom.GetAtomicNum() for atom in mol.GetAtoms())
        foreign = sorted(set(numbers) - set(ELEMENTS))
        if foreign:
            raise MoleculeListError(f"{where}: atomic numbers {foreign} are outside the study's elements {ELEMENTS}")
        if Chem.GetFormalCharge(mol) != 0 or Descriptors.NumRadicalElectrons(mol) != 0:
            raise MoleculeListError(f"{where}: not neutral and closed-shell (labels are for charge 0, singlet)")
        molecules.append(Molecule(len(molecules), smiles, name, numbers))
    if not molecules:
        raise MoleculeListError(f"SMILES list {path} holds no molecules")
    return tuple(molecules)


def load_molecule_list(smiles_file: str | Path = "") -> tuple[Molecule, ...]:
    """Every molecule of a SMILES list, checked (parsable, H/C/N/O/F/S/Cl, neutral, closed-shell, no duplicates)."""
    path = smiles_path(smiles_file)
    if not path.is_file():
        raise MoleculeListError(f"SMILES list {path} does not exist (config key molecules.smiles_file)")
    return _load(path.resolve(), path.stat().st_mtime_ns)


def select_molecules(molecules: tuple[Molecule, ...], num_molecules: int | None, max_atoms: int,
                     seed: int) -> list[Molecule]:
    """The study's molecules: those with at most `max_atoms` atoms, `num_molecules` of them drawn by seed, by id."""
    eligible = [m for m in molecules if m.num_atoms <= max_atoms]
    if num_molecules is None:
        return eligible
    if num_molecules > len(eligible):
        raise MoleculeListError(f"config key molecules.num_molecules: {num_molecules} requested, but only "
                                f"{len(eligible)} molecules of the list have at most {max_atoms} atoms")
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x6D6F6C]))  # a stream of its own ("mol")
    picked = rng.choice(len(eligible), size=num_molecules, replace=False)
    return [eligible[i] for i in sorted(picked)]


def shard_molecules(selected: list[Molecule], shard: int, num_shards: int) -> list[Molecule]:
    """The molecules shard `shard` labels: every num_shards-th, so shards get similar size mixes."""
    if not 0 <= shard < num_shards:
        raise ValueError(f"shard {shard} is outside [0, molecules.num_shards={num_shards})")
    return selected[shard::num_shards]


def conformer_seed(seed: int, molecule_id: int, conformer: int) -> int:
    """RDKit's embedding seed for one conformer (31 bits, from its own SeedSequence stream)."""
    state = np.random.SeedSequence([seed, molecule_id, conformer, 1]).generate_state(1)[0]
    return int(state) & 0x7FFFFFFF


def conformer_positions(molecule: Molecule, seed: int) -> np.ndarray:
    """A 3D conformer (atoms, 3) in Angstrom: ETKDGv3 with `seed`, then MMFF94 when parametrised."""
    from rdkit.Chem import AllChem

    mol = _with_hydrogens(molecule.smiles)
    params = AllChem.ETKDGv3()
    params.randomSeed = seed
    params.numThreads = 1
    if AllChem.EmbedMolecule(mol, params) != 0:
        # ETKDG fails on a few strained cages; random starting coordinates always embed
        params.useRandomCoords = True
        if AllChem.EmbedMolecule(mol, params) != 0:
            raise MoleculeListError(f"RDKit cannot embed molecule {molecule.molecule_id} ({molecule.smiles}) in 3D")
    if AllChem.MMFFHasAllMoleculeParams(mol):
        AllChem.MMFFOptimizeMolecule(mol, maxIters=2000)
    numbers = tuple(atom.GetAtomicNum() for atom in mol.GetAtoms())
    if numbers != molecule.numbers:
        raise MoleculeListError(f"molecule {molecule.molecule_id} ({molecule.smiles}): RDKit's atom order changed")
    return np.array(mol.GetConformer().GetPositions(), dtype=np.float64)
