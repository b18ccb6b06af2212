"""The physical world: seeded differentiable transforms, EOT, the adversarial patch, programs trained under EOT."""

import json

import numpy as np
import pytest
import torch
from conftest import compose_train, write_cifar_npz
from torch import nn

from reprog.attacks import FGSM, PGD, Patch, build_attack, load_patch
from reprog.errors import UserError
from reprog.patch_predict import main as patch_predict_main
from reprog.transforms import Transformed, build_transform
from train import train


def tiny_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Linear(128, 10)
    ).eval()


@pytest.mark.parametrize("kind", ["affine", "photo", "print"])
def test_transforms_are_differentiable_seeded_and_random(kind):
    transform = build_transform(kind)
    x = torch.rand(4, 3, 32, 32, requires_grad=True)
    seeded = lambda seed: transform(x, torch.Generator().manual_seed(seed))
    out = seeded(1)
    assert out.shape == x.shape and 0 <= out.min() and out.max() <= 1
    (grad,) = torch.autograd.grad(out.sum(), x)
    assert grad.abs().sum() > 0, "gradients reach the input"
    assert torch.equal(out, seeded(1)) and not torch.equal(out, seeded(2))
    assert not torch.equal(transform(x), transform(x)), "its own generator draws afresh each call"
    assert transform.config()["kind"] == kind and build_transform(**transform.config()).config() == transform.config()


def test_eot_gradient_is_the_mean_over_n_draws_and_fgsm_and_pgd_take_it():
    model, world = tiny_model(), build_transform("affine", degrees=30)
    x, y = torch.rand(3, 3, 32, 32), torch.tensor([0, 1, 2])
    attack = PGD(model, eps=8 / 255, steps=2, seed=7, eot_samples=4, transform=world)
    grad, logits = attack.input_grad(x, y)
    views = world(x.repeat(4, 1, 1, 1), torch.Generator().manual_seed(7)).view(4, 3, 3, 32, 32)
    per_draw = list(views)
    xr = x.clone().requires_grad_(True)
    rep = world(xr.repeat(4, 1, 1, 1), torch.Generator().manual_seed(7))
    losses = nn.functional.cross_entropy(model(rep), y.repeat(4), reduction="none").view(4, 3)
    expected = torch.stack([torch.autograd.grad(losses[i].sum(), xr, retain_graph=True)[0] for i in range(4)]).mean(0)
    assert torch.allclose(grad, expected, atol=1e-6), "the mean of the n per-draw gradients"
    assert torch.allclose(logits, model(torch.stack(per_draw).flatten(0, 1)).view(4, 3, -1).mean(0), atol=1e-5)
    plain, _ = PGD(model, seed=7, transform=world).input_grad(x, y)  # no eot_samples: the transform is not sampled
    assert not torch.allclose(plain, grad)

    calls = []
    model.register_forward_hook(lambda m, i, o: calls.append(len(i[0])))
    FGSM(model, eot_samples=5, transform=world, seed=0)(x, y)
    assert calls == [15], "one batch of 5 draws of 3 images"
    adv = build_attack("pgd", model, world, eps_255=8, steps=3, eot_samples=2, seed=0)(x, y)
    assert (adv - x).abs().max() <= 8 / 255 + 1e-6


def test_bad_settings_are_one_line_errors():
    model = tiny_model()
    with pytest.raises(UserError, match="eot_samples=0: expected a whole number >= 1"):
        PGD(model, eot_samples=0)
    with pytest.raises(UserError, match=r"patch size=150: it is a percentage of the image area, so 0 < size <= 100"):
        Patch(model, size=150)
    with pytest.raises(UserError, match=r"patch size=90% is 30 px a side, 36 px at scale 1.2: larger than the 32x32"):
        Patch(model, size=90).fit(torch.rand(4, 3, 32, 32), torch.zeros(4, dtype=torch.long))
    with pytest.raises(UserError, match="unknown transform 'fisheye'; choose one of affine, none, photo, print"):
        build_transform("fisheye")
    with pytest.raises(UserError, match=r"transform=affine has no setting blur; its settings are degrees, scale"):
        build_transform("affine", blur=1)
    with pytest.raises(UserError, match=r"transform jpeg=\[0.0, 90.0\]: expected 1 <= low <= high <= 100"):
        build_transform("photo", jpeg=[0, 90])
    with pytest.raises(UserError, match="attack kind=pgd has no setting eot_draws; its settings are eps,"):
        build_attack("pgd", model, eot_draws=2)


