"""`CIFAR10DataModule`: CIFAR-10 from an offline array copy or through torchvision.

Looks under `data_dir` for, in order:
  1. `cifar10/train.npz` + `cifar10/test.npz` (array data set format, e.g. ../shared/data),
  2. `cifar-10-batches-py/` (torchvision's python pickle format),
and otherwise downloads the latter with torchvision when `download=True`.
"""

from pathlib import Path

import torch
from torchvision.datasets import CIFAR10

from reprog.data.arrays import load_arrays
from reprog.data.arrays_datamodule import ArraysDataModule
from reprog.errors import UserError, brief

MEAN = (0.4914, 0.4822, 0.4465)
STD = (0.2470, 0.2435, 0.2616)
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


class CIFAR10DataModule(ArraysDataModule):
    class_names = CLASSES

    def __init__(self, data_dir: str = "data", download: bool = True, **kwargs) -> None:
        kwargs = {"num_classes": 10, "mean": MEAN, "std": STD, **kwargs}
        super().__init__(**kwargs)
        self.data_dir = Path(data_dir)
        self.download = download

    @property
    def npz_dir(self) -> Path:
        return self.data_dir / "cifar10"

    @property
    def has_npz(self) -> bool:
        return (self.npz_dir / "train.npz").is_file() and (self.npz_dir / "test.npz").is_file()

    @property
    def has_pickles(self) -> bool:
        return (self.data_dir / CIFAR10.base_folder).is_dir()

    def prepare_data(self) -> None:
        if self.has_npz or self.has_pickles:
            return
        where = (
            f"{self.npz_dir}/{{train,test}}.npz (array format) or "
            f"{self.data_dir / CIFAR10.base_folder}/ (torchvision format)"
        )
        if not self.download:
            raise UserError(
                f"no CIFAR-10 found: expected {where}; set data.download=true to fetch it, "
                "or point paths.data_dir (env REPROG_DATA_DIR) at a copy"
            )
        try:
            CIFAR10(self.data_dir, train=True, download=True)
        except Exception as e:
            raise UserError(
                f"could not download CIFAR-10 into {self.data_dir} ({brief(e)}); "
                f"put a copy at {where}, or point paths.data_dir (env REPROG_DATA_DIR) at one"
            ) from e

    def split_files(self, train: bool) -> tuple[str, str]:
        where = (
            self.npz_dir / ("train.npz" if train else "test.npz")
            if self.has_npz
            else self.data_dir / CIFAR10.base_folder
        )
        return (str(where),) * 2

    def load_split(self, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
        if self.has_npz:
            return load_arrays(self.npz_dir / ("train.npz" if train else "test.npz"))
        self.prepare_data()  # a clear error if nothing is there
        try:
            ds = CIFAR10(self.data_dir, train=train, download=False)
        except RuntimeError as e:
            raise UserError(
                f"CIFAR-10 at {self.data_dir / CIFAR10.base_folder} is incomplete or corrupt ({brief(e)}); "
                "delete it and set data.download=true"
            ) from e
        return torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous(), torch.tensor(ds.targets)
