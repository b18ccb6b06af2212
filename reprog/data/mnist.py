"""MNIST and Fashion-MNIST digits, resized and placed on the victim's canvas.

torchvision's readers supply the images. Under `data_dir/<MNIST|FashionMNIST>/raw/` they take the
extracted IDX files, or else the original `.gz` files: those have their md5 checked against
torchvision's table and are extracted into `cache_dir`, so the data folder is never written to (it may
be shared or read-only). With neither, `download=True` fetches them into `cache_dir` too. Every IDX file's
header is checked against its size before torchvision reads it, so a truncated or mangled file gets one
line naming it; a bad file in the cache (ours) is extracted again from the `.gz` originals.
"""

import gzip
import logging
import os
from pathlib import Path
from typing import Any

import torch
from torchvision.datasets import MNIST, FashionMNIST
from torchvision.datasets.utils import calculate_md5, check_integrity

from reprog.atomic_files import write_file
from reprog.data.idx import IdxError, idx_shape
from reprog.data.target_images import PlacedImagesDataModule
from reprog.errors import UserError, brief

log = logging.getLogger("reprog")
PREFIXES = {True: "train", False: "t10k"}  # torchvision's file names for the train and test splits


def idx_files(raw: Path, train: bool) -> tuple[Path, Path]:
    """A split's extracted images and labels files in a `raw` folder."""
    return raw / f"{PREFIXES[train]}-images-idx3-ubyte", raw / f"{PREFIXES[train]}-labels-idx1-ubyte"


def idx_problem(raw: Path) -> tuple[Path, str] | None:
    """The first bad IDX file under `raw` and what is wrong with it, or None when all four are sound."""
    for train in (True, False):
        images, labels = idx_files(raw, train)
        counts = []
        for path, ndim in ((images, 3), (labels, 1)):
            try:
                counts.append(idx_shape(path, ndim)[0])
            except IdxError as e:
                return path, str(e)
        n_images, n_labels = counts
        if n_images != n_labels:
            return labels, f"{n_labels} labels for the {n_images} images in {images.name}"
    return None


