"""The robustness evaluation task and adversarial training, through train.py on synthetic CIFAR files."""

import json

import pytest
import torch
from conftest import AUTOATTACK_SMOKE, compose_train, write_cifar_npz
from hydra.utils import instantiate

from reprog.attacks import PGD
from train import train

TINY_ATTACKS = [
    "trainer.limit_test_batches=1",
    "data.eval_batch_size=16",
    "task.fit_size=32",
    "task.attacks.pgd10.steps=2",
    "task.attacks.pgd_l2.steps=2",
    "task.attacks.iterative_targeted.max_steps=3",
    "task.attacks.universal.epochs=1",
    "task.attacks.universal_to_0.epochs=1",
    "task.attacks.substitute.seed_size=16",
    "task.attacks.substitute.rounds=1",
    "task.attacks.substitute.epochs=1",
    "+task.attacks.substitute.probe_size=8",
]


def test_attack_task_reports_every_attack_and_eps(tmp_path, victim_file):
    data = write_cifar_npz(tmp_path / "cifar", 200, 100)
    cfg = compose_train(tmp_path, data, ["experiment=attack_all", f"victim.ckpt_path={victim_file}", *TINY_ATTACKS])
    metrics = train(cfg)

    runs = [
        "pgd10_eps2",
        "pgd10_eps4",
        "pgd10_eps8",
        "fgsm_eps8",
        "pgd_l2_eps0p25",
        "pgd_l2_eps0p5",
        "iterative_targeted_eps16",
        "universal_eps8",
        "universal_eps16",
        "universal_to_0_eps16",
        "substitute_eps8",
        "substitute_eps16",
    ]
    for run in runs:
        assert 0 <= metrics[f"test/{run}/robust_acc"] <= 1
    assert metrics["test/pgd10_eps8/linf"] <= 8 / 255 + 1e-6 and metrics["test/pgd_l2_eps0p5/l2"] <= 0.5 + 1e-5
    assert metrics["test/universal_eps16/linf"] <= 16 / 255 + 1e-6
    assert metrics["test/substitute_eps8/queries"] == 16 * 2  # seed set + one round of augmentation
    assert 0 <= metrics["test/substitute_eps8/agreement"] <= 1 and "test/pgd10_eps8/agreement" not in metrics
    assert metrics["test/pgd10_eps8/robust_acc"] <= metrics["test/clean_acc"]

    run_dir = tmp_path / "run"
    summary = json.loads((run_dir / "metrics.json").read_text())
    assert summary["status"] == "completed" and "test/fgsm_eps8/success" in summary["metrics"]
    assert (run_dir / "adversarial_examples.png").stat().st_size > 10_000
    curve = json.loads((run_dir / "substitute_eps8_curve.json").read_text())
    assert [row["queries"] for row in curve] == [16, 32] and (run_dir / "substitute_eps8_curve.png").exists()
    # the trained substitute is a victim file: a stand-in that other tasks (reprogramming) read white-box
    from reprog.models.frozen import load_frozen_victim

    substitute = load_frozen_victim(str(run_dir / "substitute_eps8.safetensors"))
    assert substitute.spec["arch"] == "resnet20" and substitute(torch.rand(2, 3, 32, 32)).shape == (2, 10)
    assert substitute.sha256 != load_frozen_victim(str(victim_file)).sha256
    assert not (run_dir / "checkpoints").exists(), "nothing is trained"
    assert list((run_dir / "tensorboard").rglob("events.out.tfevents.*"))


