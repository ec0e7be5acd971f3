"""The force-field study (Ngo & Ravanbakhsh 2025): molecules labelled locally with GFN2-xTB, and the symmetry staircase.

molecules.py (SMILES list, conformers) -> labels.py (tblite + Langevin MD) -> shard_format.py
(HDF5 shards) -> splits.py (splits by molecule, reference energies, stats.json) -> dataset.py
(batches); graph.py (radius graphs in torch), models/ (the staircase), loss.py, symmetry.py
(O(3) augmentation and the symmetry loss); molecules_cli.py is `eqscale molecules`.
"""
