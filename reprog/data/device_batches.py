"""`DeviceBatches`: batches sliced from a data set that already lives on the training device.

The airbench recipe: the whole split is one uint8 tensor on the device (CIFAR-10 is 150 MB), and a
batch is one gather with a shuffled index. No workers, no collate, no host-to-device copy per step.
Under DDP each rank takes every `world_size`-th index of the same permutation, so the shards are
disjoint and, for training, equally long (every rank must take the same number of steps).
With `alternate_flip` each image is mirrored in every other epoch from a random start (airbench's
alternating flip: both orientations are seen in any two epochs running, not left to chance).
"""

from collections.abc import Iterator

import torch


class DeviceBatches:
    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        batch_size: int,
        shuffle: bool = False,
        drop_last: bool = False,
        rank: int = 0,
        world_size: int = 1,
        seed: int = 0,
        epoch: int = 0,
        alternate_flip: bool = False,
    ) -> None:
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is not in [0, {world_size})")
        self.images, self.labels = images, labels
        self.batch_size, self.shuffle, self.drop_last = batch_size, shuffle, drop_last
        self.rank, self.world_size = rank, world_size
        self.seed, self.epoch = seed, epoch  # the epoch picks the permutation; it counts up with every pass
        self.flip_start = None
        if alternate_flip:  # its own stream (permutations use seed + epoch), the same on every rank
            bits = torch.randint(0, 2, (len(images),), generator=torch.Generator().manual_seed(seed + 2**62))
            self.flip_start = bits.bool().to(images.device)

    def _end(self) -> int:
        """How many images an epoch deals out: all, or (drop_last: equal shards) a multiple of world_size."""
        n = len(self.images)
        return n - n % self.world_size if self.drop_last else n

    def shard(self) -> torch.Tensor:
        """This rank's indices for the next epoch: a fresh permutation per epoch, the same on every rank."""
        n = len(self.images)
        if self.shuffle:
            order = torch.randperm(n, generator=torch.Generator().manual_seed(self.seed + self.epoch))
        else:
            order = torch.arange(n)
        return order[self.rank : self._end() : self.world_size].to(self.images.device)

    def set_epoch(self, epoch: int) -> None:
        """Lightning calls this (through `sampler`) before every epoch, a resumed one included: the
        permutation follows the trainer's epoch, not how often this object was iterated."""
        self.epoch = epoch

    @property
    def sampler(self) -> "DeviceBatches":  # where Lightning looks for set_epoch
        return self

    batch_sampler = None  # the batches are sliced here, not drawn by a sampler

    def __len__(self) -> int:
        per_rank = len(range(self.rank, self._end(), self.world_size))
        return per_rank // self.batch_size if self.drop_last else -(-per_rank // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        index, odd = self.shard(), self.epoch % 2 == 1
        self.epoch += 1
        for i in range(len(self)):
            batch = index[i * self.batch_size : (i + 1) * self.batch_size]
            images = self.images[batch]
            if self.flip_start is not None:
                flip = (self.flip_start[batch] ^ odd)[:, None, None, None]
                images = torch.where(flip, images.flip(-1), images)
            yield images, self.labels[batch]