@pytest.mark.parametrize(
    "kind, steps",
    [("pgd", 7), ("fgsm_rs", 1), pytest.param("grad_align", 1, marks=pytest.mark.slow)],  # fgsm_rs + a penalty
)
def test_adversarial_training_trains_on_its_own_adversarial_examples(tmp_path, cifar_npz_dir, monkeypatch, kind, steps):
    cfg = compose_train(tmp_path, cifar_npz_dir, [f"adv_training={kind}", "trainer.fast_dev_run=2"])
    adversary = instantiate(cfg.task).recipe.adversary
    assert isinstance(adversary, PGD) and adversary.steps == steps and adversary.eps == pytest.approx(8 / 255)

    calls = []
    perturb = PGD.perturb
    monkeypatch.setattr(
        PGD, "perturb", lambda self, x, goal: calls.append(self.model.training) or perturb(self, x, goal)
    )
    metrics = train(cfg)
    assert calls == [True, True, False], "one attack per training step, in train mode; PGD on one val batch, in eval"
    assert torch.isfinite(torch.tensor(metrics["train/loss"]))
    assert 0 <= metrics["val/pgd_acc"] <= 1 and metrics["val/catastrophic_overfitting"] == 0.0
    assert ("train/grad_align" in metrics) == (kind == "grad_align")


def test_grad_align_is_zero_where_the_loss_is_linear_in_the_input_and_trains_the_weights_elsewhere():
    from reprog.adv_training.alignment import grad_align

    x, y = torch.rand(8, 3, 8, 8), torch.arange(8) % 10
    torch.manual_seed(0)
    linear = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(192, 10))
    assert grad_align(linear, x, y, 8 / 255).item() < 1e-3, "only the softmax turns the gradient, barely in 8/255"
    curved = torch.nn.Sequential(
        torch.nn.Conv2d(3, 16, 3), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(576, 10)
    )
    alignment = grad_align(curved, x, y, 64 / 255)
    alignment.backward()
    assert 0 < alignment.item() <= 2 and all(p.grad is not None and p.grad.abs().sum() > 0 for p in curved.parameters())


def test_catastrophic_overfitting_is_a_collapse_after_real_robustness():
    from reprog.modules.victim import catastrophic_overfitting

    assert catastrophic_overfitting(0.01, best=0.35, floor=0.1)
    assert not catastrophic_overfitting(0.30, best=0.35, floor=0.1), "a small dip is not a collapse"
    assert not catastrophic_overfitting(0.05, best=0.12, floor=0.1), "never robust: nothing collapsed"


def test_autoattack_reports_its_breakdown_beside_pgd_and_the_masking_check(tmp_path, victim_file, caplog):
    data = write_cifar_npz(tmp_path / "cifar", 200, 100)
    cfg = compose_train(
        tmp_path,
        data,
        [
            "experiment=attack_autoattack",
            f"victim.ckpt_path={victim_file}",
            *AUTOATTACK_SMOKE,
        ],
    )
    with caplog.at_level("INFO", logger="reprog"):
        metrics = train(cfg)
    stages = [metrics[f"test/autoattack_eps8/robust_after_{s}"] for s in ("apgd_ce", "apgd_t", "fab_t", "square")]
    assert stages == sorted(stages, reverse=True) and stages[-1] == metrics["test/autoattack_eps8/robust_acc"]
    assert stages[0] <= metrics["test/clean_acc"] and metrics["test/autoattack_eps8/linf"] <= 8 / 255 + 1e-6
    gap = metrics["test/pgd10_eps8/robust_acc"] - metrics["test/autoattack_eps8/robust_acc"]
    assert metrics["test/pgd10_eps8/masking_gap"] == pytest.approx(gap)
    assert "gradient-masking check: pgd10_eps8 robust accuracy - AutoAttack's" in caplog.text


def test_the_robust_airbench_recipe_is_wong_et_al_with_rice_et_al_early_stopping(tmp_path, cifar_npz_dir):
    cfg = compose_train(tmp_path, cifar_npz_dir, ["experiment=victim_airbench_adv"])
    module = instantiate(cfg.task)
    adversary, val_adversary = module.recipe.adversary, module.recipe.val_adversary
    assert (adversary.steps, adversary.random_start) == (1, True)
    assert adversary.alpha == pytest.approx(1.25 * adversary.eps) and val_adversary.steps == 10
    assert cfg.callbacks.model_checkpoint.monitor == "val/pgd_acc" and cfg.scheduler._target_.endswith("onecycle")
