"""Real Hydra multiruns: failure isolation and the sweep report."""

import json
import subprocess
import sys

import pytest
from conftest import ROOT, TINY_RUN


def test_a_failed_job_keeps_the_others_and_the_report_lists_every_job(tmp_path, mnist_dir, victim_file):
    sweep = tmp_path / "sweep"
    cmd = [
        sys.executable,
        "train.py",
        "-m",
        "experiment=reprogram_mnist",
        f"victim.ckpt_path={victim_file}",
        "data.digit_size=14,40",
        "optimizer.lr=0.01,0.1",
        *TINY_RUN,
        "trainer.fast_dev_run=true",
        f"paths.data_dir={mnist_dir}",
        f"paths.cache_dir={tmp_path / 'cache'}",
        f"hydra.sweep.dir={sweep}",
    ]
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1, "a sweep with a failed job exits non-zero"
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors and errors[-1].startswith("error: image size 40 does not fit a 32x32 canvas"), result.stderr[-2000:]

    summaries = {d.name: json.loads((d / "metrics.json").read_text()) for d in sweep.iterdir() if d.is_dir()}
    assert sorted(summaries) == ["0", "1", "2", "3"]
    done = [s for s in summaries.values() if s["status"] == "completed"]
    failed = [s for s in summaries.values() if s["status"] == "failed"]
    assert len(done) == 2 and all("data.digit_size=14" in s["overrides"] for s in done)
    assert len(failed) == 2 and all("image size 40 does not fit" in s["error"] for s in failed)
    assert all((sweep / name / "program.safetensors").is_file() for name, s in summaries.items() if s in done)

    (sweep / "4" / ".hydra").mkdir(parents=True)  # a job that was killed before it wrote anything
    (sweep / "4" / ".hydra" / "overrides.yaml").write_text("- data.digit_size=10\n- optimizer.lr=0.1\n")
    report = subprocess.run(
        [sys.executable, "-m", "reprog.report", str(sweep)], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert report.returncode == 0, report.stderr
    md = (sweep / "report.md").read_text()
    assert md.count("| completed |") == 2 and md.count("| failed |") == 2 and md.count("| unfinished |") == 1
    assert "image size 40 does not fit" in md and "victim.ckpt_path" not in md
    assert (sweep / "report.csv").read_text().count("\n") == 6 and (sweep / "report.png").stat().st_size > 1000


def test_the_study_is_one_experiment(tmp_path, mnist_dir, victim_file):
    from conftest import compose_train

    cfg = compose_train(tmp_path, mnist_dir, ["experiment=sweep_digit_size", f"victim.ckpt_path={victim_file}"])
    assert dict(cfg.hydra.sweeper.params) == {"data.digit_size": "28,24,20,14,10,7", "optimizer.lr": "0.01,0.1"}


@pytest.mark.slow  # 10 s; kept out of the default run for its time (make test-all runs it)
def test_the_study_grid_can_be_narrowed_on_the_command_line(tmp_path, mnist_dir, victim_file):
    sweep = tmp_path / "sweep"
    cmd = [
        sys.executable,
        "train.py",
        "-m",
        "experiment=sweep_digit_size",
        f"victim.ckpt_path={victim_file}",
        "data.digit_size=10",
        *TINY_RUN,
        "trainer.fast_dev_run=true",
        f"paths.data_dir={mnist_dir}",
        f"paths.cache_dir={tmp_path / 'cache'}",
        f"hydra.sweep.dir={sweep}",
    ]
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    jobs = [json.loads((d / "metrics.json").read_text())["overrides"] for d in sweep.iterdir() if d.is_dir()]
    assert len(jobs) == 2 and all("data.digit_size=10" in o for o in jobs)
    assert sorted(o for job in jobs for o in job if o.startswith("optimizer.lr=")) == [
        "optimizer.lr=0.01",
        "optimizer.lr=0.1",
    ]


@pytest.mark.slow  # kept out of the default run for its time (make test-all runs it)
def test_optuna_search_runs_two_trials_and_reports_the_best(tmp_path, mnist_dir, victim_file):
    import yaml

    sweep = tmp_path / "optuna"
    cmd = [
        sys.executable,
        "train.py",
        "-m",
        "hparams_search=reprogram_optuna",
        "experiment=reprogram_mnist",
        f"victim.ckpt_path={victim_file}",
        "hydra.sweeper.n_trials=2",
        "hydra.sweeper.sampler.n_startup_trials=2",
        *TINY_RUN,
        "trainer.fast_dev_run=true",
        f"paths.data_dir={mnist_dir}",
        f"paths.cache_dir={tmp_path / 'cache'}",
        f"hydra.sweep.dir={sweep}",
    ]
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    best = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert set(best["best_params"]) == {"optimizer.lr", "program.lam", "data.digit_size"}
    assert 0.0 <= best["best_value"] <= 1.0 and len(list(sweep.glob("*/metrics.json"))) == 2
