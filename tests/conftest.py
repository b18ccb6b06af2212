"""Synthetic data in the real on-disk formats, and Hydra configs composed as train.py would."""

import hashlib
import pickle
from pathlib import Path

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
    """uint8 (N, H, W, 3) images whose mean colour depends on the label, so they can be learned."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 10
    base = np.stack([(y * 25) % 256, (y * 70) % 256, (255 - y * 25) % 256], -1)[:, None, None, :]
    x = np.clip(base + rng.normal(0, 30, (n, size, size, 3)), 0, 255).astype(np.uint8)
    return x, y.astype(np.int64)


def write_cifar_npz(data_dir: Path, n_train: int = 600, n_test: int = 200) -> Path:
    (data_dir / "cifar10").mkdir(parents=True, exist_ok=True)
    for name, n, seed in (("train", n_train, 0), ("test", n_test, 1)):
        x, y = synthetic_images(n, seed)
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
    monkeypatch.setattr(CIFAR10, "meta", {**CIFAR10.meta, "md5": hashlib.md5((folder / "batches.meta").read_bytes()).hexdigest()})
    return root


TINY_RUN = [
    "data.val_size=100",
    "data.batch_size=32",
    "data.eval_batch_size=100",
    "trainer.max_epochs=1",
    "trainer.accelerator=cpu",
    "trainer.enable_model_summary=false",
    "callbacks.rich_progress_bar=null",
]


def compose_train(tmp_path: Path, data_dir: Path, overrides: list[str] = ()) -> DictConfig:
    """conf/train.yaml composed with the hydra node, as `python train.py` would see it."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = compose("train.yaml", overrides=[*TINY_RUN, *overrides], return_hydra_config=True)
    with open_dict(cfg):
        cfg.paths.output_dir = str(tmp_path / "run")
        cfg.paths.data_dir = str(data_dir)
        cfg.hydra.runtime.output_dir = str(tmp_path / "run")
        cfg.hydra.job.num = 0
    HydraConfig().set_config(cfg)
    return cfg


def compose_plain(overrides: list[str] = ()) -> DictConfig:
    """conf/train.yaml without the hydra node, for configs that need no run directory."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(str(CONF), version_base="1.3"):
        return compose("train.yaml", overrides=list(overrides))
