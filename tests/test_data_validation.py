"""Bad data fails at setup with one line that names the file; corrupt files never escape as a library error."""

import gzip
import hashlib
import io
import logging
import re
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import synthetic_digits, synthetic_images, write_cifar_npz, write_idx, write_mnist
from torchvision.datasets import CIFAR10, MNIST

from reprog.data.arrays import load_arrays
from reprog.data.arrays_datamodule import ArraysDataModule
from reprog.data.cifar10 import CIFAR10DataModule
from reprog.data.counting import CountingDataModule
from reprog.data.mnist import PaddedMNISTDataModule
from reprog.errors import UserError

RAW = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def write_npz(path: Path, x: np.ndarray, y: np.ndarray, compressed: bool = False) -> Path:
    (np.savez_compressed if compressed else np.savez)(path, x=x, y=y)
    return path


def arrays_dm(tmp_path: Path, train=None, test=None, **kw) -> ArraysDataModule:
    """ArraysDataModule over tr.npz/te.npz: good synthetic data unless (x, y) is given for a split."""
    files = []
    for name, given, seed in (("tr", train, 0), ("te", test, 1)):
        x, y = given if given is not None else synthetic_images(20, seed)
        files.append(str(write_npz(tmp_path / f"{name}.npz", x, y)))
    return ArraysDataModule(*files, **{"num_classes": 10, "val_size": 5, **kw})


def mnist_dm(data: Path, cache: Path, **kw) -> PaddedMNISTDataModule:
    return PaddedMNISTDataModule(str(data), cache_dir=str(cache), **{"download": False, "val_size": 5, **kw})


def small_mnist(root: Path, gz: bool = False) -> Path:
    return write_mnist(root, n_train=20, n_test=20, gz=gz)


def point_md5_at(monkeypatch: pytest.MonkeyPatch, raw: Path) -> None:
    """torchvision's md5 table for MNIST, pointed at the .gz files now in `raw`."""
    md5 = {f.name: hashlib.md5(f.read_bytes()).hexdigest() for f in raw.glob("*.gz")}
    monkeypatch.setattr(MNIST, "resources", [(name, md5[name]) for name, _ in MNIST.resources])


def one_line(e: pytest.ExceptionInfo) -> str:
    message = str(e.value)
    assert "\n" not in message and message.strip() == message, repr(message)
    return message


def tree(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.lstat().st_size, p.lstat().st_mtime_ns) for p in root.rglob("*")}


# --- split checks in setup ---------------------------------------------------------------------------------


@pytest.mark.parametrize("split", ["train", "test"])
def test_out_of_range_npz_labels_name_the_file(tmp_path, split):
    x, y = synthetic_images(20)
    bad = (x, np.where(np.arange(20) == 7, 12, y))
    dm = arrays_dm(tmp_path, **{split: bad})
    name = "tr.npz" if split == "train" else "te.npz"
    with pytest.raises(UserError) as e:
        dm.setup()
    assert one_line(e) == (
        f"labels in {tmp_path / name} run 0..12 but data.num_classes=10; fix the labels or set data.num_classes"
    )


def test_negative_labels_in_cifar_npz(tmp_path):
    data = write_cifar_npz(tmp_path, n_train=20, n_test=20)
    with np.load(data / "cifar10" / "test.npz") as f:
        x, y = f["x"], f["y"]
    write_npz(data / "cifar10" / "test.npz", x, y - 1)
    dm = CIFAR10DataModule(str(data), download=False, val_size=5)
    dm.setup("fit")  # the train split is sound
    with pytest.raises(UserError, match=r"labels in .*cifar10/test.npz run -1..8 but data.num_classes=10"):
        dm.setup("test")


@pytest.mark.parametrize("split", ["train", "test"])
def test_out_of_range_idx_labels_name_the_file(tmp_path, split):
    data = small_mnist(tmp_path / "data")
    prefix = "train" if split == "train" else "t10k"
    labels = data / "MNIST" / "raw" / f"{prefix}-labels-idx1-ubyte"
    write_idx(labels, np.where(np.arange(20) == 3, 12, synthetic_digits(20)[1]))
    with pytest.raises(UserError) as e:
        mnist_dm(data, tmp_path / "cache").setup()
    assert one_line(e) == (
        f"labels in {labels} run 0..12 but data.num_classes=10; fix the labels or set data.num_classes"
    )


