"""GFN2-xTB labels (tblite through its ASE calculator) and Langevin MD sampling of configurations.

Units are ASE's: energies in eV, forces in eV/Angstrom, positions in Angstrom. Molecules are
labelled neutral and closed-shell (charge 0, singlet). Each RDKit conformer is first relaxed under
GFN2-xTB (ASE's BFGS): MMFF's geometry can sit far from GFN2-xTB's minimum (13-16 eV/A on CO2 and
N2), and MD started there runs far hotter than its thermostat for the first hundreds of steps.
One MD run is one (molecule, conformer, temperature) from that minimum: Maxwell-Boltzmann
velocities at the run's temperature, then Langevin dynamics
(ASE's integrator; no centre-of-mass constraint, which biases small systems) with GFN2-xTB
forces; after `equilibration_steps` a configuration is kept every `sample_interval` steps. The
energy and forces stored with a configuration are the ones the integrator computed at that
geometry, so sampling costs no extra single points. Each run has a calculator of its own (tblite
restarts each SCF from the previous step's wavefunction), so any run regenerates alone with the
same bits. Results are bit-identical on one machine only with OpenMP on one thread:
`single_thread_openmp` sets that before labelling.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import os
from dataclasses import dataclass, field

import numpy as np

from eqscale.forcefield.molecules import Molecule, conformer_positions, conformer_seed

log = logging.getLogger(__name__)

METHOD = "GFN2-xTB"
PROGRAM = "tblite"
UNITS = {"energy": "eV", "forces": "eV/Angstrom", "positions": "Angstrom", "temperature": "K", "time": "fs"}


def single_thread_openmp() -> None:
    """Run tblite's OpenMP regions on one thread (threaded reductions change the last bits of the labels)."""
    os.environ["OMP_NUM_THREADS"] = "1"  # for libraries initialised later
    try:
        # tblite links the system libgomp; set the running library's thread count too
        ctypes.CDLL("libgomp.so.1").omp_set_num_threads(1)
    except (OSError, AttributeError):
        pass


def openmp_max_threads() -> int | None:
    """omp_get_max_threads() of the libgomp tblite uses (None when it is not loadable)."""
    try:
        return int(ctypes.CDLL("libgomp.so.1").omp_get_max_threads())
    except (OSError, AttributeError):
        return None


@dataclass(frozen=True)
class LabelSettings:
    """How configurations are sampled and labelled (config section `molecules`)."""

    temperatures: tuple[float, ...] = (300.0, 600.0, 1000.0)
    conformers: int = 1
    timestep_fs: float = 0.5
    friction_per_fs: float = 0.01
    equilibration_steps: int = 50
    sample_interval: int = 10
    configurations_per_run: int = 10
    xtb_accuracy: float = 0.1
    electronic_temperature: float = 300.0
    max_scf_iterations: int = 250
    relax_fmax: float = 0.05
    relax_steps: int = 200

    @classmethod
    def from_config(cls, config: dict) -> "LabelSettings":
        """From a validated config (its `molecules` section)."""
        m = config["molecules"]
        return cls(temperatures=tuple(float(t) for t in m["temperatures"]), conformers=m["conformers"],
                   timestep_fs=m["timestep_fs"], friction_per_fs=m["friction_per_fs"],
                   equilibration_steps=m["equilibration_steps"], sample_interval=m["sample_interval"],
                   configurations_per_run=m["configurations_per_run"], xtb_accuracy=m["xtb_accuracy"],
                   electronic_temperature=m["electronic_temperature"], max_scf_iterations=m["max_scf_iterations"],
                   relax_fmax=m["relax_fmax"], relax_steps=m["relax_steps"])

    @property
    def steps_per_run(self) -> int:
        """MD steps (single points after the first) of a run that does not fail."""
        return self.equilibration_steps + (self.configurations_per_run - 1) * self.sample_interval


