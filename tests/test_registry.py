"""One plug-in shape: every kind is found in a `Registry`, its settings are its signature, and it checks their values
itself where it is built, in one line."""

import pytest
import torch
from torch import nn

from reprog.adv_training import build_recipe
from reprog.artifacts import save_artifact
from reprog.attacks import build_attack
from reprog.errors import UserError
from reprog.label_mapping import build_label_map
from reprog.models import build_model
from reprog.placement import Placement
from reprog.program import build_program
from reprog.program_io import load_program, save_program
from reprog.registry import Registry
from reprog.transforms import build_transform

STATS = {"mean": [0.5] * 3, "std": [0.25] * 3}


def tiny_model() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 10)).eval()


def test_a_registry_finds_members_by_kind_and_refuses_what_their_signature_does_not_take():
    shapes: Registry[object] = Registry("shape.kind")

    @shapes.register("box")
    class Box:
        def __init__(self, size: int, depth: int, colour: str = "red") -> None:
            self.size, self.depth, self.colour = size, depth, colour

    @shapes.register("cube")
    class Cube(Box):
        def __init__(self, size: int, **settings: object) -> None:  # the base's settings pass through
            super().__init__(size, **settings)

    assert Box.kind == "box" and Cube.kind == "cube" and sorted(shapes) == ["box", "cube"]
    assert shapes.build("cube", 2, depth=2, colour="blue").colour == "blue"
    with pytest.raises(UserError, match="^unknown shape.kind 'ball'; choose one of box, cube$"):
        shapes.build("ball", 1)
    with pytest.raises(UserError, match="^shape.kind=box has no setting hue; its settings are depth, colour$"):
        shapes.build("box", 1, depth=1, hue=3)
    with pytest.raises(UserError, match="^shape.kind=cube needs the setting depth$"):
        shapes.build("cube", 1)
    with pytest.raises(ValueError, match="registered twice"):
        shapes.register("box")(Cube)


def test_adding_a_member_is_adding_its_file(tmp_path, monkeypatch):
    package = tmp_path / "plugins"
    package.mkdir()
    init = "from reprog.registry import Registry, import_members\nTOOLS = Registry('tool')\nimport_members(__name__)\n"
    (package / "__init__.py").write_text(init)
    (package / "saw.py").write_text("from plugins import TOOLS\n\n@TOOLS.register('saw')\nclass Saw:\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import plugins

    assert list(plugins.TOOLS) == ["saw"] and plugins.TOOLS.build("saw").kind == "saw"


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda m: build_attack("pgd", m, steps=0), "pgd steps=0: expected an integer >= 1"),
        (lambda m: build_attack("pgd", m, eps_255=-4), "pgd eps=-0.0156863: expected a number >= 0"),
        (lambda m: build_attack("substitute", m, substitute={}, budget=-3), "substitute budget=-3: expected"),
        (lambda m: build_attack("substitute", m, substitute={}, probe_size=-1), "substitute probe_size=-1"),
        (lambda m: build_attack("patch", m, size=120), "patch size=120: it is a percentage of the image area"),
        (lambda m: build_attack("pgd", m, eot_samples=0), "eot_samples=0: expected a whole number >= 1"),
        (lambda m: build_recipe(m, "pgd", steps=0), "adv_training=pgd steps=0: expected an integer >= 1"),
        (lambda m: build_recipe(m, "fgsm_rs", val_batches=0), "adv_training=fgsm_rs val_batches=0: expected"),
        (lambda m: build_recipe(m, "grad_align", attack="pgd"), "adv_training.kind=grad_align has no setting attack"),
        (lambda m: build_model("airbench", 10, **STATS, whiten_eps=0), "model=airbench whiten_eps=0: expected"),
        (lambda m: build_label_map("many_to_one", 20, 10, k=0), "mapping=many_to_one k=0: expected an integer >= 1"),
        (lambda m: build_label_map("bayesian", 20, 10, laplace=-1), "mapping=bayesian laplace=-1: expected a number"),
        (lambda m: build_program("smm", Placement(32, 24), mask_width=0), "program=smm mask_width=0: expected"),
        (lambda m: build_program("masked", Placement(32, 24), lam=1.0), "program.kind=masked has no setting lam"),
        (lambda m: build_transform("affine", seed=-1), "transform seed=-1: expected an integer >= 0"),
        (lambda m: build_transform("none", degrees=3), "transform=none has no setting degrees; its settings are none"),
    ],
)
def test_every_plug_in_checks_its_own_settings_where_it_is_built_in_one_line(build, message):
    with pytest.raises(UserError) as info:
        build(tiny_model())
    assert message in str(info.value) and "\n" not in str(info.value)


def test_the_recipes_differ_in_their_papers_defaults_and_any_recipe_takes_grad_align():
    model = tiny_model()
    pgd, fast, align = (build_recipe(model, kind) for kind in ("pgd", "fgsm_rs", "grad_align"))
    assert (pgd.adversary.steps, fast.adversary.steps, align.adversary.steps) == (7, 1, 1)
    assert fast.adversary.alpha == pytest.approx(10 / 255) and not align.adversary.random_start
    assert not pgd.adversary.eval_mode and pgd.val_adversary.steps == 10 and build_recipe(model) is None
    x, y = torch.rand(4, 3, 8, 8), torch.arange(4)
    assert pgd.penalties(model, x, y) == {} and set(align.penalties(model, x, y)) == {"grad_align"}
    assert build_recipe(model, "fgsm_rs", grad_align=0.5).penalties(model, x, y)["grad_align"][0] == 0.5


def test_a_program_file_saved_when_the_key_was_family_still_loads(tmp_path):
    program, label_map = build_program("resize", Placement(32, 24), learn_scale=True), None
    label_map = build_label_map("first_k", 10, 10)
    path = save_program(tmp_path / "program", program, label_map, {"sha256": "0" * 64, "model": {}})
    assert load_program(path).program.config()["kind"] == "resize"
    old = load_program(path).meta
    old["program"] = {("family" if k == "kind" else k): v for k, v in old["program"].items()}
    tensors = {f"program.{k}": v for k, v in program.state_dict().items()}
    tensors.update({f"label_map.{k}": v for k, v in label_map.state_dict().items()})
    loaded = load_program(save_artifact(tmp_path / "old" / "program", tensors, old))
    assert loaded.program.kind == "resize" and loaded.program.learn_scale
