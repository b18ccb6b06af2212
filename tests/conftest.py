"""Synthetic data in the real on-disk formats, and Hydra configs composed as train.py would."""

import hashlib
import importlib.util
import pickle
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict
from torchvision.datasets import CIFAR10

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"


def synthetic_images(n: int, seed: int = 0, size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """uint8 (N, H, W, 3) images: a per-class spatial pattern in a per-class colour, plus noise."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 10
    cells = -(-size // 4)
    patterns = (np.random.default_rng(99).random((10, cells, cells)) > 0.5).repeat(4, 1).repeat(4, 2)[:, :size, :size]
    colours = np.stack([(np.arange(10) * 25) % 256, (np.arange(10) * 70) % 256, 255 - np.arange(10) * 25], -1)
    x = patterns[y][..., None] * colours[y][:, None, None, :] * 0.8 + 25
    x = np.clip(x + rng.normal(0, 30, (n, size, size, 3)), 0, 255).astype(np.uint8)
    return x, y.astype(np.int64)


def gratings(n: int, seed: int = 0, size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """uint8 (N, H, W, 3) sine gratings in random colours; the label is the orientation (10 bins of 18 deg).

    A victim trained on these learns oriented-edge features, as real CNNs do, so it can be reprogrammed.
    """
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 10
    theta = (y + rng.uniform(-0.3, 0.3, n)) * np.pi / 10
    freq, phase = rng.uniform(0.15, 0.5, n), rng.uniform(0, 2 * np.pi, n)
    yy, xx = np.mgrid[:size, :size]
    wave = np.sin(
        freq[:, None, None] * (np.cos(theta)[:, None, None] * xx + np.sin(theta)[:, None, None] * yy)
        + phase[:, None, None]
    )
    x = 128 + 100 * wave[..., None] * rng.uniform(0.3, 1.0, (n, 1, 1, 3)) + rng.normal(0, 20, (n, size, size, 3))
    return np.clip(x, 0, 255).astype(np.uint8), y.astype(np.int64)


def write_cifar_npz(data_dir: Path, n_train: int = 600, n_test: int = 200, images=synthetic_images) -> Path:
    (data_dir / "cifar10").mkdir(parents=True, exist_ok=True)
    for name, n, seed in (("train", n_train, 0), ("test", n_test, 1)):
        x, y = images(n, seed)
        np.savez_compressed(data_dir / "cifar10" / f"{name}.npz", x=x, y=y)
    return data_dir


@pytest.fixture
def cifar_npz_dir(tmp_path: Path) -> Path:
    return write_cifar_npz(tmp_path / "data")


@pytest.fixture
def cifar_pickle_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """torchvision's `cifar-10-batches-py` layout; the md5 table is pointed at the synthetic files."""
    root = tmp_path / "data"
    folder = root / CIFAR10.base_folder
    folder.mkdir(parents=True)
    md5 = {}
    for i, (name, _) in enumerate(CIFAR10.train_list + CIFAR10.test_list):
        x, y = synthetic_images(50, seed=10 + i)
        entry = {"data": x.transpose(0, 3, 1, 2).reshape(50, -1), "labels": y.tolist()}
        (folder / name).write_bytes(pickle.dumps(entry))
        md5[name] = hashlib.md5((folder / name).read_bytes()).hexdigest()
    (folder / CIFAR10.meta["filename"]).write_bytes(pickle.dumps({"label_names": [str(i) for i in range(10)]}))
    monkeypatch.setattr(CIFAR10, "train_list", [[n, md5[n]] for n, _ in CIFAR10.train_list])
    monkeypatch.setattr(CIFAR10, "test_list", [[n, md5[n]] for n, _ in CIFAR10.test_list])
    monkeypatch.setattr(
        CIFAR10, "meta", {**CIFAR10.meta, "md5": hashlib.md5((folder / "batches.meta").read_bytes()).hexdigest()}
    )
    return root


def bench_script(name: str) -> ModuleType:
    """bench/<name>.py as a module (bench/ is scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


TINY_RUN = [
    "data.val_size=100",
    "data.batch_size=32",
    "data.eval_batch_size=100",
    "trainer.max_epochs=1",
    "trainer.accelerator=cpu",
    "trainer.enable_model_summary=false",
    "callbacks.rich_progress_bar=null",
]


# `experiment=attack_autoattack` at a smoke-test budget: one batch of 8, two attack steps, ten Square queries.
AUTOATTACK_SMOKE = [
    "trainer.limit_test_batches=1",
    "data.eval_batch_size=8",
    "task.attacks.pgd10.steps=2",
    "task.attacks.pgd_l2.steps=2",
    "task.attacks.autoattack_l2=null",
    "+task.attacks.autoattack.steps=2",
    "+task.attacks.autoattack.square_queries=10",
]


def compose_train(tmp_path: Path, data_dir: Path, overrides: list[str] = ()) -> DictConfig:
    """conf/train.yaml composed with the hydra node, as `python train.py` would see it."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = compose("train.yaml", overrides=[*TINY_RUN, *overrides], return_hydra_config=True)
    return in_run_dir(cfg, tmp_path, data_dir)


def in_run_dir(cfg: DictConfig, tmp_path: Path, data_dir: Path) -> DictConfig:
    """A config composed with its hydra node, run in `tmp_path/run` on the data of `data_dir` (the Hydra of a run)."""
    with open_dict(cfg):
        cfg.paths.root_dir = str(tmp_path)
        cfg.paths.output_dir = str(tmp_path / "run")
        cfg.paths.data_dir = str(data_dir)
        cfg.hydra.runtime.output_dir = str(tmp_path / "run")
        cfg.hydra.job.num = 0
    HydraConfig().set_config(cfg)
    return cfg


@pytest.fixture(scope="module")
def hydra_once() -> Iterator[None]:
    """compose_plain's Hydra, initialized once for a module's tests, which then call `compose(...)` themselves."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(str(CONF), version_base="1.3"):
        yield
    GlobalHydra.instance().clear()


def compose_plain(overrides: list[str] = ()) -> DictConfig:
    """conf/train.yaml without the hydra node, for configs that need no run directory."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(str(CONF), version_base="1.3"):
        return compose("train.yaml", overrides=list(overrides))


def synthetic_digits(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """uint8 (N, 28, 28) 'digits': one fixed random blob per class plus noise, so they are separable."""
    templates = np.random.default_rng(1234).random((10, 7, 7)) > 0.5
    templates = templates.repeat(4, 1).repeat(4, 2) * 200.0
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 10, n)
    x = np.clip(templates[y] + rng.normal(0, 25, (n, 28, 28)), 0, 255).astype(np.uint8)
    return x, y.astype(np.int64)


def write_idx(path: Path, array: np.ndarray) -> None:
    """The IDX format MNIST ships in: magic (0, 0, uint8 code 8, ndim), big-endian dims, raw bytes."""
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def write_mnist(
    root: Path, name: str = "MNIST", n_train: int = 600, n_test: int = 200, gz: bool = False, images=synthetic_digits
) -> Path:
    """`root/<name>/raw/` with the four IDX files (or their .gz originals)."""
    import gzip

    raw = root / name / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for prefix, n, seed in (("train", n_train, 0), ("t10k", n_test, 1)):
        x, y = images(n, seed)
        for kind, arr in ((f"{prefix}-images-idx3-ubyte", x), (f"{prefix}-labels-idx1-ubyte", y)):
            write_idx(raw / kind, arr)
            if gz:
                (raw / f"{kind}.gz").write_bytes(gzip.compress((raw / kind).read_bytes()))
                (raw / kind).unlink()
    return root


@pytest.fixture
def mnist_dir(tmp_path: Path) -> Path:
    return write_mnist(tmp_path / "data")


@pytest.fixture
def victim_file(tmp_path: Path) -> Path:
    return write_victim(tmp_path / "victim" / "victim.safetensors")


def write_victim(path: Path) -> Path:
    """A resnet20 'victim' export (random weights, in eval mode) as a training run would write it."""
    import torch

    from reprog.models import build_model
    from reprog.models.export import save_victim

    torch.manual_seed(0)
    spec = {
        "arch": "resnet20",
        "num_classes": 10,
        "mean": [0.49, 0.48, 0.45],
        "std": [0.25, 0.24, 0.26],
        "weights": None,
    }
    return save_victim(build_model(**spec), spec, path)


@pytest.fixture(autouse=True)
def own_cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test extracts into its own cache, never into a ./outputs/cache an earlier run left behind."""
    monkeypatch.setenv("REPROG_CACHE_DIR", str(tmp_path / "cache"))
