"""Reprogramming end to end, on synthetic MNIST files read by the real torchvision loader."""

import hashlib
import json
import subprocess
import sys

import pytest
import torch
from conftest import ROOT, compose_train, gratings, write_cifar_npz, write_mnist
from torchvision.datasets import MNIST

from reprog import load_program
from reprog.data.mnist import PaddedMNISTDataModule
from reprog.errors import UserError
from reprog.models.export import load_victim
from reprog.predict import main as predict_main
from train import train

REPROGRAM = ["experiment=reprogram_mnist", "data.val_size=100", "data.eval_batch_size=100"]


def test_mnist_loader_reads_idx_files_resizes_and_places(mnist_dir):
    dm = PaddedMNISTDataModule(str(mnist_dir), download=False, digit_size=13, val_size=100, batch_size=16)
    dm.setup()
    assert (len(dm.train_set), len(dm.val_set), len(dm.test_set)) == (500, 100, 200)
    x, y = dm.preprocess(next(iter(dm.train_dataloader())), train=True)
    assert x.shape == (16, 3, 32, 32) and y.dtype == torch.int64
    assert x[:, :, dm.placement.mask().bool()].eq(0).all() and x.max() > 0.5


def test_gz_originals_are_extracted_into_the_cache_not_the_data_dir(tmp_path, monkeypatch):
    data = write_mnist(tmp_path / "shared", gz=True)
    raw = data / "MNIST" / "raw"
    md5 = {f.name: hashlib.md5(f.read_bytes()).hexdigest() for f in raw.iterdir()}
    monkeypatch.setattr(MNIST, "resources", [(name, md5[name]) for name, _ in MNIST.resources])
    before = sorted(p.name for p in raw.iterdir())
    dm = PaddedMNISTDataModule(str(data), cache_dir=str(tmp_path / "cache"), download=False, val_size=100)
    dm.setup()
    assert len(dm.test_set) == 200 and sorted(p.name for p in raw.iterdir()) == before
    assert (tmp_path / "cache" / "MNIST" / "raw" / "t10k-images-idx3-ubyte").is_file()


def test_missing_mnist_names_the_files_and_the_download_option(tmp_path):
    with pytest.raises(UserError, match=r"no MNIST found.*ubyte.*data.download=true"):
        PaddedMNISTDataModule(str(tmp_path), download=False).prepare_data()


def test_only_the_program_learns_and_the_victim_stays_bit_identical(tmp_path, mnist_dir, victim_file):
    cfg = compose_train(
        tmp_path,
        mnist_dir,
        [
            *REPROGRAM,
            f"victim.ckpt_path={victim_file}",
            "trainer.max_epochs=2",
            "trainer.limit_train_batches=3",
            "trainer.limit_val_batches=1",
            "trainer.limit_test_batches=1",
        ],
    )
    before, _ = load_victim(victim_file)
    from hydra.utils import instantiate

    datamodule, module = instantiate(cfg.data), instantiate(cfg.task)
    trainer = instantiate(cfg.trainer, logger=False, callbacks=[], enable_checkpointing=False)
    trainer.fit(module, datamodule=datamodule)
    assert not module.victim.training and not module.victim.model[1].stem[1].training, "BN held in eval mode"
    for (name, a), b in zip(before.state_dict().items(), module.victim.model.state_dict().values()):
        assert torch.equal(a, b), f"{name} changed"  # BN running stats and num_batches_tracked included
    assert module.program.W.abs().sum() > 0, "the program moved"

    x, y = datamodule.preprocess(next(iter(datamodule.train_dataloader())), train=True)
    module.criterion(module(x), y).backward()
    assert all(p.grad is None and not p.requires_grad for p in module.victim.parameters())
    assert module.program.W.grad.abs().sum() > 0


@pytest.fixture(scope="module")
def grating_task(tmp_path_factory):
    """A resnet20 victim trained by train.py on colour gratings, and grey gratings as the target 'digits'."""
    tmp = tmp_path_factory.mktemp("gratings")
    cfg = compose_train(
        tmp / "victim",
        write_cifar_npz(tmp / "cifar", 1000, 200, images=gratings),
        ["trainer.max_epochs=2", "logger=csv", "test=false"],
    )
    train(cfg)
    grey = lambda n, seed: (gratings(n, seed + 5, size=28)[0][..., 0], gratings(n, seed + 5, size=28)[1])
    return tmp / "victim" / "run" / "victim.safetensors", write_mnist(tmp / "target", images=grey)


