import pytest
import torch

from reprog.errors import UserError
from reprog.label_mapping import (
    MAPS,
    Bayesian,
    FirstK,
    Frequency,
    Iterative,
    Linear,
    ManyToOne,
    Random,
    build_label_map,
)

LOGITS = torch.arange(20.0).reshape(1, 20) * torch.tensor([[1.0], [-1.0]])  # row 0: 0..19, row 1: 0..-19


def test_first_k_takes_the_first_classes():
    assert torch.equal(FirstK(20, 10)(LOGITS), LOGITS[:, :10])


def test_random_is_one_to_one_and_reproducible():
    m = Random(20, 10, seed=3)
    assert m.index.flatten().unique().numel() == 10
    assert torch.equal(m(LOGITS), LOGITS[:, m.index.flatten()])
    assert torch.equal(Random(20, 10, seed=3).index, m.index) and not torch.equal(Random(20, 10, seed=4).index, m.index)


def test_many_to_one_averages_k_logits():
    out = ManyToOne(20, 5, k=4)(LOGITS)
    assert torch.equal(out[0], torch.tensor([1.5, 5.5, 9.5, 13.5, 17.5]))
    with pytest.raises(UserError, match="needs 40 victim classes"):
        ManyToOne(20, 10, k=4)


def predicted_as(preds: list[int], targets: list[int], num_source: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    """Victim logits whose argmax is `preds`, with target labels."""
    return torch.nn.functional.one_hot(torch.tensor(preds), num_source).float() * 5, torch.tensor(targets)


def test_frequency_assigns_most_frequent_predictions_one_to_one():
    # target 0 is mostly predicted as 7, target 1 as 7 too (but less) and then as 2
    logits, y = predicted_as([7, 7, 7, 7, 2, 7, 7, 2, 2], [0, 0, 0, 0, 1, 1, 1, 1, 1])
    m = Frequency(10, 2)
    counts = m.statistics(logits, y)
    assert counts[7, 0] == 4 and counts[2, 1] == 3 and counts[7, 1] == 2
    m.fit(counts)
    assert m.index.flatten().tolist() == [7, 2] and m.fit_every == "once" and Iterative.fit_every == "epoch"
    assert torch.equal(m(torch.arange(10.0)[None]), torch.tensor([[7.0, 2.0]]))


def test_bayesian_weights_are_conditional_probabilities_normalised_per_target():
    logits, y = predicted_as([7, 7, 7, 7, 2, 7, 7, 2, 2], [0, 0, 0, 0, 1, 1, 1, 1, 1])
    m = Bayesian(10, 2, laplace=0.0)
    m.fit(m.statistics(logits, y))
    # P(t | s=7) = (4/6, 2/6), P(t | s=2) = (0, 1); each target's column then sums to 1
    expected = torch.zeros(10, 2)
    expected[7], expected[2] = torch.tensor([4 / 6, 2 / 6]), torch.tensor([0.0, 1.0])
    expected /= expected.sum(0)
    assert torch.allclose(m.weight, expected) and torch.allclose(m.weight.sum(0), torch.ones(2))
    assert torch.allclose(m(logits), logits @ expected)
    plus = Bayesian(10, 2, top_k=3, laplace=0.0)  # BLM+: top-3 probabilities, not argmax counts
    stats = plus.statistics(logits, y)
    assert torch.allclose(stats.sum(), logits.softmax(1).topk(3, dim=1).values.sum()) and (stats > 0).sum() > 4


def test_linear_starts_as_first_k_and_learns():
    m = Linear(20, 10)
    assert torch.allclose(m(LOGITS), LOGITS[:, :10]) and sum(p.numel() for p in m.parameters()) == 20 * 10 + 10


@pytest.mark.parametrize("kind", sorted(MAPS))
def test_every_map_is_rebuilt_from_its_settings_and_state_exactly(kind):
    settings = {"many_to_one": {"k": 2}, "random": {"seed": 5}, "bayesian": {"top_k": 3}}.get(kind, {})
    m = build_label_map(kind, 20, 10, **settings)
    if m.fit_every:
        m.fit(m.statistics(torch.randn(64, 20), torch.arange(64) % 10))
    for p in m.parameters():
        torch.nn.init.normal_(p)
    again = build_label_map(kind, 20, 10, **m.settings())
    again.load_state_dict(m.state_dict())
    x = torch.randn(4, 20)
    assert torch.equal(again(x), m(x))


def test_unknown_kind_and_settings_are_one_line():
    with pytest.raises(UserError, match="unknown mapping.kind 'bogus'"):
        build_label_map("bogus", 10, 10)
    with pytest.raises(UserError, match="mapping.kind=first_k has no setting k; its settings are none"):
        build_label_map("first_k", 10, 10, k=3)


def test_a_map_that_does_not_fit_the_victim_says_what_fits():
    with pytest.raises(UserError, match=r"needs 12 victim classes but the victim has 10; what fits: mapping.k <= 2"):
        build_label_map("many_to_one", 10, 4, k=3)
    with pytest.raises(UserError, match=r"needs 10 victim classes.*has 5; what fits: .*mapping=linear or mapping=blm"):
        build_label_map("first_k", 5, 10)
    for kind in ("linear", "bayesian"):  # many-to-many maps fit a victim with fewer classes than the targets
        assert build_label_map(kind, 5, 10)(torch.randn(3, 5)).shape == (3, 10)
