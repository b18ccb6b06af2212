import pytest
import torch

from reprog.errors import UserError
from reprog.placement import Placement


@pytest.mark.parametrize("size", range(1, 33))
def test_mask_is_zero_exactly_over_the_image_and_centring_is_exact(size):
    p = Placement(32, size)
    m = p.mask()
    assert m[p.window].eq(0).all() and m.sum() == 32 * 32 - size * size
    top, bottom = p.top, 32 - p.top - size
    left, right = p.left, 32 - p.left - size
    assert abs(top - bottom) <= 1 and abs(left - right) <= 1
    placed = p.place(torch.ones(1, 3, size, size))
    assert torch.equal(placed[0, 0] == 1, m == 0)


def test_explicit_position_and_bad_placements():
    p = Placement.make(32, 10, [0, 22])
    assert (p.top, p.left) == (0, 22) and p.mask()[0:10, 22:32].eq(0).all()
    with pytest.raises(UserError, match="does not fit"):
        Placement(32, 33)
    with pytest.raises(UserError, match="off the"):
        Placement.make(32, 10, [0, 23])
    with pytest.raises(UserError, match="data and the program disagree"):
        Placement(32, 14).place(torch.zeros(1, 3, 12, 12))


def test_named_positions_for_sweeps_and_bad_ones_in_one_line():
    assert Placement.make(32, 7, "centre") == Placement(32, 7) == Placement.make(32, 7, None)
    corners = {
        name: (p.top, p.left)
        for name in ("top_left", "top_right", "bottom_left", "bottom_right")
        for p in [Placement.make(32, 7, name)]
    }
    assert corners == {"top_left": (0, 0), "top_right": (0, 25), "bottom_left": (25, 0), "bottom_right": (25, 25)}
    for bad in ("middle", [1], [1.5, 2], [True, 0]):
        with pytest.raises(UserError, match=r"data.position=.*expected null \(centre\), one of centre, top_left"):
            Placement.make(32, 7, bad)
