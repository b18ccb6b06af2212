import numpy as np
import pytest
import torch
from conftest import synthetic_images

from reprog.data.arrays import load_arrays
from reprog.data.arrays_datamodule import ArraysDataModule
from reprog.data.augment import random_crop_flip
from reprog.data.cifar10 import CIFAR10DataModule
from reprog.errors import UserError
from reprog.models import Normalize


def _dm(data_dir, **kw) -> CIFAR10DataModule:
    dm = CIFAR10DataModule(str(data_dir), download=False, val_size=100, batch_size=32, **kw)
    dm.prepare_data()
    dm.setup()
    return dm


@pytest.mark.parametrize("fmt", ["npz", "pickle"])
def test_cifar10_formats_shapes_dtypes_and_splits(fmt, request):
    data_dir = request.getfixturevalue("cifar_npz_dir" if fmt == "npz" else "cifar_pickle_dir")
    n_train, n_test = (600, 200) if fmt == "npz" else (250, 50)
    dm = _dm(data_dir)
    assert (len(dm.train_set), len(dm.val_set), len(dm.test_set)) == (n_train - 100, 100, n_test)
    x, y = dm.train_set.tensors
    assert x.dtype == torch.uint8 and x.shape[1:] == (3, 32, 32) and y.dtype == torch.int64
    assert set(y.tolist()) == set(range(10))

    # the train images as written, in file order (pickles: 5 batches of 50 images, seeds 10..14)
    seeds = [0] if fmt == "npz" else range(10, 15)
    written = np.concatenate([synthetic_images(n_train // len(seeds), s)[0] for s in seeds])
    written = torch.from_numpy(written).permute(0, 3, 1, 2)
    held = torch.cat([dm.train_set.tensors[0], dm.val_set.tensors[0]])
    assert sorted(map(bytes, held.flatten(1).numpy())) == sorted(map(bytes, written.flatten(1).numpy())), (
        "train and val must partition the training file"
    )

    again = _dm(data_dir)  # the split is fixed by split_seed, not by the global RNG
    torch.manual_seed(123)
    assert torch.equal(again.val_set.tensors[0], dm.val_set.tensors[0])
    assert not torch.equal(_dm(data_dir, split_seed=1).val_set.tensors[0], dm.val_set.tensors[0])


def test_batches_reach_the_model_in_unit_range_and_normalize_to_zero_mean(cifar_npz_dir):
    dm = _dm(cifar_npz_dir, augment=True)
    batch = next(iter(dm.test_dataloader()))
    x, _ = dm.preprocess(batch, train=False)
    assert x.dtype == torch.float32 and torch.equal(x, batch[0].float() / 255)
    xa, _ = dm.preprocess(next(iter(dm.train_dataloader())), train=True)
    assert xa.shape == (32, 3, 32, 32) and 0 <= xa.min() and xa.max() <= 1

    pixels = dm.test_set.tensors[0].float() / 255
    mean, std = pixels.mean((0, 2, 3)), pixels.std((0, 2, 3))
    z = Normalize(mean.tolist(), std.tolist())(pixels)
    assert torch.allclose(z.mean((0, 2, 3)), torch.zeros(3), atol=1e-4)
    assert torch.allclose(z.std((0, 2, 3)), torch.ones(3), atol=1e-3)


def test_random_crop_flip_is_a_padded_window_or_its_mirror():
    torch.manual_seed(0)
    x = torch.randint(0, 256, (64, 3, 8, 8), dtype=torch.uint8)
    out = random_crop_flip(x, padding=2)
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    flips = 0
    for i in range(len(x)):
        windows = [padded[i, :, r : r + 8, c : c + 8] for r in range(5) for c in range(5)]
        plain = any(torch.equal(out[i], w) for w in windows)
        mirrored = any(torch.equal(out[i], w.flip(-1)) for w in windows)
        assert plain or mirrored
        flips += mirrored and not plain
    assert 10 < flips < 54, "about half the images are flipped"
    assert torch.equal(random_crop_flip(x, padding=0, flip=False), x)


def test_corrupt_and_malformed_npz_get_one_clear_error(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"PK\x03\x04 this is not a zip file")
    with pytest.raises(UserError, match="corrupt array data set .*bad.npz"):
        load_arrays(bad)
    np.savez(tmp_path / "keys.npz", images=np.zeros((2, 4, 4, 3), np.uint8))
    with pytest.raises(UserError, match="needs 'x' and 'y'"):
        load_arrays(tmp_path / "keys.npz")
    np.savez(tmp_path / "dtype.npz", x=np.zeros((2, 4, 4, 3), np.float32), y=np.zeros(2, np.int64))
    with pytest.raises(UserError, match="expected uint8"):
        load_arrays(tmp_path / "dtype.npz")
    np.savez(tmp_path / "len.npz", x=np.zeros((2, 4, 4, 3), np.uint8), y=np.zeros(3, np.int64))
    with pytest.raises(UserError, match="integer labels of shape"):
        load_arrays(tmp_path / "len.npz")


def test_missing_dataset_names_the_files_and_the_download_option(tmp_path):
    dm = CIFAR10DataModule(str(tmp_path), download=False)
    with pytest.raises(UserError, match=r"cifar10/\{train,test\}.npz.*cifar-10-batches-py.*data.download=true"):
        dm.prepare_data()


def test_arrays_datamodule_reads_a_users_own_data(tmp_path):
    for name, n in (("tr", 120), ("te", 40)):
        x, y = synthetic_images(n, size=16)
        np.savez(tmp_path / f"{name}.npz", x=x, y=y % 5)
    dm = ArraysDataModule(str(tmp_path / "tr.npz"), str(tmp_path / "te.npz"), num_classes=5, val_size=20, batch_size=8)
    dm.setup()
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (8, 3, 16, 16) and int(y.max()) < 5
    with pytest.raises(UserError, match="val_size"):
        ArraysDataModule(str(tmp_path / "tr.npz"), str(tmp_path / "te.npz"), val_size=500).setup("fit")
