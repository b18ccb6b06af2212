"""EOT for the attacks beyond `input_grad`: the universal perturbation, AutoAttack and the substitute attack."""

from pathlib import Path
from typing import Any, cast

import pytest
import torch
from conftest import compose_train, write_cifar_npz
from hydra.utils import instantiate
from torch import nn

from reprog.attacks import AutoAttack, SubstituteAttack, Universal, build_attack
from reprog.errors import UserError
from reprog.transforms import Transform
from reprog.transforms.transform import Params, uniform


class Counting(Transform):
    """A random brightness shift per image that records how many images each draw was for."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__(seed)
        self.drawn: list[int] = []

    def sample(self, shape: torch.Size, generator: torch.Generator) -> Params:
        self.drawn.append(shape[0])
        return {"shift": uniform(shape[0], -0.2, 0.2, generator)}

    def apply_params(self, x: torch.Tensor, params: Params) -> torch.Tensor:
        return x + params["shift"].view(-1, 1, 1, 1)


def tiny_model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Linear(128, 10)
    ).eval()


def batch(n: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """`n` 16-px images, labelled as the tiny model labels them (so every image is one to attack)."""
    x = torch.rand(n, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        return x, tiny_model()(x).argmax(1)


def fit_universal(eot_samples: int | None) -> tuple[torch.Tensor, Counting]:
    world, (x, y) = Counting(), batch()
    attack = Universal(tiny_model(), epochs=2, batch_size=4, lr=0.1, seed=3, eot_samples=eot_samples, transform=world)
    attack.fit(x, y)
    assert attack.program is not None
    return attack.program.W.detach(), world


def test_universal_learns_through_n_draws_per_step_and_is_seeded() -> None:
    w, world = fit_universal(3)
    assert world.drawn == [3 * 4] * 4, "2 epochs of 2 batches of 4 images, each seen through 3 draws"
    assert torch.equal(w, fit_universal(3)[0]), "the same seed, the same draws and perturbation"
    plain, unused = fit_universal(None)
    assert unused.drawn == [] and not torch.equal(w, plain), "without eot_samples the transform is not sampled"


def autoattack(eot_samples: int | None, world: Transform | None) -> AutoAttack:
    attack = build_attack(
        "autoattack", tiny_model(), world, eps_255=8, steps=3, square_queries=5, eot_samples=eot_samples
    )
    return cast(AutoAttack, attack)


def test_autoattack_apgd_stages_attack_through_fresh_draws_fab_and_square_do_not() -> None:
    x, y, world = *batch(), Counting()
    attack = autoattack(2, world)
    torch.manual_seed(0)
    adv = attack(x, y)
    apgd_ce, apgd_t, fab_t, square = attack.stages.values()
    assert apgd_ce.eot_iter == apgd_t.eot_iter == 2 and apgd_ce.model is attack.world is apgd_t.model
    assert fab_t.model is square.model is attack.model and not hasattr(fab_t, "eot_iter")
    assert world.drawn and (adv - x).abs().max() <= 8 / 255 + 1e-6 and not attack.model.training
    world2 = Counting()
    again = autoattack(2, world2)
    torch.manual_seed(0)
    assert torch.equal(again(x, y), adv) and world2.drawn == world.drawn, "seeded: the same draws, the same images"
    unused = Counting()
    autoattack(None, unused)(x, y)
    assert unused.drawn == [], "without eot_samples the transform is not sampled"


def substitute(world: Transform, **settings: Any) -> SubstituteAttack:
    x, _ = batch()
    attack = build_attack(
        "substitute", tiny_model(), world, substitute=tiny_model(1), seed_size=8, rounds=0, epochs=1, **settings
    )
    return cast(SubstituteAttack, attack).fit(x)


def test_substitute_crafts_on_the_substitute_through_the_transform() -> None:
    x, y = batch()
    world = Counting()
    attack = substitute(world, craft="pgd", craft_settings={"steps": 2}, eot_samples=3)
    assert world.drawn == [], "the substitute trains without the transform"
    adv = attack(x, y)
    assert attack.attack.eot_samples == 3 and attack.attack.transform is world
    assert world.drawn == [3 * 8] * 2, "PGD's 2 steps on the substitute, each through 3 draws of 8 images"
    assert torch.equal(substitute(Counting(), craft="pgd", craft_settings={"steps": 2}, eot_samples=3)(x, y), adv)
    plain = Counting()
    substitute(plain, craft="pgd", craft_settings={"steps": 2})(x, y)
    assert plain.drawn == []
    with pytest.raises(UserError, match=r"substitute eot_samples=3 and craft_settings.eot_samples=2 differ"):
        substitute(world, craft="pgd", craft_settings={"eot_samples": 2}, eot_samples=3)


@pytest.mark.parametrize("kind", ["universal", "autoattack", "substitute"])
@pytest.mark.parametrize("bad", [0, True, 2.5])
def test_bad_eot_samples_is_one_line(kind: str, bad: object) -> None:
    extra = {"substitute": tiny_model(1)} if kind == "substitute" else {}
    with pytest.raises(UserError, match=rf"^eot_samples={bad!r}: expected a whole number >= 1[^\n]*$"):
        build_attack(kind, tiny_model(), Counting(), eot_samples=bad, **extra)


def test_the_attack_task_sets_eot_samples_on_them_from_the_config(tmp_path: Path, victim_file: Path) -> None:
    cfg = compose_train(
        tmp_path,
        write_cifar_npz(tmp_path / "cifar", 20, 10),
        [
            "experiment=attack_eot",
            f"victim.ckpt_path={victim_file}",
            "+task.attacks.universal={kind: universal, eot_samples: 2}",
            "+task.attacks.autoattack={kind: autoattack, eot_samples: 3}",
            "+task.attacks.substitute={kind: substitute, eot_samples: 4, craft: pgd,"
            " substitute: {arch: resnet20, num_classes: 10, mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25]}}",
        ],
    )
    module = instantiate(cfg.task)
    runs = {k: module.runs[f"{k}_eps8"] for k in ("universal", "autoattack", "substitute")}
    assert module.transform is not None and module.transform.kind == "photo"
    assert [a.eot_samples for a in runs.values()] == [2, 3, 4] and all(a.eot for a in runs.values())
    assert all(a.transform is module.transform for a in runs.values())
    assert runs["substitute"].attack.eot_samples == 4


def test_an_attacks_world_comes_from_the_run_not_from_its_settings() -> None:
    """The transform is handed to the attack when it is built, so no attack sees a world set after the fact."""
    world = Counting()
    assert build_attack("pgd", tiny_model(), world, eps_255=8).transform is world
    with pytest.raises(UserError, match="transform="):
        build_attack("pgd", tiny_model(), None, eps_255=8, transform=world)
