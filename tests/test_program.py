import pytest
import torch

from reprog.errors import UserError
from reprog.placement import Placement
from reprog.program import AdversarialProgram, ScaleProgram, build_program


@pytest.mark.parametrize("nonlinearity", ["tanh", "sigmoid"])
def test_the_program_never_writes_over_the_digit(nonlinearity):
    p = Placement(32, 13)
    program = AdversarialProgram(p, nonlinearity=nonlinearity)
    torch.nn.init.normal_(program.W, std=3.0)
    digits = torch.rand(4, 3, 13, 13)
    x = p.place(digits)
    x_adv = program(x)
    assert torch.equal(x_adv[..., p.window[0], p.window[1]], digits)
    outside = (x_adv - x)[:, :, p.mask().bool()]
    assert outside.abs().gt(0).all()
    if nonlinearity == "tanh":  # P = tanh(W * M) exactly, as in the paper
        assert torch.allclose(program.perturbation(), torch.tanh(program.W * program.M))


def test_unclamped_by_default_and_a_clamped_program_still_learns():
    p = Placement(32, 14)
    x = p.place(torch.rand(2, 3, 14, 14))
    program = AdversarialProgram(p)
    program.W.data.fill_(-2.0)
    assert program(x).min() < 0  # the paper does not clamp
    clamped = AdversarialProgram(p, clamp=True)  # W = 0 on a zero background: exactly the clamp's bound
    out = clamped(x)
    assert out.min() >= 0 and out.max() <= 1
    out.sum().backward()
    assert clamped.W.grad.abs().sum() > 0, "a straight-through clamp passes gradient at the bound"


def test_scale_program_fills_the_canvas_and_learns_its_scale():
    p = Placement(32, 32)
    x = torch.rand(2, 3, 32, 32)
    for scale, shape in [("scalar", (1, 1, 1)), ("channel", (3, 1, 1)), ("pixel", (3, 32, 32))]:
        program = build_program("scale", p, scale=scale, init_scale=2.0)
        assert torch.allclose(program(x), (torch.tanh(2.0 * x) + 1) / 2)
        program(x).sum().backward()
        assert program.a.grad.shape == shape and program.W.grad is not None
    with pytest.raises(UserError, match="program.scale"):
        build_program("scale", p, scale="row")
    with pytest.raises(UserError, match="data.digit_size=32"):
        ScaleProgram(Placement(32, 28))
    with pytest.raises(UserError, match="expects inputs of shape"):
        program(torch.rand(2, 3, 28, 28))


def test_frozen_victim_computes_like_the_original_and_keeps_it_untouched():
    from reprog.models import build_model
    from reprog.models.export import state_checksum
    from reprog.models.frozen import FrozenVictim

    spec = {"arch": "resnet20", "num_classes": 10, "mean": [0.5] * 3, "std": [0.25] * 3}
    model = build_model(**spec)
    for m in model.modules():  # non-trivial running statistics, so the folding is really tested
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    victim = FrozenVictim(model, spec).train()
    x = torch.rand(4, 3, 32, 32, requires_grad=True)
    assert victim.compute is not victim.model and not victim.model.training
    assert torch.allclose(victim(x), model.eval()(x), atol=1e-4)
    victim(x).sum().backward()
    assert x.grad.abs().sum() > 0 and all(p.grad is None for p in model.parameters())
    assert state_checksum(model) == victim.sha256 and set(victim.state_dict()) == {
        f"model.{k}" for k in model.state_dict()
    }
    assert victim.to(torch.float64)(x.double()).dtype == torch.float64, "the folded copy follows .to()"


def test_resized_program_covers_the_image_too_and_learns_an_input_scale(tmp_path):
    from reprog.label_mapping import FirstK
    from reprog.program_io import load_program, save_program

    p = Placement(32, 20)
    program = build_program("resize", p, learn_scale=True)
    x = p.place(torch.rand(2, 3, 20, 20))
    out = program(x)
    assert torch.equal(out, x)  # W = 0, s = 1: the placed image itself
    (out * torch.randn_like(out)).sum().backward()
    assert program.W.grad[:, p.window[0], p.window[1]].abs().gt(0).all(), "the program reaches the image's pixels"
    assert program.s.grad is not None and program.s.grad.abs() > 0
    torch.nn.init.normal_(program.W)
    program.s.data.fill_(0.7)
    path = save_program(tmp_path / "program.safetensors", program, FirstK(10, 10), {"sha256": "0" * 64, "model": {}})
    again = load_program(path).program
    assert again.kind == "resize" and again.learn_scale and torch.equal(again(x), program(x))


def test_smm_draws_a_mask_per_sample_and_reloads_exactly(tmp_path):
    from reprog.label_mapping import FirstK
    from reprog.program_io import load_program, save_program

    p = Placement(32, 24)
    program = build_program("smm", p)
    assert sum(t.numel() for t in program.f_mask.parameters()) == 1827  # the README's "a few thousand"
    x = p.place(torch.rand(2, 3, 24, 24))
    assert torch.equal(program(x), x), "W = 0: the placed image itself"
    torch.nn.init.normal_(program.W)
    masks = program.f_mask(x)
    assert masks.shape == x.shape and not torch.allclose(masks[0], masks[1]), "one mask per sample"
    assert torch.allclose(program(x), x + masks * torch.tanh(program.W))
    assert torch.equal(masks[..., :4, :4], masks[..., :1, :1].expand(-1, -1, 4, 4)), "one value per 4x4 patch"
    program(x).square().sum().backward()
    assert program.W.grad.abs().sum() > 0 and all(t.grad is not None for t in program.f_mask.parameters())
    path = save_program(tmp_path / "program.safetensors", program, FirstK(10, 10), {"sha256": "0" * 64, "model": {}})
    again = load_program(path).program
    assert again.kind == "smm" and again.mask_width == 8 and torch.equal(again(x), program(x))
    with pytest.raises(UserError, match="divisible by 4"):
        build_program("smm", Placement(30, 24))


def test_a_global_pool_victim_takes_a_bigger_canvas_and_airbench_is_refused_in_one_line():
    from reprog.models import build_model
    from reprog.models.frozen import FrozenVictim

    victims = {
        arch: FrozenVictim(build_model(arch, 10, [0.5] * 3, [0.25] * 3), {"arch": arch, "num_classes": 10})
        for arch in ("resnet20", "airbench")
    }
    victims["resnet20"].check_canvas(3, 64)
    victims["airbench"].check_canvas(3, 32)
    with pytest.raises(UserError, match="airbench cannot take a 3x64x64 canvas.*airbench only 32 px") as e:
        victims["airbench"].check_canvas(3, 64)
    assert "\n" not in str(e.value)