@functools.lru_cache(maxsize=1)
def _calculator_class():
    from ase.calculators.calculator import CalculationFailed, Calculator, all_changes
    from ase.units import Bohr, Hartree
    from tblite import ase as tblite_ase

    class LabelCalculator(tblite_ase.TBLite):
        """tblite's ASE calculator reading back only energy and forces.

        TBLite.calculate also reads charges, the dipole and bond orders after every single point, and
        each of the last two copies tblite's whole post-processing dictionary: ~1 ms per single point
        here, 10-15% of labelling a small molecule. The SCF and the numbers are tblite's own (the
        benchmark's bare loop over tblite's API reproduces the labels bit for bit).
        """

        implemented_properties = ["energy", "free_energy", "forces"]

        def check_state(self, atoms, tol: float = 1e-15) -> list[str]:
            """ASE's change list, by exact comparison: its tolerant `compare_atoms` cost ~0.5 ms per call here."""
            if self.atoms is None:
                return list(all_changes)
            # cell and pbc are Atoms attributes; the rest of all_changes are per-atom arrays
            changes = [name for name in ("cell", "pbc")
                       if not np.array_equal(getattr(self.atoms, name), getattr(atoms, name))]
            mine, theirs = self.atoms.arrays, atoms.arrays
            changes += [name for name in all_changes if (name in mine) != (name in theirs)
                        or (name in mine and not np.array_equal(mine[name], theirs[name]))]
            return changes

        def _check_api_calculator(self, system_changes: list[str]) -> None:
            # during MD and relaxation only positions change: send only them (tblite's version re-sends
            # lattice, charge and spin too, which costs 5-25% more time inside the library here)
            if self._xtb is None or not set(system_changes) <= {"positions"}:
                super()._check_api_calculator(system_changes)
            elif system_changes:
                try:
                    self._xtb.update(positions=self.atoms.positions / Bohr)
                except RuntimeError:  # a geometry tblite refuses: start afresh, as tblite's version does
                    self._xtb, self._res = None, None

        def calculate(self, atoms=None, properties=None, system_changes=all_changes) -> None:
            Calculator.calculate(self, atoms, properties or ["energy"], system_changes)
            self._check_api_calculator(system_changes)
            if self._xtb is None:
                self._xtb = tblite_ase._create_api_calculator(self.atoms, self.parameters)
            try:
                self._res = self._xtb.singlepoint(self._res)  # restarts from the previous wavefunction
            except RuntimeError as err:
                raise CalculationFailed(str(err)) from err
            self.results["energy"] = self.results["free_energy"] = self._res["energy"] * Hartree
            self.results["forces"] = -self._res["gradient"] * Hartree / Bohr

    return LabelCalculator


def gfn2_calculator(settings: LabelSettings = LabelSettings()):
    """A fresh tblite ASE calculator for GFN2-xTB, neutral singlet, quiet (energy and forces only)."""
    return _calculator_class()(method=METHOD, charge=0, multiplicity=1, accuracy=settings.xtb_accuracy,
                               electronic_temperature=settings.electronic_temperature,
                               max_iterations=settings.max_scf_iterations, verbosity=0)


def single_point(numbers, positions, settings: LabelSettings = LabelSettings()) -> tuple[float, np.ndarray]:
    """GFN2-xTB energy (eV) and forces (eV/A) of one geometry, from a fresh calculator."""
    from ase import Atoms

    atoms = Atoms(numbers=np.asarray(numbers), positions=np.asarray(positions, dtype=np.float64))
    atoms.calc = gfn2_calculator(settings)
    return float(atoms.get_potential_energy()), np.array(atoms.get_forces(), dtype=np.float64)


def relax(numbers, positions: np.ndarray, settings: LabelSettings = LabelSettings(),
          trace: list | None = None) -> np.ndarray:
    """The GFN2-xTB minimum near `positions` (BFGS to relax_fmax eV/A or relax_steps steps; 0 steps: unchanged).

    An SCF failure keeps the geometry reached so far. `trace` receives ("relax", numbers, [geometries]).
    """
    if settings.relax_steps == 0:
        return np.array(positions, dtype=np.float64)
    from ase import Atoms
    from ase.calculators.calculator import CalculationFailed
    from ase.optimize import BFGS

    atoms = Atoms(numbers=np.asarray(numbers), positions=np.array(positions, dtype=np.float64))
    atoms.calc = gfn2_calculator(settings)
    optimizer = BFGS(atoms, logfile=None)
    if trace is not None:
        geometries: list[np.ndarray] = []
        trace.append(("relax", tuple(numbers), geometries))
        # observers run once per iteration, right after the forces at the current positions
        optimizer.attach(lambda: geometries.append(atoms.positions.copy()))
    try:
        optimizer.run(fmax=settings.relax_fmax, steps=settings.relax_steps)
    except CalculationFailed as err:
        log.warning("relaxation stopped early (%s); MD starts from the geometry reached", err)
    return atoms.positions.copy()