def test_patch_learns_is_scored_by_the_attack_task_saved_and_reapplied(tmp_path, victim_file, capsys):
    data = write_cifar_npz(tmp_path / "cifar", 140, 32)
    cfg = compose_train(
        tmp_path,
        data,
        [
            "experiment=attack_patch",
            f"victim.ckpt_path={victim_file}",
            "transform=print",
            "transform.jpeg=null",
            "task.eval_draws=2",
            "trainer.limit_test_batches=1",
            "data.eval_batch_size=16",
            "task.fit_size=32",
            "task.attacks.patch.epochs=1",
            "task.attacks.patch.batch_size=16",
            "task.attacks.patch.shape=circle",
            "task.attacks.patch.size=12",
            "+task.attacks.eot_pgd={kind: pgd, steps: 2, eot_samples: 2, eps_255: [8]}",
        ],
    )
    metrics = train(cfg)
    for key in ("patch/success", "patch/transformed_success", "eot_pgd_eps8/transformed_robust_acc"):
        assert 0 <= metrics[f"test/{key}"] <= 1, key
    assert 0 <= metrics["test/transformed_clean_acc"] <= 1 and "test/patch_eps8/success" not in metrics
    run = tmp_path / "run"
    meta = json.loads((run / "patch.json").read_text())
    assert meta["patch"]["shape"] == "circle" and meta["patch"]["target"] == 0 and meta["image"] == [3, 32, 32]
    assert (run / "patch.png").is_file()
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(next((run / "tensorboard").rglob("events.out.tfevents.*")).parent)).Reload()
    assert {"fit/patch/picture", "test/patch/images"} <= set(events.Tags()["images"])

    # loaded again, it sticks the same patch onto images, seeded placements included
    from reprog.models.frozen import load_frozen_victim

    victim = load_frozen_victim(str(victim_file))
    patch = load_patch(run / "patch.safetensors", victim)
    x = torch.rand(6, 3, 32, 32)
    patch.generator = torch.Generator().manual_seed(3)
    a = patch.perturb(x, torch.empty(0))
    patch.generator = torch.Generator().manual_seed(3)
    assert torch.equal(a, patch.perturb(x, torch.empty(0))) and not torch.equal(a, x)
    changed = (a != x).any(1).float().mean((1, 2))  # about 12% of the area (a circle: pi/4 of its square)
    assert ((0.05 < changed) & (changed < 0.2)).all(), changed

    xs, _ = write_npz(tmp_path / "images.npz")
    patch_predict_main([f"patch={run / 'patch.safetensors'}", f"victim={victim_file}", f"images={xs}", "seed=1"])
    out = capsys.readouterr().out
    assert "accuracy:" in out and "patch success:" in out
    with pytest.raises(SystemExit, match="size=... is required|patch=... is required"):
        patch_predict_main([f"victim={victim_file}", f"images={xs}"])


def write_npz(path):
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 256, (10, 32, 32, 3), dtype=np.uint8), np.arange(10) % 10
    np.savez(path, x=x, y=y)
    return path, y


def test_a_program_trains_under_eot_and_is_scored_under_the_same_seeded_transform(tmp_path, mnist_dir, victim_file):
    overrides = [
        "experiment=reprogram_mnist",
        "data.val_size=100",
        "data.eval_batch_size=100",
        f"victim.ckpt_path={victim_file}",
        "transform=affine",
        "trainer.limit_train_batches=2",
        "trainer.limit_val_batches=1",
        "trainer.limit_test_batches=1",
        "logger=csv",
    ]
    metrics = train(compose_train(tmp_path / "a", mnist_dir, overrides))
    assert 0 <= metrics["test/acc"] <= 1 and 0 <= metrics["test/acc_untransformed"] <= 1
    meta = json.loads((tmp_path / "a" / "run" / "program.json").read_text())
    assert meta["transform"]["kind"] == "affine" and meta["transform"]["degrees"] == 15

    # what the module wraps the program in: fresh draws in training, the same seeded draws in every evaluation
    program = nn.Conv2d(3, 3, 1)
    reader = Transformed(program, build_transform("affine"))
    x = torch.rand(8, 3, 32, 32)
    assert not torch.equal(reader(x), reader(x)), "training draws afresh each step (EOT)"
    program.eval()
    reader.restart_draws()
    first = reader(x)
    reader.restart_draws()
    assert torch.equal(first, reader(x)), "evaluation restarts from the same seeded draws"
