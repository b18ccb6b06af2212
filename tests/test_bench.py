"""The bench scripts that do more than time a loop: airbench's own code on a CPU, and train.py runs measured
from outside."""

import importlib.util
from types import ModuleType

import numpy as np
import torch

from conftest import ROOT, TINY_RUN, write_cifar_npz


def bench_script(name: str) -> ModuleType:
    """bench/<name>.py as a module (bench/ is scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


airbench_reference, host_memory = bench_script("airbench_reference"), bench_script("host_memory")


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
        "epochs": [(20.7274, 0.604), (40.5, 0.804)], "train_s": 40.5, "test_acc": 0.8147}


def test_host_memory_bench_reads_one_train_py_run_from_the_kernel(cifar_npz_dir):
    r = host_memory.run([*TINY_RUN, "trainer.max_steps=2", f"paths.data_dir={cifar_npz_dir}"])
    assert r["train_s"] > 0, "the run's own training clock"
    assert r["faults"] > 1000 and r["peak_mib"] > 100, "that process's page faults and peak memory, from os.wait4"
