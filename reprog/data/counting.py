"""The reprogramming paper's counting task: 1 to 10 white squares on a grid; the label is the count.

Generated from a seed, so it needs no download. The default grid (7 x 7 cells of 4 px = 28 px) fits a
32 px CIFAR canvas; the paper used a 9 x 9 grid (36 px) on ImageNet victims.
"""

from typing import Any

import torch

from reprog.data.target_images import PlacedImagesDataModule


def counting_squares(n: int, grid: int = 7, square: int = 4, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, 1, grid*square, grid*square) uint8 images with 1..10 squares in distinct cells, and labels count-1."""
    g = torch.Generator().manual_seed(seed)
    counts = torch.randint(1, 11, (n,), generator=g)
    ranks = torch.rand(n, grid * grid, generator=g).argsort(1).argsort(1)  # a random permutation per image
    cells = (ranks < counts[:, None]).to(torch.uint8).view(n, 1, grid, grid) * 255
    images = cells.repeat_interleave(square, 2).repeat_interleave(square, 3)
    return images, counts - 1


class CountingDataModule(PlacedImagesDataModule):
    def __init__(
        self,
        train_size: int = 60000,
        test_size: int = 10000,
        grid: int = 7,
        square: int = 4,
        seed: int = 0,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("digit_size", grid * square)
        super().__init__(**kwargs)
        self.train_size, self.test_size, self.grid, self.square, self.seed = train_size, test_size, grid, square, seed

    def raw_split(self, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
        n, seed = (self.train_size, self.seed) if train else (self.test_size, self.seed + 1)
        return counting_squares(n, self.grid, self.square, seed)
