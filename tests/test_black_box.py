"""Black-box reprogramming: oracles, zeroth-order gradient estimates, and a program trained through queries alone."""

import pytest
import torch
from torch import nn

from reprog.attacks.black_box import BlackBoxVictim
from reprog.attacks.oracle import LabelOracle, Oracle, QueryBudgetExceeded, ScoreOracle
from reprog.attacks.zeroth_order import SPSA, RandomDirections
from reprog.errors import UserError
from reprog.models.frozen import FrozenVictim
from reprog.modules.reprogram import ReprogramModule


def tiny_victim(seed: int = 0) -> FrozenVictim:
    torch.manual_seed(seed)
    net = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10)
    )
    return FrozenVictim(net, {"arch": "tiny", "num_classes": 10})


class Additive(nn.Module):
    """A minimal program: x + W."""

    def __init__(self) -> None:
        super().__init__()
        self.W = nn.Parameter(0.1 * torch.randn(3, 8, 8, generator=torch.Generator().manual_seed(1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.W


def slots(oracle: Oracle) -> list[object]:
    names = {s for cls in type(oracle).__mro__ for s in getattr(cls, "__slots__", ())}
    return [getattr(oracle, s) for s in names]


def test_score_oracle_answers_rounded_top_k_probabilities_within_its_budget():
    victim, x = tiny_victim(), torch.rand(20, 3, 8, 8)
    p = ScoreOracle(victim)(x.requires_grad_(True))
    assert p.grad_fn is None and torch.allclose(p.sum(1), torch.ones(20))
    assert torch.equal(p.argmax(1), LabelOracle(victim)(x))
    shown = ScoreOracle(victim, budget=30, top_k=3, decimals=2)
    q = shown(x)
    assert ((q > 0).sum(1) <= 3).all() and torch.equal(q, q.round(decimals=2))
    with pytest.raises(QueryBudgetExceeded, match="11 more queries would exceed the budget of 30 \\(20 used\\)"):
        shown(x[:11])
    assert shown.queries == 20 and shown.remaining == 10
    for oracle in (shown, LabelOracle(victim)):
        assert not any(isinstance(v, (nn.Module, torch.Tensor)) for v in slots(oracle)), "no slot holds the model"
        with pytest.raises(AttributeError):
            oracle.model = victim  # no place to keep a model on it
    with pytest.raises(UserError, match="top_k=0: expected >= 1"):
        ScoreOracle(victim, top_k=0)


@pytest.mark.parametrize("estimator", [RandomDirections(q=20, mu=1e-3), SPSA(q=20, mu=1e-3, correction=0.0)])
def test_zeroth_order_estimates_point_along_the_true_gradient(estimator):
    """Averaged over draws the estimate is the gradient; one estimate of q directions in d dimensions has a cosine
    with it of about sqrt(q / d)."""
    program, victim, x, y = Additive(), tiny_victim(), torch.rand(16, 3, 8, 8), torch.arange(16) % 10
    loss = lambda logp: nn.functional.nll_loss(logp, y)  # noqa: E731
    true = torch.autograd.grad(loss(victim(program(x)).log_softmax(1)), program.W)[0]

    oracle = ScoreOracle(victim)
    answer = lambda values: oracle(torch.func.functional_call(program, values, (x,))).log()  # noqa: E731
    estimates = []
    for _ in range(15):
        program.zero_grad()
        loss(estimator(answer, dict(program.named_parameters()))).backward()
        estimates.append(program.W.grad.clone())
    cos = lambda a, b: nn.functional.cosine_similarity(a.flatten(), b.flatten(), 0).item()  # noqa: E731
    expected = (20 / true.numel()) ** 0.5  # 0.16
    assert 0.5 * expected < sum(cos(e, true) for e in estimates) / 15 < 2 * expected
    assert cos(torch.stack(estimates).mean(0), true) > 0.6, "unbiased: the mean of 15 estimates is close"
    assert oracle.queries == 15 * 16 * estimator.batches, "each estimate costs (q + 1) or (2q + 1) query batches"


@pytest.mark.parametrize("kind", [RandomDirections, SPSA])
def test_low_resolution_directions_find_a_smooth_gradient_with_fewer_queries(kind):
    """Through a victim that sees the image at 4 x 4, directions drawn on a 4 x 4 grid (AutoZOOM) search 48 of the
    3,072 dimensions, and q = 8 of them point much closer to the gradient than q = 8 full-size ones."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Linear(48, 10))
    victim, program = FrozenVictim(net, {"arch": "tiny", "num_classes": 10}), Additive()
    program.W = nn.Parameter(0.1 * torch.randn(3, 32, 32))
    x, y = torch.rand(16, 3, 32, 32), torch.arange(16) % 10
    loss = lambda logp: nn.functional.nll_loss(logp, y)  # noqa: E731
    true = torch.autograd.grad(loss(victim(program(x)).log_softmax(1)), program.W)[0].flatten()
    answer = lambda values: ScoreOracle(victim)(torch.func.functional_call(program, values, (x,))).log()  # noqa: E731

    def cosine(grid: int | None) -> float:
        estimator, total = kind(q=8, mu=1e-3, grid=grid), 0.0
        for _ in range(10):
            program.zero_grad()
            loss(estimator(answer, dict(program.named_parameters()))).backward()
            total += nn.functional.cosine_similarity(program.W.grad.flatten(), true, 0).item()
        return total / 10

    u = kind(q=8, grid=4).sample(torch.zeros(3, 32, 32))
    assert u.shape == (8, 3, 32, 32) and (u[..., 8:24, 8] - u[..., 9:25, 8]).abs().max() < 1, "resized: smooth"
    full, low = cosine(None), cosine(4)
    assert full < 0.1 and low > 0.3 and low > 5 * full, (full, low)  # sqrt(8 / 3072) = 0.05, sqrt(8 / 48) = 0.41
    with pytest.raises(UserError, match="oracle.grid=0: expected an integer >= 1"):
        kind(grid=0)


def test_the_black_box_victim_reaches_its_model_through_no_attribute_and_counts_what_training_asks():
    victim, program, x = tiny_victim(), Additive(), torch.rand(4, 3, 8, 8)
    box = BlackBoxVictim(victim, "score", budget=100, q=4)
    weights = {p.data_ptr() for p in victim.parameters()}
    assert not list(box.parameters()) and not box.state_dict() and list(box.modules()) == [box]
    reachable = [box, *vars(box).values(), *box.__dict__.get("_modules", {}).values()]
    for obj in (box.oracle, box.referee):
        reachable += slots(obj)
    assert not any(isinstance(o, nn.Module) and o is not box for o in reachable)
    assert not any(isinstance(o, torch.Tensor) and o.data_ptr() in weights for o in reachable)

    box.train()
    answers = box.answer(program, x)
    answers.sum().backward()
    assert box.queries == 4 * 5 and program.W.grad is not None, "one read: the answers and q perturbed batches"
    assert all(p.grad is None for p in victim.parameters()), "no gradient reaches the victim"
    assert box.affords(16) and not box.affords(17), "80 left pays for 16 images x 5 batches, not 17"
    box.eval()
    box.answer(program, x)
    assert box.queries == 20, "evaluation asks the referee, not the attacker's budget"
    labels = BlackBoxVictim(victim, "label", q=2).train().answer(program, x)
    assert torch.equal(labels.sum(1), torch.ones(4)) and set(labels.unique().tolist()) == {0.0, 1.0}, "one-hot"
    with pytest.raises(UserError, match="oracle.top_k and oracle.decimals shape a score oracle"):
        BlackBoxVictim(victim, "label", top_k=1)
    with pytest.raises(UserError, match="oracle.q=0: expected an integer >= 1"):
        BlackBoxVictim(victim, q=0)
    with pytest.raises(UserError, match="oracle.mu=0.0: expected a number > 0"):
        BlackBoxVictim(victim, mu=0.0)
    with pytest.raises(UserError, match="unknown oracle.estimator 'cma'"):
        BlackBoxVictim(victim, estimator="cma")
    with pytest.raises(UserError, match="oracle.grid is set, but oracle=none"):  # not a score oracle by accident
        ReprogramModule(victim={}, program={}, mapping={}, optimizer=torch.optim.Adam, oracle={"grid": 8})


def test_the_stateful_detector_flags_zeroth_order_queries_and_few_benign_images():
    from conftest import synthetic_images

    from reprog.detectors import StatefulDetector

    benign = torch.from_numpy(synthetic_images(600, seed=3)[0]).permute(0, 3, 1, 2).float() / 255
    detector = StatefulDetector(k=10, side=8)
    detector.calibrate(benign[:300], fpr=0.01)
    detector(benign[300:])
    assert detector.stats()["flag_rate"] <= 0.05, detector.stats()

    detector.reset()
    box = BlackBoxVictim(tiny_victim(), "score", q=4).train()
    box.oracle.detector = detector
    program = Additive()
    for _ in range(3):  # 3 steps of 8 near-blank canvases under one program, x 5 query batches
        box.answer(program, 0.02 * torch.rand(8, 3, 8, 8)).sum().backward()
    stats = detector.stats()
    assert stats["queries"] == box.queries == 120 and stats["flag_rate"] > 0.8, stats
    assert stats["first_flag"] <= 20, "flagged once its memory holds k near-copies"
    with pytest.raises(UserError, match="no threshold: calibrate it"):
        StatefulDetector()(benign[:1])


@pytest.mark.slow  # a bench smoke run; the detector itself is tested above
def test_the_detection_bench_reports_benign_and_attack_traffic(tmp_path, monkeypatch, victim_file):
    from conftest import bench_script, write_cifar_npz, write_mnist

    data = write_cifar_npz(tmp_path / "data", 300, 300)
    write_mnist(data)
    out = tmp_path / "detection.json"
    monkeypatch.setattr(
        "sys.argv",
        [
            "detection.py",
            f"--victim={victim_file}",
            f"--data-dir={data}",
            "--k=10",
            "--fpr=0.01",
            "--steps=2",
            "--batch=8",
            "--q=2",
            "--seeds=20",
            f"--out={out}",
        ],
    )
    bench_script("detection").main()
    import json

    rows = json.loads(out.read_text())["rows"]
    assert [r["queries"] for r in rows.values()] == [150, 2 * 8 * 3, 20 + 20 + 40]
