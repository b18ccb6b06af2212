"""Attacks on a small trained model: the eps-ball, the targets, torchattacks agreement, the oracle."""

import pytest
import torch
import torchattacks
from conftest import gratings
from torch import nn

from reprog.attacks import (
    FGSM,
    PGD,
    AutoAttack,
    IterativeTargeted,
    LabelOracle,
    QueryBudgetExceeded,
    SubstituteAttack,
    Universal,
)
from reprog.attacks.targets import pick_targets
from reprog.errors import UserError
from reprog.models.normalize import Normalize


def small_cnn() -> nn.Module:
    return nn.Sequential(
        Normalize([0.5] * 3, [0.25] * 3),
        nn.Conv2d(3, 16, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(2),
        nn.Flatten(),
        nn.Linear(128, 10),
    )


def images(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """16-px colour gratings labelled by orientation: learnable in seconds, and not trivially robust."""
    x, y = gratings(n, seed, size=16)
    return (torch.from_numpy(x).permute(0, 3, 1, 2).float() / 255).contiguous(), torch.from_numpy(y)


@pytest.fixture(scope="module")
def trained() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """A small CNN trained on gratings, and 200 held-out images."""
    torch.manual_seed(0)
    model, (x, y) = small_cnn(), images(800, 0)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(10):
        for idx in torch.randperm(len(x)).split(64):
            opt.zero_grad()
            nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
    model.eval()
    x_test, y_test = images(200, 1)
    assert accuracy(model, x_test, y_test) > 0.7
    return model, x_test, y_test


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return (model(x).argmax(1) == y).float().mean().item()


@pytest.mark.parametrize(
    "make, norm",
    [
        (lambda m: FGSM(m, eps=8 / 255), "inf"),
        (lambda m: PGD(m, eps=8 / 255, alpha=2 / 255, steps=5), "inf"),
        (
            lambda m: PGD(m, eps=8 / 255, alpha=2 / 255, steps=5, restarts=2, early_stop=True, target="random", seed=1),
            "inf",
        ),
        (lambda m: PGD(m, eps=0.5, alpha=0.2, steps=5, norm="L2", restarts=2), 2),
        (lambda m: IterativeTargeted(m, target=3, eps=4 / 255, max_steps=10), "inf"),
    ],
)
def test_perturbations_stay_in_the_eps_ball_and_in_pixel_range(trained, make, norm):
    model, x, y = trained
    attack = make(model)
    x_adv = attack(x, y)
    radius = attack.eps
    size = (x_adv - x).flatten(1).norm(p=float(norm), dim=1)
    assert size.max() <= radius + 1e-5 and x_adv.min() >= 0 and x_adv.max() <= 1
    assert size.max() > radius / 4, "it moved"


def test_universal_perturbation_is_one_pattern_inside_the_ball(trained):
    model, x, y = trained
    attack = Universal(model, eps=8 / 255, epochs=2).fit(*images(300, 2))
    delta = attack(x, y) - x
    inside = (x > 8 / 255) & (x < 1 - 8 / 255)  # where clamping to [0, 1] cannot have cut it
    assert delta.abs().max() <= 8 / 255 + 1e-6
    assert torch.allclose(delta[inside], attack.program.perturbation().expand_as(delta)[inside], atol=1e-6)


def test_targeted_attacks_reach_their_targets(trained):
    model, x, y = trained
    x, y = x[:100], y[:100]
    for target in (3, "random", "least_likely"):
        attack = PGD(model, eps=64 / 255, alpha=6 / 255, steps=25, target=target, seed=0)
        x_adv = attack(x, y)
        with torch.no_grad():
            reached = (model(x_adv).argmax(1) == attack.last_goal)[attack.last_goal != y].float().mean()
        assert reached > 0.9, (target, reached)

    it = IterativeTargeted(model, target="least_likely", confidence=0.9, alpha=2 / 255, max_steps=100, eps=None)
    it(x[:20], y[:20])
    done = it.final_confidence >= 0.9
    assert done.float().mean() >= 0.9 and (it.steps_used > 0).all()
    assert (it.steps_used[~done] == 100).all(), "only the budget stops a sample short of the confidence"


def test_targets_random_never_true_class_least_likely_is_argmin():
    logits, labels = torch.randn(500, 10), torch.randint(0, 10, (500,))
    assert (pick_targets("random", logits, labels, torch.Generator().manual_seed(0)) != labels).all()
    assert torch.equal(pick_targets("least_likely", logits, labels), logits.argmin(1))
    assert (pick_targets(7, logits, labels) == 7).all()


def test_early_stop_and_restarts(trained):
    model, x, y = trained
    full = PGD(model, eps=16 / 255, alpha=2 / 255, steps=20, random_start=False)(x, y)
    early = PGD(model, eps=16 / 255, alpha=2 / 255, steps=20, random_start=False, early_stop=True)(x, y)
    linf = lambda a: (a - x).flatten(1).abs().amax(1)
    assert accuracy(model, early, y) <= accuracy(model, full, y) + 0.01
    assert linf(early).mean() < 0.8 * linf(full).mean(), "samples stop at their first success"

    weak = dict(eps=3 / 255, alpha=1 / 255, steps=3, seed=0)
    one, three = PGD(model, restarts=1, **weak)(x, y), PGD(model, restarts=3, **weak)(x, y)
    assert accuracy(model, three, y) <= accuracy(model, one, y)


@pytest.mark.parametrize(
    "ours, theirs",
    [
        (lambda m: FGSM(m, eps=4 / 255), lambda m: torchattacks.FGSM(m, eps=4 / 255)),
        (
            lambda m: PGD(m, eps=4 / 255, alpha=1 / 255, steps=10, random_start=False),
            lambda m: torchattacks.PGD(m, eps=4 / 255, alpha=1 / 255, steps=10, random_start=False),
        ),
        (
            lambda m: PGD(m, eps=0.3, alpha=0.05, steps=10, norm="L2", random_start=False),
            lambda m: torchattacks.PGDL2(m, eps=0.3, alpha=0.05, steps=10, random_start=False),
        ),
    ],
)
def test_robust_accuracy_matches_torchattacks_within_one_point(trained, ours, theirs):
    model, x, y = trained
    acc_ours, acc_theirs = accuracy(model, ours(model)(x, y), y), accuracy(model, theirs(model)(x, y), y)
    assert acc_ours < accuracy(model, x, y) - 0.1, "the comparison must be at a setting that bites"
    assert abs(acc_ours - acc_theirs) <= 0.01


def test_oracle_answers_labels_only_within_its_budget(trained):
    model, x, _ = trained
    oracle = LabelOracle(model, budget=250)
    labels = oracle(x.clone().requires_grad_(True))
    assert labels.dtype == torch.int64 and labels.shape == (200,) and labels.grad_fn is None
    slots = {s for cls in LabelOracle.__mro__ for s in getattr(cls, "__slots__", ())}
    assert slots and not any(isinstance(getattr(oracle, s), (nn.Module, torch.Tensor)) for s in slots)
    with pytest.raises(AttributeError):
        oracle.model = model  # no place to keep a model on it
    with pytest.raises(QueryBudgetExceeded):
        oracle(x[:51])
    assert oracle.queries == 200, "a refused query is not answered, nor counted"
    oracle(x[:50])
    assert oracle.queries == 250


def test_substitute_attack_trains_on_oracle_labels_and_transfers(trained):
    model, x, y = trained
    torch.manual_seed(0)
    attack = SubstituteAttack(
        model, small_cnn(), eps=16 / 255, seed_size=40, rounds=3, lam=0.1, epochs=5, budget=10_000
    )
    assert attack.model is not model and attack.fit_on == "val", "crafted on the substitute, fit on seed images"
    attack.fit(images(40, 3)[0])
    assert attack.queries == attack.training_set_size == 40 * 2**3  # the set doubles each round
    noise = (x + 16 / 255 * torch.randn(x.shape, generator=torch.Generator().manual_seed(0)).sign()).clamp(0, 1)
    assert accuracy(model, attack(x, y), y) < accuracy(model, noise, y) - 0.05, "transfers, unlike noise of its size"
    assert attack.stats() == {"queries": torch.tensor(320.0)}

    spent = SubstituteAttack(model, small_cnn(), seed_size=40, rounds=3, epochs=1, budget=320).fit(images(41, 3)[0])
    assert spent.queries == 320, "seed_size images are seeds, whatever it is given"
    with pytest.raises(QueryBudgetExceeded):
        spent.oracle(x[:1])
    with pytest.raises(UserError, match=r"fit_on='test': the seed images come from 'train' or 'val'"):
        SubstituteAttack(model, small_cnn(), fit_on="test")
    with pytest.raises(UserError, match=r"budget=100 is too small: seed_size=40 and rounds=3 take 320 label queries"):
        SubstituteAttack(model, small_cnn(), seed_size=40, rounds=3, budget=100)


class Quantize(nn.Module):
    """round(): a zero gradient everywhere, the textbook case of gradient masking."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.round(x * 4) / 4


def test_autoattack_sees_through_gradient_masking_that_fools_pgd():
    g = torch.Generator().manual_seed(0)
    y = torch.arange(200) % 10
    x = (torch.rand(10, 3, 8, 8, generator=g)[y] * 0.25 + 0.75 * torch.rand(200, 3, 8, 8, generator=g)).clamp(0, 1)
    torch.manual_seed(0)
    model = nn.Sequential(Quantize(), nn.Flatten(), nn.Linear(192, 10))
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(200):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    x, y = x[:30], y[:30]
    assert accuracy(model.eval(), x, y) == 1.0
    pgd = accuracy(model, PGD(model, eps=0.15, alpha=0.025, steps=10)(x, y), y)
    auto = AutoAttack(model, eps=0.15, n_classes=10)
    aa = accuracy(model, auto(x, y), y)
    assert pgd > aa + 0.5, (pgd, aa)
    survivors = {k: v.mean().item() for k, v in auto.stats().items()}
    assert list(survivors) == [
        "robust_after_apgd_ce",
        "robust_after_apgd_t",
        "robust_after_fab_t",
        "robust_after_square",
    ]
    assert survivors["robust_after_apgd_ce"] == 1.0 and survivors["robust_after_square"] == aa, "Square, gradient-free"
    for bad, match in [
        ({"version": "fast"}, "version='fast': choose one of standard, plus, rand"),
        ({"norm": "L1"}, "norm='L1': choose one of Linf, L2"),
    ]:
        with pytest.raises(UserError, match=match):
            AutoAttack(model, **bad)


def test_momentum_pgd_is_torchattacks_mifgsm(trained):
    model, x, y = trained
    ours = PGD(model, eps=8 / 255, alpha=2 / 255, steps=5, momentum=1.0, random_start=False)(x, y)
    theirs = torchattacks.MIFGSM(model, eps=8 / 255, alpha=2 / 255, steps=5, decay=1.0)(x, y)
    assert (ours - theirs).abs().max() < 1e-5


def test_reservoir_sampling_grows_queries_linearly_and_the_curve_records_them(trained):
    model, _, _ = trained
    doubling = SubstituteAttack(model, small_cnn(), seed_size=10, rounds=5, epochs=1, lam_period=2)
    reservoir = SubstituteAttack(
        model, small_cnn(), seed_size=10, rounds=5, epochs=1, reservoir=4, reservoir_after=2, probe_size=20
    )
    assert doubling.queries_needed(10, 5) == 10 * 2**5 and reservoir.queries_needed(10, 5) == 10 + 10 + 20 + 3 * 4
    assert reservoir.fit_size == 30, "seeds and probe images"
    reservoir.fit(images(30, 5)[0])
    assert reservoir.queries == reservoir.training_set_size == 52, "the probe's referee labels are not the attacker's"
    assert [p["queries"] for p in reservoir.curve] == [10, 20, 40, 44, 48, 52]
    assert all(0 <= p["agreement"] <= 1 and 0 <= p["transfer"] <= 1 for p in reservoir.curve)