class PaddedMNISTDataModule(PlacedImagesDataModule):
    dataset_class: type[MNIST] = MNIST

    def __init__(
        self, data_dir: str = "data", cache_dir: str | None = None, download: bool = True, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.data_dir = Path(data_dir)
        # as conf/paths' cache_dir (env REPROG_CACHE_DIR, else outputs/cache under the working directory): never
        # inside data_dir, which may be shared and read-only
        self.cache_dir = Path(cache_dir or os.environ.get("REPROG_CACHE_DIR") or "outputs/cache")
        self.download = download
        self._origin = (self.raw(self.data_dir), "")  # the folder the splits came from and the files' suffix

    @property
    def dataset_name(self) -> str:
        return self.dataset_class.__name__

    def raw(self, root: Path) -> Path:
        return root / self.dataset_name / "raw"

    def _has(self, root: Path, suffix: str = "") -> bool:
        return all((self.raw(root) / (Path(name).stem + suffix)).is_file() for name, _ in self.dataset_class.resources)

    def _root(self) -> Path:
        """The folder whose `<Name>/raw/` holds four sound IDX files, extracting or downloading them first."""
        self._origin = (self.raw(self.data_dir), "")
        if self._has(self.data_dir):
            if problem := idx_problem(self.raw(self.data_dir)):
                path, what = problem
                raise UserError(f"corrupt {path}: {what}; replace it with the original")
            return self.data_dir
        has_gz = self._has(self.data_dir, suffix=".gz")
        if self._has(self.cache_dir) and self._sound_cache(has_gz):
            self._origin = (self.raw(self.data_dir), ".gz") if has_gz else (self.raw(self.cache_dir), "")
            return self.cache_dir
        if has_gz:
            self._extract()
            self._origin = (self.raw(self.data_dir), ".gz")
            return self.cache_dir
        if self.download:
            return self._fetch()
        raise UserError(
            f"no {self.dataset_name} found: expected {self.raw(self.data_dir)}/"
            "{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]; set data.download=true to fetch it, "
            "or point paths.data_dir (env REPROG_DATA_DIR) at a copy"
        )

    def _sound_cache(self, has_gz: bool) -> bool:
        """Whether the cache's IDX files are sound; corrupt ones are cleared when the `.gz` originals can replace
        them, else refused in one line."""
        problem = idx_problem(self.raw(self.cache_dir))
        if not problem:
            return True
        path, what = problem
        if not has_gz:
            raise UserError(
                f"corrupt {path} in the cache: {what}; delete the cache folder "
                f"{self.cache_dir / self.dataset_name} and run again"
            )
        log.warning("corrupt %s in the cache (%s); extracting it again from %s", path, what, self.raw(self.data_dir))
        try:
            for name, _ in self.dataset_class.resources:
                (self.raw(self.cache_dir) / Path(name).stem).unlink(missing_ok=True)
        except OSError as e:
            raise UserError(
                f"cannot clear the corrupt cache {self.raw(self.cache_dir)} ({brief(e)}); "
                f"delete the cache folder {self.cache_dir / self.dataset_name} and run again"
            ) from e
        return False

    def _extract(self) -> None:
        """Check the `.gz` originals' md5 and decompress them into the cache, each file replaced whole."""
        src, dst = self.raw(self.data_dir), self.raw(self.cache_dir)
        for name, md5 in self.dataset_class.resources:
            if not check_integrity(src / name, md5):
                raise UserError(
                    f"corrupt {src / name}: its md5 is {calculate_md5(src / name)}, but the original's "
                    f"is {md5}; replace it with the original {name}"
                )
        try:
            dst.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise UserError(
                f"cannot write the cache {dst} ({brief(e)}); "
                "set paths.cache_dir (env REPROG_CACHE_DIR) to a writable folder"
            ) from e
        for name, _ in self.dataset_class.resources:
            gunzip(src / name, dst / Path(name).stem)
        if problem := idx_problem(dst):
            path, what = problem
            raise UserError(
                f"corrupt {src / (path.name + '.gz')}: once decompressed, {what}; replace it with the original"
            )

    def _fetch(self) -> Path:
        """Download into the cache with torchvision (which checks the md5s), then check what it extracted; data_dir
        is only read, even when it holds some of the files."""
        try:
            self.dataset_class(self.cache_dir, train=True, download=True)
        except Exception as e:
            raise UserError(
                f"could not download {self.dataset_name} into {self.raw(self.cache_dir)} ({brief(e)}); "
                f"put the four original .gz files in {self.raw(self.data_dir)}, or check the network"
            ) from e
        if problem := idx_problem(self.raw(self.cache_dir)):
            path, what = problem
            raise UserError(f"corrupt {path} after downloading it: {what}; delete it and run again")
        self._origin = (self.raw(self.cache_dir), "")
        return self.cache_dir

    def prepare_data(self) -> None:
        self._root()

    def split_files(self, train: bool) -> tuple[str, str]:
        """The files a split was read from; for a cache extracted from `.gz` originals, the originals."""
        folder, suffix = self._origin
        images, labels = idx_files(folder, train)
        return f"{images}{suffix}", f"{labels}{suffix}"

    def raw_split(self, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
        root = self._root()
        try:
            ds = self.dataset_class(root, train=train, download=False)
        except Exception as e:  # the files were checked; this is left for the unforeseen (e.g. a legacy processed/)
            raise UserError(
                f"could not read {self.dataset_name} under {self.raw(root)} ({brief(e)}); "
                "copy the four original files there again"
            ) from e
        return ds.data.unsqueeze(1), ds.targets.long()


def gunzip(gz: Path, out: Path) -> None:
    """Decompress `gz` to `out` whole or not at all (`reprog.atomic_files`): a crash never leaves half a file."""
    try:
        packed = gz.read_bytes()
    except OSError as e:
        raise UserError(f"cannot read {gz} ({brief(e)}); make it readable, or replace it with the original") from e
    try:
        data = gzip.decompress(packed)
    except Exception as e:  # BadGzipFile, EOFError, zlib.error, CRC or length mismatch: all corrupt
        raise UserError(f"corrupt {gz}: cannot decompress it ({brief(e)}); replace it with the original") from e
    try:
        write_file(out, data)
    except OSError as e:
        raise UserError(
            f"cannot write the cache {out.parent} ({brief(e)}); "
            "set paths.cache_dir (env REPROG_CACHE_DIR) to a writable folder"
        ) from e


class PaddedFashionMNISTDataModule(PaddedMNISTDataModule):
    """Fashion-MNIST; Debian's `dataset-fashion-mnist` files work once decompressed into FashionMNIST/raw/."""

    dataset_class = FashionMNIST
