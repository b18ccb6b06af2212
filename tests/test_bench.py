"""The bench scripts that do more than time a loop: airbench's own code on a CPU, and train.py runs measured
from outside."""

import numpy as np
import pytest
import torch
from conftest import ROOT, TINY_RUN, bench_script, write_cifar_npz

airbench_reference, host_memory = bench_script("airbench_reference"), bench_script("host_memory")


@pytest.mark.slow  # kept out of the default run for its time (make test-all runs it)
def test_airbench_trains_on_the_cpu_from_our_array_files(tmp_path, monkeypatch):
    data = write_cifar_npz(tmp_path / "data", n_train=1024, n_test=200)  # one batch of 1024: one step
    with np.load(data / "cifar10" / "test.npz") as f:
        np.savez(data / "cifar10" / "test_lossless_subset.npz", x=f["x"][:50], y=f["y"][:50], index=np.arange(50))
    airbench_reference.write_airbench_data(data, tmp_path / "work")
    monkeypatch.chdir(tmp_path / "work")

    model, result = airbench_reference.train_reference("cpu", epochs=1)
    assert next(model.parameters()).dtype == torch.float32, "float32 on a CPU, where airbench casts to float16"
    assert len(result["epochs"]) == 1 and result["train_s"] > 0 and 0 <= result["test_acc"] <= 1

    check = airbench_reference.lossless_check(model, airbench_reference.airbench_normalize, data, "cpu")
    assert check["images"] == 50
    assert check["lossless"] == check["jpeg"], "the same pixels in both files score the same"
    assert torch.cuda.Event is not airbench_reference.WallClockEvent, "the CUDA shims are undone"


def test_airbench_table_is_parsed_per_epoch_with_the_final_tta_accuracy():
    printed = """\
|  run     |  epoch  |  train_loss  |  train_acc  |  val_acc  |  tta_val_acc  |  total_time_seconds  |
|       0  |      0  |      2.2798  |     0.2363  |   0.6040  |               |             20.7274  |
|          |      1  |      1.2798  |     0.7363  |   0.8040  |               |             40.5000  |
|          |   eval  |      1.2798  |     0.7363  |   0.8040  |       0.8147  |            136.5691  |"""
    assert airbench_reference.parse_airbench_table(printed) == {
        "epochs": [(20.7274, 0.604), (40.5, 0.804)],
        "train_s": 40.5,
        "test_acc": 0.8147,
    }


@pytest.mark.slow  # kept out of the default run for its time (make test-all runs it)
def test_host_memory_bench_reads_one_train_py_run_from_the_kernel(cifar_npz_dir):
    r = host_memory.run([*TINY_RUN, "trainer.max_steps=2", f"paths.data_dir={cifar_npz_dir}"])
    assert r["train_s"] > 0, "the run's own training clock"
    assert r["faults"] > 1000 and r["peak_mib"] > 100, "that process's page faults and peak memory, from os.wait4"


def test_reliability_bench_tells_one_line_from_a_traceback_and_kills_at_the_chosen_rename(tmp_path):
    import subprocess
    import sys

    reliability = bench_script("reliability")
    done = lambda rc, out="", err="": subprocess.CompletedProcess([], rc, out, err)  # noqa: E731
    assert (
        reliability.outcome(done(1, err="[log]\nerror: data.batch_size=abc: expected an integer >= 1\n"))[0]
        == "one line"
    )
    assert (
        reliability.outcome(done(1, err="Traceback (most recent call last):\n  ...\nValueError: x\n"))[0] == "TRACEBACK"
    )
    assert reliability.outcome(done(0, out="jobs: 1 completed\n"))[0] == "handled"
    # the KILL_AT shim stops a process with SIGKILL just before the chosen file is renamed into place
    script = (
        "import sys; from pathlib import Path; from reprog.atomic_files import write_file; "
        "write_file(Path(sys.argv[1]) / 'a.json', 'first'); write_file(Path(sys.argv[1]) / 'a.json', 'second')"
    )
    (tmp_path / "train.py").write_text(script)
    child = subprocess.run(
        [sys.executable, "-c", reliability.KILL_AT, "a.json", "2", str(tmp_path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(ROOT)},
    )
    assert child.returncode == -9 and (tmp_path / "a.json").read_text() == "first"


def test_bank_bench_times_a_bank_against_one_program_with_the_speedup_relative_to_k_alone(tmp_path):
    import argparse

    bank = bench_script("bank")
    args = argparse.Namespace(models=["resnet20"], ks=[1, 3], batches=[4], steps=1, repeats=1)
    rows = bank.throughput(args)["rows"]
    assert [(r["programs"], r["batch"]) for r in rows] == [(1, 4), (3, 4)] and rows[0]["speedup"] == 1.0
    assert rows[1]["speedup"] == pytest.approx(3 * rows[0]["step_s"] / rows[1]["step_s"], rel=0.02)
    bank.plot(rows, tmp_path / "bank.png")
    assert (tmp_path / "bank.png").stat().st_size > 1000
