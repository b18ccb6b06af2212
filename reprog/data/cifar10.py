"""`CIFAR10DataModule`: CIFAR-10 from an offline array copy or through torchvision.

Looks under `data_dir` for, in order:
  1. `cifar10/train.npz` + `cifar10/test.npz` (array data set format, e.g. ../shared/data),
  2. `cifar-10-batches-py/` (torchvision's python pickle format),
  3. `cifar-10-python.tar.gz` (the original archive): its md5 is checked and it is extracted into `cache_dir`,
and otherwise downloads the archive with torchvision into `cache_dir` when `download=True`. `data_dir` is only
read, never written to (it may be shared or read-only); the cache holds what was extracted or downloaded, each
extraction moved into place whole, so a kill never leaves half a data set that looks complete.
"""

import logging
import os
import secrets
import shutil
import tarfile
from pathlib import Path
from typing import Any

import torch
from torchvision.datasets import CIFAR10
from torchvision.datasets.utils import calculate_md5, check_integrity

from reprog.data.arrays import load_arrays
from reprog.data.arrays_datamodule import ArraysDataModule
from reprog.errors import UserError, brief

log = logging.getLogger("reprog")
MEAN = (0.4914, 0.4822, 0.4465)
STD = (0.2470, 0.2435, 0.2616)
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def pickles_intact(root: Path) -> bool:
    """Whether `root/cifar-10-batches-py/` holds every batch file with torchvision's md5."""
    folder = root / CIFAR10.base_folder
    return all(check_integrity(str(folder / name), md5) for name, md5 in CIFAR10.train_list + CIFAR10.test_list)


class CIFAR10DataModule(ArraysDataModule):
    class_names = CLASSES

    def __init__(
        self, data_dir: str = "data", cache_dir: str | None = None, download: bool = True, **kwargs: Any
    ) -> None:
        kwargs = {"num_classes": 10, "mean": MEAN, "std": STD, **kwargs}
        super().__init__(**kwargs)
        self.data_dir = Path(data_dir)
        # as conf/paths' cache_dir (env REPROG_CACHE_DIR, else outputs/cache under the working directory): never
        # inside data_dir, which may be shared and read-only
        self.cache_dir = Path(cache_dir or os.environ.get("REPROG_CACHE_DIR") or "outputs/cache")
        self.download = download
        self._pickle_root: Path | None = None

    @property
    def npz_dir(self) -> Path:
        return self.data_dir / "cifar10"

    @property
    def archive(self) -> Path:
        return self.data_dir / CIFAR10.filename

    @property
    def has_npz(self) -> bool:
        return (self.npz_dir / "train.npz").is_file() and (self.npz_dir / "test.npz").is_file()

    @property
    def has_pickles(self) -> bool:
        return (self.data_dir / CIFAR10.base_folder).is_dir()

    def pickle_root(self) -> Path:
        """The folder whose `cifar-10-batches-py/` holds the pickles: `data_dir`, or the cache once it holds them
        (extracted from `data_dir`'s archive, or downloaded)."""
        if self.has_npz or self.has_pickles:
            return self.data_dir
        if self._pickle_root is None:  # checked once: an md5 over 180 MB
            if not pickles_intact(self.cache_dir):
                if self.archive.is_file():
                    self._extract()
                elif (self.cache_dir / CIFAR10.base_folder).is_dir() and not self.download:
                    raise UserError(
                        f"CIFAR-10 in the cache {self.cache_dir / CIFAR10.base_folder} is incomplete or corrupt; "
                        "delete that folder and run again with data.download=true"
                    )
                else:
                    self._fetch()
            self._pickle_root = self.cache_dir
        return self._pickle_root

    def prepare_data(self) -> None:
        self.pickle_root()

    def _extract(self) -> None:
        """Check the archive's md5 and extract it into the cache, moved into place whole."""
        if not check_integrity(str(self.archive), CIFAR10.tgz_md5):
            raise UserError(
                f"corrupt {self.archive}: its md5 is {calculate_md5(str(self.archive))}, but the original's is "
                f"{CIFAR10.tgz_md5}; replace it with the original {CIFAR10.filename}"
            )
        target = self.cache_dir / CIFAR10.base_folder
        temp = self.cache_dir / f".{CIFAR10.base_folder}.{secrets.token_hex(4)}.tmp"
        log.info("extracting %s into %s", self.archive, target)
        try:
            temp.mkdir(parents=True)
            with tarfile.open(self.archive, "r:gz") as tar:
                if hasattr(tarfile, "data_filter"):  # no member may write outside the temporary folder
                    tar.extractall(temp, filter="data")
                else:  # Python < 3.10.12 has no filters; the archive's md5 is the original's
                    tar.extractall(temp)  # noqa: S202
            if not pickles_intact(temp):
                raise UserError(
                    f"corrupt {self.archive}: its md5 is right, but it does not hold {CIFAR10.base_folder}/ "
                    f"as torchvision lists it; replace it with the original {CIFAR10.filename}"
                )
            shutil.rmtree(target, ignore_errors=True)  # an earlier, damaged extraction: ours to replace
            (temp / CIFAR10.base_folder).replace(target)
        except OSError as e:
            raise UserError(
                f"cannot extract {self.archive} into the cache {self.cache_dir} ({brief(e)}); set "
                "paths.cache_dir (env REPROG_CACHE_DIR) to a writable folder with 200 MB free"
            ) from e
        except (tarfile.TarError, EOFError) as e:
            raise UserError(
                f"corrupt {self.archive}: cannot extract it ({brief(e)}); replace it with the original"
            ) from e
        finally:
            shutil.rmtree(temp, ignore_errors=True)

    def _fetch(self) -> None:
        """Download the archive into the cache with torchvision (which checks its md5 and extracts it there)."""
        where = (
            f"{self.npz_dir}/{{train,test}}.npz (array format), {self.data_dir / CIFAR10.base_folder}/ "
            f"(torchvision format) or {self.archive} (the original archive)"
        )
        if not self.download:
            raise UserError(
                f"no CIFAR-10 found: expected {where}; set data.download=true to fetch it into the cache, "
                "or point paths.data_dir (env REPROG_DATA_DIR) at a copy"
            )
        try:
            CIFAR10(str(self.cache_dir), train=True, download=True)
        except Exception as e:
            raise UserError(
                f"could not download CIFAR-10 into {self.cache_dir / CIFAR10.base_folder} ({brief(e)}); "
                f"put a copy at {where}, or check the network"
            ) from e

    def split_files(self, train: bool) -> tuple[str, str]:
        if self.has_npz:
            where = self.npz_dir / ("train.npz" if train else "test.npz")
        elif self.has_pickles:
            where = self.data_dir / CIFAR10.base_folder
        elif self.archive.is_file():
            where = self.archive  # the cache holds only what was extracted from it
        else:
            where = self.cache_dir / CIFAR10.base_folder
        return (str(where),) * 2

    def load_split(self, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
        if self.has_npz:
            return load_arrays(self.npz_dir / ("train.npz" if train else "test.npz"))
        root = self.pickle_root()  # a clear error if nothing is there
        try:
            ds = CIFAR10(str(root), train=train, download=False)
        except Exception as e:  # torchvision's md5 check, or a pickle it cannot read
            folder = root / CIFAR10.base_folder
            fix = (
                "copy it again, or remove it and set data.download=true to fetch CIFAR-10 into the cache"
                if root == self.data_dir
                else f"delete the cache folder {folder} and run again"
            )
            raise UserError(f"CIFAR-10 at {folder} is incomplete or corrupt ({brief(e)}); {fix}") from e
        return torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous(), torch.tensor(ds.targets)
