"""The SLURM profile, exercised for real on a one-node cluster started on localhost.

The test starts munge, slurmctld and slurmd with tests/workflow/slurm_local.sh (Debian's
packages; `.ci/run` installs them), runs the tiny preset's data stages through
`--profile profiles/slurm` and compares the outputs with a local run's. It stops the daemons it
started. Where that is impossible (not root, packages missing) it is skipped with the reason.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from snakemake_helpers import REPO, snakemake  # noqa: E402

SCRIPT = Path(__file__).parent / "slurm_local.sh"
TARGETS = ("results/raw/shard-0000.h5", "results/raw/shard-0001.h5")


@pytest.fixture(scope="module")
def slurm_cluster():
    if os.geteuid() != 0:
        pytest.skip("the local SLURM cluster needs root to start munge/slurmctld/slurmd")
    missing = [b for b in ("slurmctld", "slurmd", "sbatch", "munged") if shutil.which(b) is None]
    if missing:
        pytest.skip(f"SLURM packages missing ({', '.join(missing)}): run tests/workflow/slurm_local.sh install")
    start = subprocess.run(["bash", str(SCRIPT), "start"], capture_output=True, text=True)
    if start.returncode != 0:
        pytest.skip(f"could not start a local SLURM cluster: {start.stderr.strip() or start.stdout.strip()}")
    yield
    subprocess.run(["bash", str(SCRIPT), "stop"], capture_output=True, text=True)


@pytest.mark.slow
@pytest.mark.slurm
def test_data_stages_through_the_slurm_profile(slurm_cluster, tmp_path):
    cluster, local = tmp_path / "cluster", tmp_path / "local"
    proc = snakemake(cluster, *TARGETS, "--profile", str(REPO / "profiles" / "slurm"), "--jobs", "4",
                     "--slurm-status-command", "squeue", "--slurm-init-seconds-before-status-checks", "5",
                     timeout=1200, real_slurm=True)
    log = proc.stdout + proc.stderr
    assert "submitted with SLURM jobid" in log or "Submitted array job" in log, log[-3000:]
    assert "Submitted array job" in log  # the simulation shards go out as one job array
    snakemake(local, *TARGETS, "--cores", "2")
    for target in TARGETS:
        assert (cluster / target).read_bytes() == (local / target).read_bytes(), target
    assert (cluster / "results/assets/meshes.h5").read_bytes() == (local / "results/assets/meshes.h5").read_bytes()