def test_reprogramming_lifts_accuracy_far_above_chance_and_exports_the_program(tmp_path, grating_task):
    victim_file, target_dir = grating_task
    cfg = compose_train(
        tmp_path,
        target_dir,
        [
            *REPROGRAM,
            f"victim.ckpt_path={victim_file}",
            "data.batch_size=32",
            "trainer.max_epochs=6",
            "data.digit_size=20",
        ],
    )
    start = PaddedMNISTDataModule(str(target_dir), download=False, digit_size=20)  # accuracy with P = 0
    x, y = start.preprocess(start.load_split(train=False), train=False)
    victim, _ = load_victim(victim_file)
    with torch.no_grad():
        acc_without_program = (victim.eval()(x)[:, :10].argmax(1) == y).float().mean().item()

    metrics = train(cfg)
    assert metrics["test/acc"] > 0.45 and metrics["test/acc"] > acc_without_program + 0.1, (
        metrics,
        acc_without_program,
    )
    run = tmp_path / "run"
    assert list((run / "tensorboard").glob("events.*")) and (run / "program.safetensors").is_file()
    meta = json.loads((run / "program.json").read_text())
    assert meta["program"]["placement"] == {"canvas": 32, "size": 20, "top": 6, "left": 6}
    assert meta["victim"]["sha256"] == json.loads(victim_file.with_suffix(".json").read_text())["sha256"]

    # the exported program reproduces the run's test accuracy through `python -m reprog.predict`
    loaded = load_program(run / "program.safetensors")
    assert loaded.program.W.shape == (3, 32, 32) and loaded.label_map.kind == "first_k"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "reprog.predict",
            f"program={run / 'program.safetensors'}",
            f"victim={victim_file}",
            "images=mnist",
            f"data_dir={target_dir}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert f"accuracy: {metrics['test/acc']:.4f}" in result.stdout


def test_a_program_learns_through_score_queries_alone_stops_at_its_budget_and_warm_starts_another(
    tmp_path, grating_task, caplog
):
    victim_file, target_dir = grating_task
    start = PaddedMNISTDataModule(str(target_dir), download=False, digit_size=20)  # accuracy with P = 0
    x, y = start.preprocess(start.load_split(train=False), train=False)
    with torch.no_grad():
        acc_without_program = (load_victim(victim_file)[0].eval()(x)[:, :10].argmax(1) == y).float().mean().item()
    black_box = [
        *REPROGRAM,
        f"victim.ckpt_path={victim_file}",
        "data.batch_size=32",
        "data.digit_size=20",
        "logger=csv",
        "oracle=score",
        "oracle.q=5",
        "oracle.grid=null",
        "optimizer.lr=0.1",
    ]

    # 480 training images a epoch at 32 x (5 + 1) queries each: 2,880 an epoch; 21,500 stops in the eighth
    metrics = train(
        compose_train(tmp_path / "cold", target_dir, [*black_box, "trainer.max_epochs=8", "oracle.budget=21500"])
    )
    assert metrics["train/queries"] == 7 * 2880 + 6 * 192
    assert "query budget reached: 21312 of 21500 queries used" in caplog.text
    record = json.loads((tmp_path / "cold" / "run" / "metrics.json").read_text())
    assert record["stopped"] == "the query budget: 21312 of 21500 queries used", record
    assert metrics["test/acc"] > acc_without_program + 0.03, (metrics, acc_without_program)
    first = tmp_path / "cold" / "run" / "program.safetensors"
    assert load_program(first).program.W.abs().sum() > 0, "the program learned and was exported"

    # a budget spent within the first epoch, before any validation: the program is still measured
    early = train(compose_train(tmp_path / "early", target_dir, [*black_box, "oracle.budget=600", "test=false"]))
    assert early["train/queries"] == 576 and 0 <= early["val/acc_best"] <= 1, early

    # a warm start from that program, with a budget too small for one step, is refused before it trains nothing
    with pytest.raises(UserError, match=r"oracle.budget=100 cannot pay for one training step at data.batch_size=32"):
        train(
            compose_train(
                tmp_path / "warm",
                target_dir,
                [*black_box, f"task.init_program={first}", "oracle.grid=4", "oracle.budget=100"],
            )
        )
    assert not (tmp_path / "warm" / "run" / "program.safetensors").exists()


def test_a_program_is_refused_by_another_victim(tmp_path, mnist_dir, victim_file, capsys):
    cfg = compose_train(
        tmp_path, mnist_dir, [*REPROGRAM, f"victim.ckpt_path={victim_file}", "trainer.fast_dev_run=true"]
    )
    train(cfg)
    other = tmp_path / "other.safetensors"
    model, spec = load_victim(victim_file)
    torch.nn.init.zeros_(model[1].head[2].bias.data.add_(1.0))
    from reprog.models.export import save_victim

    save_victim(model, spec, other)
    with pytest.raises(SystemExit, match="was made for victim sha256"):
        predict_main(
            [
                f"program={tmp_path / 'run' / 'program.safetensors'}",
                f"victim={other}",
                "images=mnist",
                f"data_dir={mnist_dir}",
            ]
        )


def test_missing_victim_checkpoint_says_how_to_train_one(tmp_path, mnist_dir):
    cfg = compose_train(
        tmp_path, mnist_dir, [*REPROGRAM, f"victim.ckpt_path={tmp_path}/nope.ckpt", "trainer.fast_dev_run=true"]
    )
    with pytest.raises(Exception) as info:
        train(cfg)
    from reprog.cli import one_line

    assert "no victim checkpoint at" in one_line(info.value) and "experiment=victim_cifar10" in one_line(info.value)


