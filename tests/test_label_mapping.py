import pytest
import torch

from reprog.errors import UserError
from reprog.label_mapping import FirstK, Frequency, ManyToOne, Random, restore

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


def test_frequency_assigns_most_frequent_predictions_one_to_one():
    # target 0 is mostly predicted as 7, target 1 as 7 too (but less) and then as 2
    preds = [(torch.tensor([7, 7, 7, 7, 2, 7, 7, 2, 2]), torch.tensor([0, 0, 0, 0, 1, 1, 1, 1, 1]))]
    counts = Frequency.count(preds, num_targets=2, num_source=10)
    assert counts[0, 7] == 4 and counts[1, 2] == 3 and counts[1, 7] == 2
    m = Frequency(counts)
    assert m.index.flatten().tolist() == [7, 2]
    logits = torch.arange(10.0)[None]
    assert torch.equal(m(logits), torch.tensor([[7.0, 2.0]]))
    assert torch.equal(restore(m.index, 10, "frequency")(logits), m(logits))
