"""`ArraysDataModule`: a classification data set held in memory as uint8 tensors.

Batches are uint8 until they reach the device, where they are augmented and scaled to [0, 1]
(`on_after_batch_transfer`), batched. With `device_resident=True` (the default) each split is moved to
the training device once and batches are sliced there (`DeviceBatches`); with `False` a DataLoader
(with workers, if asked) copies every batch over, which suits data sets too big for the device.
"""

from collections.abc import Sequence
from pathlib import Path

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

from reprog.data.arrays import load_arrays
from reprog.data.augment import random_crop_flip, to_unit_range
from reprog.data.device_batches import DeviceBatches
from reprog.data.split_check import check_split
from reprog.errors import UserError


class ArraysDataModule(pl.LightningDataModule):
    """Train/val/test from array data set files; `val_size` images of train are held out with `split_seed`."""

    def __init__(
        self,
        train_file: str | None = None,
        test_file: str | None = None,
        num_classes: int = 10,
        mean: Sequence[float] = (0.5, 0.5, 0.5),
        std: Sequence[float] = (0.5, 0.5, 0.5),
        val_size: int = 5000,
        split_seed: int = 0,
        batch_size: int = 128,
        eval_batch_size: int = 512,
        num_workers: int = 0,
        augment: bool = True,
        crop_padding: int = 4,
        crop_padding_mode: str = "constant",
        flip: bool | str = True,
        device_resident: bool = True,
    ) -> None:
        super().__init__()
        if flip not in (True, False, "alternate"):
            raise UserError(f"data.flip={flip!r}: choose true (random), false or alternate")
        if flip == "alternate" and not device_resident:
            raise UserError(
                "data.flip=alternate is done by the device-resident path; set data.device_resident=true "
                "or data.flip=true"
            )
        self.train_file, self.test_file = train_file, test_file
        self.num_classes, self.mean, self.std = num_classes, list(mean), list(std)
        self.val_size, self.split_seed = val_size, split_seed
        self.batch_size, self.eval_batch_size, self.num_workers = batch_size, eval_batch_size, num_workers
        self.augment, self.flip = augment, flip
        self.crop_padding, self.crop_padding_mode = crop_padding, crop_padding_mode
        self.device_resident = device_resident
        self.train_set: TensorDataset | None = None
        self.val_set: TensorDataset | None = None
        self.test_set: TensorDataset | None = None
        self._resident: dict[tuple[int, torch.device], tuple[torch.Tensor, torch.Tensor]] = {}

    def load_split(self, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """uint8 (N, C, H, W) images and int64 labels of the train or test split."""
        path = self.train_file if train else self.test_file
        if not path:
            raise UserError(f"data.{'train' if train else 'test'}_file is not set; point it at an .npz array data set")
        return load_arrays(Path(path))

    def split_files(self, train: bool) -> tuple[str, str]:
        """Where a split's images and labels come from, for error messages: files when there are any."""
        path = self.train_file if train else self.test_file
        return (str(path) if path else f"the {'train' if train else 'test'} split",) * 2

    def check_split(self, x: torch.Tensor, y: torch.Tensor, train: bool) -> None:
        """Fail with one line unless the split is uint8 (N, C, H, W) images, one channel per value of `mean`,
        and labels in 0..num_classes-1."""
        channels, found = len(self.mean), x.shape[1] if x.ndim > 1 else 0  # found is used only when ndim is 4
        fix = f"give images with {channels} channels, or set data.mean and data.std to {found} values each"
        self.check_split_has(x, y, train, channels, fix)

    def check_split_has(self, x: torch.Tensor, y: torch.Tensor, train: bool, channels: int, channel_fix: str) -> None:
        """`check_split` for one of this module's splits: images with `channels` channels (`channel_fix`: what to
        do when they have others), labels in 0..num_classes-1, each named by where it came from."""
        images_from, labels_from = self.split_files(train)
        check_split(
            x,
            y,
            channels=channels,
            num_classes=self.num_classes,
            images_from=images_from,
            labels_from=labels_from,
            channel_fix=channel_fix,
        )

    def setup(self, stage: str | None = None) -> None:
        """Load and check the splits `stage` needs, once; touches no Trainer, so it can run before one exists."""
        if self.train_set is None and stage in (None, "fit", "validate"):
            x, y = self.load_split(train=True)
            self.check_split(x, y, train=True)
            if not 0 <= self.val_size < len(x):
                raise UserError(f"data.val_size={self.val_size} must be in [0, {len(x)}) for {len(x)} train images")
            perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(self.split_seed))
            val, train = perm[: self.val_size], perm[self.val_size :]
            self.train_set, self.val_set = TensorDataset(x[train], y[train]), TensorDataset(x[val], y[val])
        if self.test_set is None and stage in (None, "test", "predict"):
            x, y = self.load_split(train=False)
            self.check_split(x, y, train=False)
            self.test_set = TensorDataset(x, y)
        self.check_shapes_agree()

    def check_shapes_agree(self) -> None:
        """Train, validation and test images of one shape, or one line before anything is fitted."""
        if self.train_set is None or self.test_set is None:
            return
        (train, _), (test, _) = self.train_set.tensors, self.test_set.tensors
        if train.shape[1:] != test.shape[1:]:
            shape = lambda x: "x".join(map(str, x.shape[1:]))  # noqa: E731
            raise UserError(
                f"the test images ({self.split_files(False)[0]}) are {shape(test)} but the training "
                f"images ({self.split_files(True)[0]}) are {shape(train)}; give every split images of "
                "one shape"
            )

    @staticmethod
    def _loaded(split: TensorDataset | None, stage: str) -> TensorDataset:
        if split is None:
            raise RuntimeError(f"the data module has not loaded its splits: call setup({stage!r}) first")
        return split

    def train_batches(self) -> int:
        """Optimizer steps in one epoch on one process (the last partial batch is dropped)."""
        return len(self._loaded(self.train_set, "fit")) // self.batch_size

    def train_dataloader(self) -> DataLoader | DeviceBatches:
        return self._loader(self._loaded(self.train_set, "fit"), self.batch_size, train=True)

    def val_dataloader(self) -> DataLoader | DeviceBatches:
        return self._loader(self._loaded(self.val_set, "validate"), self.eval_batch_size, train=False)

    def test_dataloader(self) -> DataLoader | DeviceBatches:
        return self._loader(self._loaded(self.test_set, "test"), self.eval_batch_size, train=False)

    def _loader(self, dataset: TensorDataset, batch_size: int, train: bool) -> DataLoader | DeviceBatches:
        if self.device_resident:
            return self._device_batches(dataset, batch_size, train)
        return DataLoader(
            dataset,
            batch_size,
            shuffle=train,
            drop_last=train,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def _device_batches(self, dataset: TensorDataset, batch_size: int, train: bool) -> DeviceBatches:
        """Batches cut from one copy of the split on this process's device, sharded and shuffled as Lightning's
        DataLoaders are."""
        trainer = self.trainer  # None in a notebook: the CPU, one process
        device, rank, world, epoch = (
            (trainer.strategy.root_device, trainer.global_rank, trainer.world_size, trainer.current_epoch)
            if trainer
            else (torch.device("cpu"), 0, 1, 0)
        )
        # overfit_batches: the same first batches every epoch, as Lightning does for DataLoaders (the ignore: Trainer
        # sets the attribute in __init__ but does not declare it)
        shuffle = train and not (trainer and trainer.overfit_batches)  # type: ignore[attr-defined]
        return DeviceBatches(
            *self._resident_copy(dataset, device),
            batch_size,
            shuffle=shuffle,
            drop_last=shuffle,
            rank=rank,
            world_size=world,
            seed=self._shuffle_seed(shuffle),
            epoch=epoch,
            alternate_flip=train and self.augment and self.flip == "alternate",
        )

    def _resident_copy(self, dataset: TensorDataset, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """The split's images and labels on `device`: one copy per split and device, made once."""
        key = (id(dataset), device)
        if key not in self._resident:
            x, y = dataset.tensors
            self._resident[key] = (x.to(device), y.to(device))
        return self._resident[key]

    def _shuffle_seed(self, shuffle: bool) -> int:
        """The seed of the permutations: rank 0's on every rank when shuffling, so the shards stay disjoint."""
        seed = torch.initial_seed() % 2**62
        if self.trainer and shuffle:
            seed = self.trainer.strategy.broadcast(seed)
        return seed

    def preprocess(self, batch: tuple[torch.Tensor, torch.Tensor], train: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """uint8 batch -> [0, 1] floats, augmented when training. Usable without a Trainer."""
        x, y = batch
        if train and self.augment:
            x = random_crop_flip(x, self.crop_padding, self.flip is True, self.crop_padding_mode)
        return to_unit_range(x), y

    def on_after_batch_transfer(
        self, batch: tuple[torch.Tensor, torch.Tensor], dataloader_idx: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return self.preprocess(batch, train=self.trainer is not None and self.trainer.training)
