"""MNIST and Fashion-MNIST digits, resized and placed on the victim's canvas.

torchvision's readers supply the images. Under `data_dir/<MNIST|FashionMNIST>/raw/` they take the
extracted IDX files, or else the original `.gz` files: those are linked into `cache_dir` and
extracted there after torchvision verifies their md5, so the data folder is never written to (it may
be shared or read-only). With neither, `download=True` fetches them.
"""

from pathlib import Path

import torch
from torchvision.datasets import MNIST, FashionMNIST

from reprog.data.target_images import PlacedImagesDataModule
from reprog.errors import UserError, brief


class PaddedMNISTDataModule(PlacedImagesDataModule):
    dataset_class: type[MNIST] = MNIST

    def __init__(self, data_dir: str = "data", cache_dir: str | None = None, download: bool = True, **kwargs) -> None:
        super().__init__(**kwargs)
        self.data_dir = Path(data_dir)
        self.cache_dir = Path(cache_dir) if cache_dir else self.data_dir / "cache"
        self.download = download

    @property
    def name(self) -> str:
        return self.dataset_class.__name__

    def _has(self, root: Path, suffix: str = "") -> bool:
        raw = root / self.name / "raw"
        return all((raw / (Path(url).stem if not suffix else Path(url).name)).is_file()
                   for url, _ in self.dataset_class.resources)

    def _root(self) -> tuple[Path, bool]:
        """The folder to read from, and whether torchvision must verify + extract (no network needed)."""
        if self._has(self.data_dir):
            return self.data_dir, False
        if self._has(self.cache_dir):
            return self.cache_dir, False
        if self._has(self.data_dir, suffix=".gz"):
            raw = self.cache_dir / self.name / "raw"
            raw.mkdir(parents=True, exist_ok=True)
            for url, _ in self.dataset_class.resources:
                link = raw / Path(url).name
                if not link.exists():
                    link.symlink_to((self.data_dir / self.name / "raw" / Path(url).name).resolve())
            return self.cache_dir, True
        if self.download:
            return self.data_dir, True
        raise UserError(f"no {self.name} found: expected {self.data_dir / self.name / 'raw'}/"
                        "{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]; set data.download=true to fetch it, "
                        "or point paths.data_dir (env REPROG_DATA_DIR) at a copy")

    def prepare_data(self) -> None:
        self._root()

    def raw_split(self, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
        root, fetch = self._root()
        try:
            ds = self.dataset_class(root, train=train, download=fetch)
        except Exception as e:
            raise UserError(f"could not read {self.name} under {root / self.name / 'raw'} ({brief(e)}); "
                            "copy the four original files there again, or set data.download=true") from e
        return ds.data.unsqueeze(1), ds.targets.long()


class PaddedFashionMNISTDataModule(PaddedMNISTDataModule):
    """Fashion-MNIST; Debian's `dataset-fashion-mnist` files work once decompressed into FashionMNIST/raw/."""

    dataset_class = FashionMNIST
