"""The same tiny sweep through Hydra's joblib and submitit_local launchers, which really run it."""

import json
import subprocess
import sys

import pytest
from conftest import ROOT, TINY_RUN


@pytest.mark.parametrize(
    "launcher",
    [
        pytest.param(["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"], marks=pytest.mark.slow),  # 16 s
        pytest.param(["hydra/launcher=submitit_local", "hydra.launcher.timeout_min=5"], marks=pytest.mark.slow),
    ],  # 16 s; the cluster path's dry run
    ids=["joblib", "submitit_local"],
)
def test_launcher_runs_every_job(launcher, tmp_path, mnist_dir, victim_file):
    sweep = tmp_path / "sweep"
    cmd = [
        sys.executable,
        "train.py",
        "-m",
        *launcher,
        "experiment=reprogram_mnist",
        f"victim.ckpt_path={victim_file}",
        "data.digit_size=14,10",
        *TINY_RUN,
        "trainer.fast_dev_run=true",
        f"paths.data_dir={mnist_dir}",
        f"paths.cache_dir={tmp_path / 'cache'}",
        f"hydra.sweep.dir={sweep}",
    ]
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    summaries = sorted(sweep.glob("*/metrics.json"))
    assert len(summaries) == 2
    assert all(json.loads(s.read_text())["status"] == "completed" for s in summaries)


def test_slurm_launcher_exposes_cluster_settings():
    from conftest import CONF
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    with initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = compose(
            "train.yaml",
            overrides=[
                "hydra/launcher=slurm",
                "hydra.launcher.partition=gpu",
                "hydra.launcher.gpus_per_node=4",
                "hydra.launcher.mem_gb=64",
            ],
            return_hydra_config=True,
        )
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("SlurmLauncher")
    assert (launcher.partition, launcher.gpus_per_node, launcher.mem_gb, launcher.timeout_min) == ("gpu", 4, 64, 240)