def test_channel_first_npz_says_how_to_transpose(tmp_path):
    x, y = synthetic_images(20)
    dm = arrays_dm(tmp_path, train=(x.transpose(0, 3, 1, 2), y))
    with pytest.raises(UserError) as e:
        dm.setup()
    message = one_line(e)
    assert "tr.npz" in message and "looks channel-first" in message and "x.transpose(0, 2, 3, 1)" in message
    grey = np.ascontiguousarray(x[..., :1].transpose(0, 3, 1, 2))  # (N, 1, H, W)
    with pytest.raises(UserError, match="looks channel-first"):
        load_arrays(write_npz(tmp_path / "grey.npz", grey, y))


def test_wrong_channel_count_names_the_file_and_the_fix(tmp_path):
    x, y = synthetic_images(20)
    grey = (np.ascontiguousarray(x[..., :1]), y)
    with pytest.raises(UserError) as e:
        arrays_dm(tmp_path, test=grey).setup()
    assert one_line(e) == (
        f"images from {tmp_path / 'te.npz'} have 1 channels, but this data module expects 3; "
        "give images with 3 channels, or set data.mean and data.std to 1 values each"
    )
    grey_test = (np.ascontiguousarray(synthetic_images(20, 1)[0][..., :1]), y)
    dm = arrays_dm(tmp_path, train=grey, test=grey_test, mean=[0.5], std=[0.5])
    dm.setup()
    assert dm.test_set.tensors[0].shape == (20, 1, 32, 32)


@pytest.mark.parametrize("split", ["train", "test"])
def test_empty_split(tmp_path, split):
    empty = (np.zeros((0, 32, 32, 3), np.uint8), np.zeros(0, np.int64))
    with pytest.raises(UserError) as e:
        arrays_dm(tmp_path, **{split: empty}).setup()
    assert one_line(e).startswith(f"no images in {tmp_path / ('tr.npz' if split == 'train' else 'te.npz')}")


def test_setup_needs_no_trainer_and_loads_each_split_once(tmp_path, monkeypatch):
    dm = arrays_dm(tmp_path, batch_size=4)
    calls = []
    load = dm.load_split
    monkeypatch.setattr(dm, "load_split", lambda train: calls.append(train) or load(train))
    dm.setup("fit")
    dm.setup("test")
    sets = (dm.train_set, dm.val_set, dm.test_set)
    dm.setup("fit")
    dm.setup("test")
    dm.setup()
    assert calls == [True, False] and (dm.train_set, dm.val_set, dm.test_set) == sets and dm.trainer is None
    x, y = next(iter(dm.train_dataloader()))
    assert x.dtype == torch.uint8 and y.dtype == torch.int64


def test_generated_counting_task_passes_the_checks():
    dm = CountingDataModule(train_size=60, test_size=20, val_size=10, digit_size=14)
    dm.setup()
    assert dm.test_set.tensors[0].shape == (20, 1, 14, 14)


# --- corrupt array files ------------------------------------------------------------------------------------


