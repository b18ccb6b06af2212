#!/usr/bin/env bash
# A program bank on a cluster: ONE SLURM job that runs the whole bank multirun inside it (hydra/launcher=bank),
# so the programs that share a victim train together, one pass through it per step, on that job's GPU/CPUs.
# hydra/launcher=slurm and hydra/launcher=bank do not compose (Hydra takes one launcher per multirun): bank
# inside one allocation, or split the grid into several such jobs (one per victim / data set / seed).
#   sbatch --cpus-per-task=1 --mem=4G --signal=USR1@90 scripts/slurm/bank_job.sh \
#       victim.ckpt_path=<victim run>/victim.safetensors data.digit_size=10,14 hydra.sweep.dir=<dir>
# The arguments go to train.py after `-m experiment=sweep_digit_size hydra/launcher=bank`.
#SBATCH --job-name=reprog-bank
#SBATCH --output=%x-%j.out
set -euo pipefail
cd "${REPROG_ROOT:-$SLURM_SUBMIT_DIR}"
PY=${REPROG_PYTHON:-.venv/bin/python}
exec "$PY" train.py -m experiment=sweep_digit_size hydra/launcher=bank "$@"
