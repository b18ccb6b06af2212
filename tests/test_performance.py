"""The performance paths: device-resident batches, channels_last, compile, and a victim that costs no weight
gradients."""

import json
import platform
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from conftest import compose_train

from reprog.data.cifar10 import CIFAR10DataModule
from reprog.data.device_batches import DeviceBatches
from reprog.label_mapping import FirstK
from reprog.models import build_model
from reprog.models.export import state_checksum
from reprog.models.frozen import FrozenVictim, fold_batchnorm
from reprog.placement import Placement
from reprog.profiling import conv_backward_count
from reprog.program import AdversarialProgram
from train import train

SPEC = {"arch": "resnet20", "num_classes": 10, "mean": [0.5] * 3, "std": [0.25] * 3}


def _batches(n: int = 103, **kw) -> DeviceBatches:
    return DeviceBatches(torch.arange(n), torch.arange(n) % 10, batch_size=8, seed=7, **kw)


def test_training_shards_are_disjoint_equal_and_reshuffled_each_epoch():
    ranks = [_batches(shuffle=True, drop_last=True, rank=r, world_size=2) for r in range(2)]
    epochs = [[torch.cat([x for x, _ in rank]) for rank in ranks] for _ in range(2)]
    for shard0, shard1 in epochs:
        assert len(shard0) == len(shard1) == len(ranks[0]) * 8 == 48  # 51 per rank, whole batches only
        assert not set(shard0.tolist()) & set(shard1.tolist())
    assert not torch.equal(epochs[0][0], epochs[1][0]), "a new permutation every epoch"
    again = _batches(shuffle=True, drop_last=True, rank=0, world_size=2)
    assert torch.equal(torch.cat([x for x, _ in again]), epochs[0][0]), "the same seed gives every rank the same order"
    resumed = _batches(shuffle=True, drop_last=True, rank=1, world_size=2, epoch=1)  # a resumed or reloaded loader
    assert torch.equal(torch.cat([x for x, _ in resumed]), epochs[1][1])
    x, y = next(iter(again))
    assert torch.equal(y, x % 10), "images and labels stay paired"


def test_evaluation_shards_cover_every_image_exactly_once_in_order():
    ranks = [_batches(rank=r, world_size=3) for r in range(3)]
    seen = torch.cat([x for rank in ranks for x, _ in rank])
    assert sorted(seen.tolist()) == list(range(103))
    assert [len(r) for r in ranks] == [5, 5, 5] and torch.equal(next(iter(ranks[1]))[0], torch.arange(1, 24, 3))


def test_device_resident_and_dataloader_paths_serve_the_same_data(cifar_npz_dir):
    def loaders(device_resident: bool):
        dm = CIFAR10DataModule(
            str(cifar_npz_dir), download=False, val_size=100, batch_size=32, device_resident=device_resident
        )
        dm.setup()
        return dm.train_dataloader(), dm.test_dataloader()

    (train_r, test_r), (train_d, test_d) = loaders(True), loaders(False)
    assert isinstance(train_r, DeviceBatches) and len(train_r) == len(train_d) == 500 // 32
    for (xr, yr), (xd, yd) in zip(test_r, test_d, strict=True):
        assert torch.equal(xr, xd) and torch.equal(yr, yd)
    train_rows = set(map(bytes, train_r.images.flatten(1).numpy()))  # the whole train split, once
    for loader in (train_r, train_d):
        x = torch.cat([x for x, _ in loader])
        assert len(x) == 15 * 32 and set(map(bytes, x.flatten(1).numpy())) <= train_rows


def test_channels_last_changes_layout_not_values():
    torch.manual_seed(0)
    nchw = build_model(**SPEC).eval()
    torch.manual_seed(0)
    nhwc = build_model(**SPEC, channels_last=True).eval()
    conv = nhwc[1].stem[0].weight
    assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()
    assert state_checksum(nchw) == state_checksum(nhwc)
    x = torch.rand(4, 3, 32, 32)
    assert torch.allclose(nchw(x), nhwc(x), atol=1e-5)


def test_runtime_options_are_not_saved_with_the_victim(tmp_path, cifar_npz_dir):
    cfg = compose_train(tmp_path, cifar_npz_dir, ["trainer.fast_dev_run=true", "model.channels_last=true"])
    train(cfg)
    spec = json.loads((tmp_path / "run" / "victim.json").read_text())["model"]
    assert "channels_last" not in spec and "compile" not in spec and spec["arch"] == "resnet20"