@dataclass
class Run:
    """The configurations one MD run kept (S of them, N atoms each)."""

    molecule_id: int
    conformer: int
    temperature: float
    steps: list[int] = field(default_factory=list)
    positions: list[np.ndarray] = field(default_factory=list)  # (N, 3) each, Angstrom
    energies: list[float] = field(default_factory=list)  # eV
    forces: list[np.ndarray] = field(default_factory=list)  # (N, 3) each, eV/A
    single_points: int = 0
    failure: str = ""  # empty when the run finished


def run_seed(seed: int, molecule_id: int, conformer: int, temperature_index: int) -> int:
    """Seed of one MD run's random stream (velocities and Langevin noise)."""
    return int(np.random.SeedSequence([seed, molecule_id, conformer, temperature_index, 2]).generate_state(1)[0])


def sample_run(numbers, start_positions: np.ndarray, temperature: float, seed: int,
               settings: LabelSettings = LabelSettings(), *, molecule_id: int = -1, conformer: int = 0,
               trace: list | None = None) -> Run:
    """One Langevin run under GFN2-xTB from `start_positions`; keeps the configurations the settings ask for.

    An SCF failure ends the run early (its configurations so far are kept; `failure` says why).
    `trace`, when given, receives ("md", numbers, [every geometry a single point was computed at])
    for this run (the benchmark replays them).
    """
    from ase import Atoms, units
    from ase.calculators.calculator import CalculationFailed
    from ase.md.langevin import Langevin
    from ase.md.velocitydistribution import Stationary, thermalize_momenta

    rng = np.random.default_rng(seed)
    atoms = Atoms(numbers=np.asarray(numbers), positions=np.array(start_positions, dtype=np.float64))
    atoms.calc = gfn2_calculator(settings)
    thermalize_momenta(atoms, temperature, rng=rng)
    Stationary(atoms)
    dyn = Langevin(atoms, timestep=settings.timestep_fs * units.fs, temperature_K=temperature,
                   friction=settings.friction_per_fs / units.fs, fixcm=False, rng=rng)
    run = Run(molecule_id, conformer, float(temperature))
    targets = [settings.equilibration_steps + k * settings.sample_interval
               for k in range(settings.configurations_per_run)]
    step = 0
    geometries: list[np.ndarray] | None = None
    if trace is not None:
        geometries = [atoms.positions.copy()]
        trace.append(("md", tuple(numbers), geometries))
    try:
        forces = atoms.get_forces()
        run.single_points += 1
        for target in targets:
            while step < target:
                forces = dyn.step(forces)  # one single point, at the new positions
                if geometries is not None:
                    geometries.append(atoms.positions.copy())
                run.single_points += 1
                step += 1
            run.steps.append(step)
            run.positions.append(atoms.positions.copy())
            run.energies.append(float(atoms.get_potential_energy()))  # cached: computed with these forces
            run.forces.append(np.array(forces, dtype=np.float64))
    except CalculationFailed as err:
        run.failure = f"step {step}: {err}"
        log.warning("molecule %d conformer %d at %g K: MD run stopped early (%s)", molecule_id, conformer,
                    temperature, run.failure)
    return run


def label_molecule(molecule: Molecule, seed: int, settings: LabelSettings = LabelSettings(),
                   trace: list | None = None) -> list[Run]:
    """Every MD run of one molecule (conformers x temperatures), in that order, each from the relaxed conformer."""
    runs = []
    for conformer in range(settings.conformers):
        start = relax(molecule.numbers, conformer_positions(molecule, conformer_seed(seed, molecule.molecule_id,
                                                                                       conformer)), settings, trace)
        for t_index, temperature in enumerate(settings.temperatures):
            runs.append(sample_run(molecule.numbers, start, temperature,
                                   run_seed(seed, molecule.molecule_id, conformer, t_index), settings,
                                   molecule_id=molecule.molecule_id, conformer=conformer, trace=trace))
    return runs