def test_counting_squares_labels_are_the_number_of_squares():
    from reprog.data.counting import CountingDataModule, counting_squares

    x, y = counting_squares(200, grid=7, square=4, seed=3)
    assert x.shape == (200, 1, 28, 28) and set(y.tolist()) == set(range(10))
    cells = x[:, 0, ::4, ::4] > 0  # one pixel per grid cell
    assert torch.equal(cells.sum((1, 2)), y + 1)
    dm = CountingDataModule(train_size=300, test_size=50, val_size=50, digit_size=14, batch_size=8)
    dm.setup()
    xb, _ = dm.preprocess(next(iter(dm.train_dataloader())), train=True)
    assert xb.shape == (8, 3, 32, 32) and xb[:, :, dm.placement.mask().bool()].eq(0).all()


def test_fashion_mnist_reads_its_own_folder(tmp_path):
    from reprog.data.mnist import PaddedFashionMNISTDataModule

    data = write_mnist(tmp_path / "data", name="FashionMNIST")
    dm = PaddedFashionMNISTDataModule(str(data), download=False, val_size=100)
    dm.setup()
    assert len(dm.test_set) == 200
    with pytest.raises(UserError, match="no FashionMNIST found"):
        PaddedFashionMNISTDataModule(str(tmp_path / "empty"), download=False).prepare_data()


def test_frequency_mapping_is_counted_before_training_and_saved(tmp_path, mnist_dir, victim_file):
    cfg = compose_train(
        tmp_path,
        mnist_dir,
        [
            *REPROGRAM,
            f"victim.ckpt_path={victim_file}",
            "trainer.fast_dev_run=true",
            "mapping=frequency",
            "mapping.batches=3",
        ],
    )
    train(cfg)
    loaded = load_program(tmp_path / "run" / "program.safetensors")
    assert loaded.label_map.kind == "frequency" and loaded.label_map.index.flatten().unique().numel() == 10


@pytest.mark.parametrize("mapping", ["blm", "linear"])  # a map fit from data each epoch, a map trained by gradient
def test_label_maps_are_refit_or_trained_and_exported_exactly(tmp_path, mnist_dir, victim_file, mapping, monkeypatch):
    from reprog.modules.reprogram import ReprogramModule

    fits = []
    real_fit = ReprogramModule.fit_label_maps
    monkeypatch.setattr(
        ReprogramModule, "fit_label_maps", lambda self, due: (fits.append(self.current_epoch), real_fit(self, due))
    )
    cfg = compose_train(
        tmp_path,
        mnist_dir,
        [
            *REPROGRAM,
            f"victim.ckpt_path={victim_file}",
            f"mapping={mapping}",
            "trainer.max_epochs=2",
            "trainer.limit_train_batches=2",
            "trainer.limit_val_batches=1",
            "trainer.limit_test_batches=0",
        ],
    )
    train(cfg)
    assert fits == ([] if mapping == "linear" else [0, 1]), "maps that learn from data are refit every epoch"
    loaded = load_program(tmp_path / "run" / "program.safetensors")
    trained = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    for name, tensor in loaded.label_map.state_dict().items():
        assert torch.equal(tensor, trained[f"bank.label_maps.0.{name}"]), name
    if mapping == "linear":
        assert not torch.equal(loaded.label_map.linear.weight, torch.eye(10)), "the linear map learned"


def test_scale_experiment_learns_a_per_pixel_scale_and_exports_it(tmp_path, mnist_dir, victim_file):
    cfg = compose_train(
        tmp_path,
        mnist_dir,
        [
            "experiment=reprogram_mnist_scale",
            "data.val_size=100",
            f"victim.ckpt_path={victim_file}",
            "trainer.fast_dev_run=true",
        ],
    )
    train(cfg)
    loaded = load_program(tmp_path / "run" / "program.safetensors")
    assert loaded.program.kind == "scale" and loaded.program.scale == "pixel"
    assert loaded.program.a.shape == (3, 32, 32) and loaded.program.a.ne(1.0).any(), "a learned, pixel by pixel"


def test_smm_on_a_64_px_canvas_trains_exports_and_predicts(tmp_path, mnist_dir, victim_file, capsys):
    cfg = compose_train(
        tmp_path,
        mnist_dir,
        [
            *REPROGRAM,
            f"victim.ckpt_path={victim_file}",
            "program=smm",
            "data.canvas_size=64",
            "data.digit_size=28",
            "trainer.fast_dev_run=true",
        ],
    )
    train(cfg)
    loaded = load_program(tmp_path / "run" / "program.safetensors")
    assert loaded.program.kind == "smm" and loaded.program.placement.canvas == 64
    assert loaded.program.f_mask[0].weight.ne(0).all() and loaded.program.W.abs().sum() > 0
    predict_main(
        [
            f"program={tmp_path / 'run' / 'program.safetensors'}",
            f"victim={victim_file}",
            "images=mnist",
            f"data_dir={mnist_dir}",
            f"cache_dir={tmp_path / 'cache'}",
        ]
    )
    assert "accuracy" in capsys.readouterr().out