def npy_bytes(shape_text: str, data: bytes) -> bytes:
    header = f"{{'descr': '|u1', 'fortran_order': False, 'shape': {shape_text}, }}"
    header += " " * (-(10 + len(header) + 1) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode() + data


def test_absurd_npy_shape_is_a_corrupt_file_not_a_memory_error(tmp_path):
    path = tmp_path / "huge.npz"
    with zipfile.ZipFile(path, "w") as z:  # a sound zip (good CRCs) holding a header that claims ~10^18 bytes
        z.writestr("x.npy", npy_bytes("(1000000000000000, 32, 32, 3)", bytes(3072)))
        buf = io.BytesIO()
        np.save(buf, np.zeros(1, np.int64))
        z.writestr("y.npy", buf.getvalue())
    with pytest.raises(UserError) as e:
        load_arrays(path)
    assert one_line(e).startswith(f"corrupt array data set {path} (")


def test_a_single_npy_or_random_bytes_are_corrupt_array_files(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((2, 4, 4, 3), np.uint8))
    shutil.move(tmp_path / "x.npy", tmp_path / "x.npz")
    (tmp_path / "noise.npz").write_bytes(np.random.default_rng(0).bytes(500))
    for name in ("x.npz", "noise.npz"):
        with pytest.raises(UserError) as e:
            load_arrays(tmp_path / name)
        assert one_line(e).startswith(f"corrupt array data set {tmp_path / name}")


# --- MNIST files --------------------------------------------------------------------------------------------


def test_corrupt_gz_names_the_file_and_never_mentions_download(tmp_path, monkeypatch):
    data = small_mnist(tmp_path / "data", gz=True)
    raw = data / "MNIST" / "raw"
    point_md5_at(monkeypatch, raw)
    expected = dict(MNIST.resources)["t10k-labels-idx1-ubyte.gz"]
    blob = bytearray((raw / "t10k-labels-idx1-ubyte.gz").read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    (raw / "t10k-labels-idx1-ubyte.gz").write_bytes(bytes(blob))
    for dm in (mnist_dm(data, tmp_path / "cache"), mnist_dm(data, tmp_path / "cache", download=True)):
        with pytest.raises(UserError) as e:
            dm.setup()
        message = one_line(e)
        assert message.startswith(f"corrupt {raw / 't10k-labels-idx1-ubyte.gz'}: its md5 is ")
        assert f"the original's is {expected}; replace it with the original" in message
        assert "download" not in message


def test_corrupt_cache_is_extracted_again_from_the_gz_originals(tmp_path, monkeypatch, caplog):
    data = small_mnist(tmp_path / "data", gz=True)
    point_md5_at(monkeypatch, data / "MNIST" / "raw")
    cache = tmp_path / "cache"
    mnist_dm(data, cache).setup()
    extracted = cache / "MNIST" / "raw" / "train-images-idx3-ubyte"
    size = extracted.stat().st_size
    extracted.write_bytes(extracted.read_bytes()[: size // 2])  # half-written, as by a crash while extracting
    with caplog.at_level(logging.WARNING, logger="reprog"):
        dm = mnist_dm(data, cache)
        dm.setup()
    assert extracted.stat().st_size == size and len(dm.train_set) + len(dm.val_set) == 20
    assert "extracting it again" in caplog.text and str(extracted) in caplog.text
    (cache / "MNIST" / "raw" / "t10k-labels-idx1-ubyte").unlink()  # half-extracted: a file missing
    dm = mnist_dm(data, cache)
    dm.setup()
    assert len(dm.test_set) == 20 and not list((cache / "MNIST" / "raw").glob("*.part"))


def test_corrupt_cache_without_gz_originals_says_to_delete_the_cache(tmp_path, monkeypatch):
    data = small_mnist(tmp_path / "data", gz=True)
    point_md5_at(monkeypatch, data / "MNIST" / "raw")
    cache = tmp_path / "cache"
    mnist_dm(data, cache).setup()
    shutil.rmtree(data / "MNIST")
    labels = cache / "MNIST" / "raw" / "t10k-labels-idx1-ubyte"
    labels.write_bytes(labels.read_bytes() + b"junk")
    with pytest.raises(UserError) as e:
        mnist_dm(data, cache).setup()
    message = one_line(e)
    assert message.startswith(f"corrupt {labels} in the cache: ")
    assert message.endswith(f"; delete the cache folder {cache / 'MNIST'} and run again")


@pytest.mark.parametrize("damage", ["truncated", "magic", "count"])
def test_corrupt_idx_in_data_dir_says_to_replace_it(tmp_path, damage):
    data = small_mnist(tmp_path / "data")
    raw = data / "MNIST" / "raw"
    images = raw / "train-images-idx3-ubyte"
    if damage == "truncated":
        images.write_bytes(images.read_bytes()[:-100])
        bad, what = images, f"{images.stat().st_size} bytes, but its header (20 x 28 x 28 values) needs 15696"
    elif damage == "magic":
        images.write_bytes(b"\x00\x00\x0b\x03" + images.read_bytes()[4:])
        bad, what = images, "its magic number is 00000b03, not 00000803 (IDX of uint8 with 3 dims)"
    else:
        write_idx(raw / "train-labels-idx1-ubyte", np.zeros(19, np.uint8))
        bad, what = raw / "train-labels-idx1-ubyte", "19 labels for the 20 images in train-images-idx3-ubyte"
    before = tree(data)
    with pytest.raises(UserError) as e:
        mnist_dm(data, tmp_path / "cache").setup()
    assert one_line(e) == f"corrupt {bad}: {what}; replace it with the original"
    assert tree(data) == before


def test_default_cache_is_in_the_working_directory_not_in_data_dir(tmp_path, monkeypatch):
    data = small_mnist(tmp_path / "shared", gz=True)
    point_md5_at(monkeypatch, data / "MNIST" / "raw")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.delenv("REPROG_CACHE_DIR", raising=False)
    before = tree(data)
    dm = PaddedMNISTDataModule(str(data), download=False, val_size=5)
    dm.setup()
    assert tree(data) == before, "nothing written under data_dir"
    assert dm.cache_dir == Path("outputs/cache")
    assert {p.name for p in (work / "outputs" / "cache" / "MNIST" / "raw").iterdir()} == set(RAW)
    assert len(dm.test_set) == 20


# --- fuzz ---------------------------------------------------------------------------------------------------


def corrupt(blob: bytes, rng: np.random.Generator, headers: list[int] = ()) -> bytes:
    """One random damage: byte flips anywhere or in a header, a truncation, or appended junk."""
    kind = rng.integers(4 if headers else 3)
    b = bytearray(blob)
    if kind == 0:
        for i in rng.integers(0, len(b), rng.integers(1, 9)):
            b[i] = rng.integers(256)
    elif kind == 1:
        del b[rng.integers(0, len(b)) :]
    elif kind == 2:
        b += rng.bytes(int(rng.integers(1, 200)))
    else:  # a header: npy's shape and dtype, or IDX's magic and dims
        start = int(rng.choice(headers))
        for i in start + rng.integers(0, 80, rng.integers(1, 4)):
            if i < len(b):
                b[i] = rng.integers(256)
    return bytes(b)


def rezip(blob: bytes, rng: np.random.Generator, compressed: bool) -> bytes:
    """The npz with one member's bytes damaged but a sound zip around them (good CRCs), so numpy parses them."""
    with zipfile.ZipFile(io.BytesIO(blob)) as z:
        members = {name: z.read(name) for name in z.namelist()}
    victim = str(rng.choice(sorted(members)))
    members[victim] = corrupt(members[victim], rng, [0])
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED if compressed else zipfile.ZIP_STORED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return out.getvalue()


def check_outcome(load, failures: list[str], case: str) -> str | None:
    """A sound load or a one-line UserError (its message is returned); anything else is recorded as a failure."""
    try:
        dm, channels = load()
    except UserError as e:
        if "\n" in str(e) or not str(e):
            failures.append(f"{case}: multi-line or empty message {str(e)!r}")
        return str(e)
    except BaseException as e:  # noqa: BLE001 - the point of the test
        failures.append(f"{case}: {type(e).__name__}: {e}")
        return None
    for x, y in (dm.train_set.tensors, dm.val_set.tensors, dm.test_set.tensors):
        if not (
            x.dtype == torch.uint8
            and x.ndim == 4
            and x.shape[1] == channels
            and y.dtype == torch.int64
            and y.shape == (len(x),)
            and (len(y) == 0 or (0 <= y.min() and y.max() < 10))
        ):
            failures.append(f"{case}: loaded {x.dtype} {tuple(x.shape)} / {y.dtype} {tuple(y.shape)}")
    return None


def test_fuzzed_files_load_soundly_or_fail_with_one_line(tmp_path, monkeypatch):
    """Some 440 damaged files: each loads soundly or fails with a one-line UserError, never another exception."""
    rng = np.random.default_rng(20240607)
    failures: list[str] = []

    # npz through ArraysDataModule.setup, stored and compressed, the train or the test file damaged: half as
    # files (byte flips, npy headers hit, truncation, junk appended), half as members inside a sound zip
    good = {}
    for compressed in (False, True):
        for name, seed in (("tr", 0), ("te", 1)):
            path = write_npz(tmp_path / f"good_{name}_{int(compressed)}.npz", *synthetic_images(20, seed), compressed)
            good[name, compressed] = path.read_bytes()
    for case in range(240):
        compressed, split, inside = bool(case % 2), ("tr", "te")[case // 2 % 2], case // 4 % 2 == 1
        folder = tmp_path / f"npz{case}"
        folder.mkdir()
        for name in ("tr", "te"):
            blob = good[name, compressed]
            if name == split:
                headers = [m.start() for m in re.finditer(rb"\x93NUMPY", blob)]
                blob = rezip(blob, rng, compressed) if inside else corrupt(blob, rng, headers)
            (folder / f"{name}.npz").write_bytes(blob)

        def load_npz(folder=folder):
            dm = ArraysDataModule(str(folder / "tr.npz"), str(folder / "te.npz"), num_classes=10, val_size=5)
            dm.setup()
            return dm, 3

        check_outcome(load_npz, failures, f"npz case {case} ({split}, compressed={compressed}, inside={inside})")

    # raw IDX files in data_dir through PaddedMNISTDataModule.setup
    base = small_mnist(tmp_path / "idx_base") / "MNIST" / "raw"
    for case in range(100):
        data = tmp_path / f"idx{case}"
        shutil.copytree(base, data / "MNIST" / "raw")
        victim = data / "MNIST" / "raw" / RAW[case % 4]
        victim.write_bytes(corrupt(victim.read_bytes(), rng, [0]))

        def load_idx(data=data, case=case):
            dm = mnist_dm(data, tmp_path / f"idx_cache{case}")
            dm.setup()
            return dm, 1

        check_outcome(load_idx, failures, f"idx case {case} ({victim.name})")

    # .gz originals extracted into the cache, in three ways: a damaged .gz with torchvision's md5 (always
    # "corrupt" by its md5); a damaged .gz with the md5 table pointed at it (decompression fails, or yields
    # damaged IDX); a sound gzip of a damaged IDX file, md5 pointed at it (the extracted files' checks)
    base = small_mnist(tmp_path / "gz_base", gz=True) / "MNIST" / "raw"
    for case in range(100):
        data = tmp_path / f"gz{case}"
        shutil.copytree(base, data / "MNIST" / "raw")
        victim, mode = data / "MNIST" / "raw" / (RAW[case % 4] + ".gz"), case % 3
        if mode < 2:
            victim.write_bytes(corrupt(victim.read_bytes(), rng, [0]))
        else:
            victim.write_bytes(gzip.compress(corrupt(gzip.decompress(victim.read_bytes()), rng, [0])))
        point_md5_at(monkeypatch, base if mode == 0 else data / "MNIST" / "raw")

        def load_gz(data=data, case=case):
            dm = mnist_dm(data, tmp_path / f"gz_cache{case}")
            dm.setup()
            return dm, 1

        message = check_outcome(load_gz, failures, f"gz case {case} ({victim.name}, mode {mode})")
        changed = victim.read_bytes() != (base / victim.name).read_bytes()
        if mode == 0 and changed and not (message or "").startswith(f"corrupt {victim}: its md5 is "):
            failures.append(f"gz case {case}: a damaged original not caught by its md5: {message}")

    assert not failures, "\n".join(failures[:20])


def test_a_download_goes_to_the_cache_and_never_into_data_dir(tmp_path, monkeypatch):
    data = small_mnist(tmp_path / "data", gz=True)
    (data / "MNIST" / "raw" / "t10k-labels-idx1-ubyte.gz").unlink()  # one original missing: a download is due
    before = {p: p.read_bytes() for p in data.rglob("*") if p.is_file()}
    roots = []

    def offline(self):
        roots.append(Path(self.root))
        raise RuntimeError("Error downloading t10k-labels-idx1-ubyte.gz")

    monkeypatch.setattr(MNIST, "download", offline)
    with pytest.raises(UserError) as e:
        mnist_dm(data, tmp_path / "cache", download=True).setup()
    assert roots == [tmp_path / "cache"], "torchvision downloads and extracts into the cache"
    assert one_line(e).startswith(f"could not download MNIST into {tmp_path / 'cache' / 'MNIST' / 'raw'}")
    assert {p: p.read_bytes() for p in data.rglob("*") if p.is_file()} == before


# --- CIFAR-10: the original archive and downloads go to the cache ------------------------------------------


def cifar_archive(data: Path, pickles: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """`data/cifar-10-python.tar.gz` holding `pickles`' cifar-10-batches-py/ (the real archive's layout), with
    torchvision's md5 for the archive pointed at it."""
    import tarfile

    data.mkdir(parents=True, exist_ok=True)
    archive = data / CIFAR10.filename
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(pickles / CIFAR10.base_folder, arcname=CIFAR10.base_folder)
    monkeypatch.setattr(CIFAR10, "tgz_md5", hashlib.md5(archive.read_bytes()).hexdigest())
    return archive


def test_the_cifar_archive_is_extracted_into_the_cache_once_and_data_dir_is_untouched(
    tmp_path, cifar_pickle_dir, monkeypatch
):
    data, cache = tmp_path / "shared", tmp_path / "cache"
    cifar_archive(data, cifar_pickle_dir, monkeypatch)
    before = tree(data)
    dm = CIFAR10DataModule(str(data), cache_dir=str(cache), download=False, val_size=5)
    dm.setup()
    assert tree(data) == before, "nothing written under data_dir"
    assert sorted(p.name for p in cache.iterdir()) == [CIFAR10.base_folder], "no temporary folder left"
    assert (len(dm.train_set), len(dm.test_set)) == (245, 50)
    assert dm.split_files(train=False) == (str(data / CIFAR10.filename),) * 2

    from reprog.predict import read_images  # predict reads it the same way, into its own cache_dir=

    x, _ = read_images("cifar10", str(data), str(tmp_path / "predict_cache"))
    assert torch.equal(x, dm.test_set.tensors[0]) and tree(data) == before

    monkeypatch.setattr(CIFAR10DataModule, "_extract", lambda self: pytest.fail("extracted again"))
    again = CIFAR10DataModule(str(data), cache_dir=str(cache), download=False, val_size=5)
    again.setup()
    assert torch.equal(again.test_set.tensors[0], dm.test_set.tensors[0])


def test_a_corrupt_cifar_archive_is_named_and_nothing_is_left_half_extracted(tmp_path, cifar_pickle_dir, monkeypatch):
    data, cache = tmp_path / "shared", tmp_path / "cache"
    archive = cifar_archive(data, cifar_pickle_dir, monkeypatch)
    blob = bytearray(archive.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    archive.write_bytes(bytes(blob))
    before = tree(data)
    with pytest.raises(UserError) as e:
        CIFAR10DataModule(str(data), cache_dir=str(cache), download=False, val_size=5).setup()
    assert one_line(e) == (
        f"corrupt {archive}: its md5 is {hashlib.md5(blob).hexdigest()}, but the original's is {CIFAR10.tgz_md5}; "
        f"replace it with the original {CIFAR10.filename}"
    )
    assert tree(data) == before and not (cache / CIFAR10.base_folder).exists()


def test_a_cifar_download_goes_to_the_cache_and_never_into_data_dir(tmp_path, monkeypatch):
    data, cache = tmp_path / "data", tmp_path / "cache"
    data.mkdir()
    roots = []

    def offline(self):
        roots.append(Path(self.root))
        raise RuntimeError("Error downloading cifar-10-python.tar.gz")

    monkeypatch.setattr(CIFAR10, "download", offline)
    with pytest.raises(UserError) as e:
        CIFAR10DataModule(str(data), cache_dir=str(cache), download=True, val_size=5).setup()
    assert roots == [cache], "torchvision downloads and extracts into the cache"
    assert one_line(e).startswith(f"could not download CIFAR-10 into {cache / CIFAR10.base_folder} (RuntimeError")
    assert list(data.iterdir()) == []


def test_the_cifar_configs_extract_into_paths_cache_dir(tmp_path):
    from conftest import compose_train
    from hydra.utils import instantiate

    for overrides in (["data=cifar10"], ["experiment=reprogram_imagenet_cifar10"]):
        cfg = compose_train(tmp_path, tmp_path / "data", overrides)
        assert cfg.data.cache_dir == str(tmp_path / "cache")  # REPROG_CACHE_DIR, set for every test
        dm = instantiate(cfg.data)
        assert (getattr(dm, "source", dm)).cache_dir == tmp_path / "cache"
