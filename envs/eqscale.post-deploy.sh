#!/usr/bin/env bash
# Run by Snakemake after it creates envs/eqscale.yaml: Kubric without its TensorFlow/Beam/GCS
# dependencies, then eqscale from this checkout.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
"${CONDA_PREFIX}/bin/pip" install --no-deps -r "${here}/requirements-nodeps.txt"
"${CONDA_PREFIX}/bin/pip" install --no-deps -e "${here}/.."