def test_the_frozen_victim_computes_input_gradients_only():
    """torch.profiler: every convolution backward of a program step skips the weight gradient."""
    torch.manual_seed(0)
    placement = Placement(32, 14)
    victim, program, label_map = FrozenVictim(build_model(**SPEC), SPEC), AdversarialProgram(placement), FirstK(10, 10)
    digits, labels = placement.place(torch.rand(8, 3, 14, 14)), torch.randint(0, 10, (8,))
    program_step = conv_backward_count(lambda: F.cross_entropy(label_map(victim(program(digits))), labels).backward())
    assert program_step.calls == 21 and program_step.weight_grads == 0 and program_step.input_grads == 21
    assert program.W.grad is not None and all(p.grad is None for p in victim.parameters())

    model = build_model(**SPEC).train()  # the same network in training: weight gradients everywhere
    training_step = conv_backward_count(lambda: F.cross_entropy(model(digits), labels).backward())
    assert training_step.weight_grads == training_step.calls == 21
    assert training_step.input_grads == 20  # not for the input images


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_a_batchnorm_behind_a_max_pool_folds_only_with_positive_scales(sign):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.MaxPool2d(2), torch.nn.BatchNorm2d(4)).eval()
    with torch.no_grad():
        model[2].weight.copy_(torch.tensor([1.0, 2.0, 0.5, sign]))  # a negative scale turns max into min
        model[2].running_mean.normal_(), model[2].running_var.uniform_(0.5, 2)
    folded = fold_batchnorm(model)
    x = torch.rand(2, 3, 10, 10)
    assert torch.allclose(folded(x), model(x), atol=1e-6)
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules()) == (sign < 0)


def test_compile_keeps_state_dict_keys():
    plain, compiled = build_model(**SPEC), build_model(**SPEC, compile=True)
    assert list(plain.state_dict()) == list(compiled.state_dict())


@pytest.mark.slow
def test_compiled_victim_training_runs_end_to_end(tmp_path, cifar_npz_dir):
    cfg = compose_train(tmp_path, cifar_npz_dir, ["trainer.fast_dev_run=true", "model.compile=true"])
    assert "test/acc" in train(cfg)


def test_training_clock_logs_training_time_beside_validation_accuracy(tmp_path, cifar_npz_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    cfg = compose_train(
        tmp_path,
        cifar_npz_dir,
        ["trainer.max_epochs=2", "trainer.limit_train_batches=3", "trainer.limit_val_batches=2", "test=false"],
    )
    metrics = train(cfg)
    events = EventAccumulator(str(tmp_path / "run" / "tensorboard"))
    events.Reload()
    clock = [(e.step, e.value) for e in events.Scalars("time/train_s") if e.step > 0]  # step 0: the HParams view
    assert [s for s, _ in clock] == [e.step for e in events.Scalars("val/acc") if e.step > 0] == [2, 5]
    assert 0 < clock[0][1] < clock[1][1] == pytest.approx(metrics["time/train_s"])


@pytest.mark.parametrize("task", ["victim", "reprogram"])
def test_bf16_mixed_precision_path_runs(task, tmp_path, cifar_npz_dir, mnist_dir, victim_file):
    """The GPU default (trainer=gpu: bf16-mixed), exercised with CPU autocast: same code path, no GPU needed."""
    overrides = ["trainer.fast_dev_run=true", "trainer.precision=bf16-mixed"]
    if task == "reprogram":
        overrides += ["experiment=reprogram_mnist", f"victim.ckpt_path={victim_file}", "data.val_size=100"]
    cfg = compose_train(tmp_path, mnist_dir if task == "reprogram" else cifar_npz_dir, overrides)
    metrics = train(cfg)
    assert 0 <= metrics["test/acc"] <= 1
    if task == "reprogram":  # the program itself stays float32: only the victim's compute is autocast
        from safetensors.torch import load_file

        assert load_file(tmp_path / "run" / "program.safetensors")["program.W"].dtype == torch.float32


REALLOCATE = """
import resource, sys, torch
from reprog.host_memory import keep_freed_host_memory
if sys.argv[1] == "keep":
    assert keep_freed_host_memory()
conv, x = torch.nn.Conv2d(3, 64, 3), torch.rand(64, 3, 64, 64)
def step():  # 63 MB of activations, and their gradients, allocated and freed each step
    conv(x).relu().sum().backward()
for _ in range(3):
    step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(3):
    step()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="tunes glibc's malloc")
@pytest.mark.slow  # kept out of the default run for its time (make test-all runs it)
def test_freed_host_memory_is_reused_without_page_faults():
    # a fresh process each, since the tuning is process-wide and cannot be undone
    faults = {
        mode: int(
            subprocess.run([sys.executable, "-c", REALLOCATE, mode], capture_output=True, text=True, check=True).stdout
        )
        for mode in ("default", "keep")
    }
    assert faults["default"] > 100_000  # glibc unmaps each step's activations and maps fresh pages for the next
    assert faults["keep"] * 4 < faults["default"]  # reused (now and then one block is still fresh)
