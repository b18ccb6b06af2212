"""`python -m reprog.predict`: it only reads the data folder, and bad arguments get one error line."""

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, synthetic_digits, write_mnist
from torchvision.datasets import MNIST

from reprog.label_mapping import build_label_map
from reprog.placement import Placement
from reprog.predict import main
from reprog.program import build_program
from reprog.program_io import save_program


@pytest.fixture
def program_file(tmp_path: Path, victim_file: Path) -> Path:
    """An untrained program for `victim_file`, saved as a reprogramming run would."""
    victim = json.loads(victim_file.with_suffix(".json").read_text())
    program = build_program("masked", Placement.make(32, 14))
    return save_program(
        tmp_path / "run" / "program.safetensors",
        program,
        build_label_map("first_k", 10, 10),
        {"sha256": victim["sha256"], "model": victim["model"]},
    )


@pytest.fixture
def digits_npz(tmp_path: Path) -> Path:
    x, y = synthetic_digits(30)
    np.savez(tmp_path / "digits.npz", x=x, y=y)
    return tmp_path / "digits.npz"


def snapshot(folder: Path) -> dict[str, tuple[int, str]]:
    """Every path under `folder` with its size and content hash."""
    return {
        str(p.relative_to(folder)): (p.lstat().st_size, hashlib.md5(p.read_bytes()).hexdigest() if p.is_file() else "")
        for p in sorted(folder.rglob("*"))
    }


def test_mnist_gz_originals_are_extracted_into_cache_dir_and_data_dir_is_untouched(
    tmp_path, monkeypatch, capsys, program_file, victim_file
):
    data = write_mnist(tmp_path / "shared", n_train=60, n_test=40, gz=True)
    raw = data / "MNIST" / "raw"
    md5 = {f.name: hashlib.md5(f.read_bytes()).hexdigest() for f in raw.iterdir()}
    monkeypatch.setattr(MNIST, "resources", [(name, md5[name]) for name, _ in MNIST.resources])
    before = snapshot(data)
    main(
        [
            f"program={program_file}",
            f"victim={victim_file}",
            "images=mnist",
            f"data_dir={data}",
            f"cache_dir={tmp_path / 'cache'}",
            "show=5",
        ]
    )
    out = capsys.readouterr().out
    assert "accuracy: " in out and "on 40 images" in out and len(out.splitlines()[0].split()) == 1 + 5 + 1
    assert snapshot(data) == before
    assert (tmp_path / "cache" / "MNIST" / "raw" / "t10k-images-idx3-ubyte").is_file()


def test_cache_dir_defaults_to_the_env_variable_training_uses(tmp_path, monkeypatch, program_file, victim_file):
    data = write_mnist(tmp_path / "shared", n_train=60, n_test=40, gz=True)
    md5 = {f.name: hashlib.md5(f.read_bytes()).hexdigest() for f in (data / "MNIST" / "raw").iterdir()}
    monkeypatch.setattr(MNIST, "resources", [(name, md5[name]) for name, _ in MNIST.resources])
    monkeypatch.setenv("REPROG_DATA_DIR", str(data))
    monkeypatch.setenv("REPROG_CACHE_DIR", str(tmp_path / "env_cache"))
    before = snapshot(data)
    main([f"program={program_file}", f"victim={victim_file}", "images=mnist"])
    assert snapshot(data) == before and (tmp_path / "env_cache" / "MNIST" / "raw" / "t10k-labels-idx1-ubyte").is_file()


def bad_npz(tmp_path: Path, name: str, **arrays) -> str:
    np.savez(tmp_path / f"{name}.npz", **arrays)
    return f"images={tmp_path / f'{name}.npz'}"


def test_bad_arguments_are_one_error_line(tmp_path, program_file, victim_file, digits_npz, capsys):
    x, y = synthetic_digits(5)
    ok = [f"program={program_file}", f"victim={victim_file}", f"images={digits_npz}"]
    cases = {
        "batch_size=abc": "batch_size='abc' is not a whole number ≥ 1; e.g. batch_size=512",
        "batch_size=0": "batch_size=0 is not a whole number ≥ 1",
        "batch_size=2.5": "batch_size=2.5 is not a whole number ≥ 1",
        "show=-1": "show=-1 is not a whole number ≥ 0; e.g. show=20",
        f"program={program_file.parent}": f"program={program_file.parent} is a folder; pass {program_file}",
        f"victim={victim_file.parent}": f"victim={victim_file.parent} is a folder; pass {victim_file}",
        f"images={tmp_path}": f"images={tmp_path} is a folder; pass an .npz file",
        bad_npz(tmp_path, "float", x=x.astype(np.float32)): "x is float32 (5, 28, 28); expected uint8",
        bad_npz(tmp_path, "two", x=np.zeros((5, 28, 28, 2), np.uint8)): "x is uint8 (5, 28, 28, 2); expected uint8",
        "precision=16-mixed": "precision='16-mixed': choose one of 32-true, bf16-mixed",
        bad_npz(tmp_path, "flat", x=x.reshape(5, -1)): "x is uint8 (5, 784); expected",
        bad_npz(tmp_path, "yfloat", x=x, y=y.astype(np.float32)): "labels y are float32; expected integers",
        bad_npz(tmp_path, "ylen", x=x, y=y[:3]): "labels y have shape (3,) for 5 images",
        bad_npz(tmp_path, "none", x=x[:0], y=y[:0]): "holds no images; give at least one",
        bad_npz(tmp_path, "y42", x=x, y=np.full(5, 42)): "has labels 42..42, but the program has 10 classes (0..9)",
        bad_npz(tmp_path, "nox", y=y): "cannot read images",
        "images": "argument 'images' is not key=value; usage: python -m reprog.predict",
        "colour=red": "unknown setting 'colour'; known: program, victim, images, data_dir, cache_dir",
        "images=[1,": "cannot parse 'images=[1,' (ParserError",
        "program=${oc.env:REPROG_NO_SUCH_VARIABLE}": "cannot resolve program= (InterpolationResolutionError",
        "program=": "program= is empty; give a path, e.g. program=<run>/program.safetensors",
        f"images=mnist data_dir={tmp_path}": "images=mnist: no MNIST found",
    }
    for arg, expected in cases.items():
        with pytest.raises(SystemExit) as info:
            main([*ok, *arg.split(" ")])
        message = str(info.value.code)
        assert message.startswith("error: ") and "\n" not in message and expected in message, (arg, message)
    with pytest.raises(SystemExit, match=r"^error: victim=\.\.\. is required"):
        main([f"program={program_file}", f"images={digits_npz}"])
    assert not capsys.readouterr().out


