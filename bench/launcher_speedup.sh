#!/usr/bin/env bash
# The same small sweep (4 reprogramming jobs) through the basic and the joblib launcher, back to back.
#   REPROG_DATA_DIR=../shared/data bash bench/launcher_speedup.sh <victim.safetensors>
set -euo pipefail
victim=${1:?usage: bench/launcher_speedup.sh <victim.safetensors>}
common=(experiment=reprogram_mnist "victim.ckpt_path=$victim" data.digit_size=20,14,10,7 trainer.max_epochs=1
        trainer.limit_train_batches=60 trainer.limit_val_batches=2 trainer.limit_test_batches=4
        trainer.enable_progress_bar=false callbacks.rich_progress_bar=null)
py=${PYTHON:-.venv/bin/python}
stamp=$(date +%Y-%m-%d_%H-%M-%S)
t0=$(date +%s.%N)
$py train.py -m "${common[@]}" hydra.sweep.dir=outputs/multiruns/launcher_basic_$stamp > /dev/null 2>&1
t1=$(date +%s.%N)
$py train.py -m hydra/launcher=joblib hydra.launcher.n_jobs=2 "${common[@]}" \
    hydra.sweep.dir=outputs/multiruns/launcher_joblib_$stamp > /dev/null 2>&1
t2=$(date +%s.%N)
python3 -c "b, j = $t1 - $t0, $t2 - $t1; print(f'basic {b:.1f} s, joblib(n_jobs=2) {j:.1f} s, speed-up {b / j:.2f}x')"