def test_an_npz_is_classified_in_batches(program_file, victim_file, digits_npz, capsys):
    main([f"program={program_file}", f"victim={victim_file}", f"images={digits_npz}", "batch_size=7", "show=0"])
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["predictions:", "…"]
    assert out[1].startswith("accuracy: ") and out[1].endswith("on 30 images")


def test_the_cli_gives_one_error_line_without_traceback(tmp_path, program_file, victim_file):
    cmd = [
        sys.executable,
        "-m",
        "reprog.predict",
        f"program={program_file}",
        f"victim={victim_file}",
        f"images={tmp_path}",
    ]
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1 and not result.stdout
    assert result.stderr.splitlines() == [
        f"error: images={tmp_path} is a folder; pass an .npz file with x uint8 "
        "(N, H, W[, C]), or images=mnist or images=cifar10"
    ]


def test_a_corrupt_gz_keeps_its_replace_it_advice(tmp_path, monkeypatch, program_file, victim_file):
    data = write_mnist(tmp_path / "shared", n_train=60, n_test=40, gz=True)
    raw = data / "MNIST" / "raw"
    md5 = {f.name: hashlib.md5(f.read_bytes()).hexdigest() for f in raw.iterdir()}
    monkeypatch.setattr(MNIST, "resources", [(name, md5[name]) for name, _ in MNIST.resources])
    bad = raw / "t10k-labels-idx1-ubyte.gz"
    bad.write_bytes(bad.read_bytes()[:-9])
    before = snapshot(data)
    with pytest.raises(SystemExit) as info:
        main([f"program={program_file}", f"victim={victim_file}", "images=mnist", f"data_dir={data}"])
    assert str(info.value.code).startswith(
        f"error: images=mnist: corrupt {bad}: its md5 is {hashlib.md5(bad.read_bytes()).hexdigest()}, but the "
        f"original's is {md5[bad.name]}; replace it with the original {bad.name}"
    ), info.value.code
    assert snapshot(data) == before


def test_in_the_default_layout_predict_writes_nothing_into_data(tmp_path, monkeypatch, program_file, victim_file):
    work = tmp_path / "work"  # ./data as data_dir, no REPROG_* variables: the cache is ./outputs/cache
    data = write_mnist(work / "data", n_train=60, n_test=40, gz=True)
    md5 = {f.name: hashlib.md5(f.read_bytes()).hexdigest() for f in (data / "MNIST" / "raw").iterdir()}
    monkeypatch.setattr(MNIST, "resources", [(name, md5[name]) for name, _ in MNIST.resources])
    monkeypatch.delenv("REPROG_DATA_DIR", raising=False)
    monkeypatch.delenv("REPROG_CACHE_DIR", raising=False)
    monkeypatch.chdir(work)
    before = snapshot(data)
    main([f"program={program_file}", f"victim={victim_file}", "images=mnist"])
    assert snapshot(data) == before
    assert (work / "outputs" / "cache" / "MNIST" / "raw" / "t10k-images-idx3-ubyte").is_file()


def test_a_program_that_holds_nan_is_refused_not_answered_with_one_class(tmp_path, victim_file, digits_npz):
    import torch

    victim = json.loads(victim_file.with_suffix(".json").read_text())
    program = build_program("masked", Placement.make(32, 14))
    with torch.no_grad():
        program.W.fill_(float("nan"))  # what a diverged run exported before it was stopped
    path = save_program(
        tmp_path / "nan" / "program.safetensors",
        program,
        build_label_map("first_k", 10, 10),
        {"sha256": victim["sha256"], "model": victim["model"]},
    )
    with pytest.raises(SystemExit) as info:
        main([f"program={path}", f"victim={victim_file}", f"images={digits_npz}"])
    assert info.value.code == (
        f"error: program {path} holds NaN or inf (program W): the run that made it diverged; train it again with a "
        "lower learning rate (optimizer.lr)"
    )
