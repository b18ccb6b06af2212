"""The GPU check, in its tiny CPU mode, so the script cannot rot before a GPU is lent; and what it carries."""

import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT, bench_script, write_cifar_npz, write_mnist

gpu_carry = bench_script("gpu_carry")


@pytest.fixture(scope="module")
def wheels(tmp_path_factory):
    """`make gpu-wheels` into a temporary folder: Python 3.12 wheels from the registry, antlr built here."""
    out = tmp_path_factory.mktemp("whl")
    gpu_carry.wheels(out)
    return out


def test_the_carried_wheels_are_the_pinned_versions(wheels):
    found, pinned = gpu_carry.wheel_versions(wheels), gpu_carry.pins()
    assert set(found) == {"hydra-core", "omegaconf", "antlr4-python3-runtime"}
    assert all(found[name] == pinned[name] for name in found)
    assert all(w.name.endswith("-py3-none-any.whl") for w in wheels.glob("*.whl")), "pure Python: any 3.x"


@pytest.mark.slow  # 45 s: five child runs; `make test-all`, and before every GPU check
def test_tiny_mode_runs_every_part_and_writes_json_and_markdown(tmp_path, wheels):
    data = write_cifar_npz(tmp_path / "data")
    write_mnist(data, n_train=5200)  # the suite's program loop holds out the config's 5,000 validation digits
    out = tmp_path / "out"
    cmd = [
        sys.executable,
        "bench/gpu_check.py",
        "--mode",
        "tiny",
        "--wheels",
        str(wheels),
        "--data",
        str(data),
        "--out",
        str(out),
    ]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results = json.loads((out / "gpu_check.json").read_text())
    assert {name: part["status"] for name, part in results["parts"].items()} == {
        "victim": "ok",
        "program": "ok",
        "suite": "ok",
        "study": "ok",
        "study_banked": "ok",
        "imagenet": "ok",
        "imagenet_counting": "ok",
        "imagenet_cifar10": "ok",
    }, results["parts"]
    assert results["wheels"]["match_constraints"]
    assert len(results["parts"]["victim"]["epochs"]) == 2 and 0 <= results["parts"]["program"]["test_acc"] <= 1
    assert results["parts"]["suite"]["results"][0]["loop"] == "program"
    assert results["parts"]["study"]["completed"] == results["parts"]["study"]["jobs"] == 1
    banked = results["parts"]["study_banked"]
    assert banked["completed"] == banked["jobs"] == banked["banked"] == 2 and banked["with_victim_s"] > 0
    table = (out / "gpu_check.md").read_text()
    assert "| victim | ok |" in table and "| study | ok |" in table and "| study_banked | ok |" in table


def test_wheels_that_differ_from_the_pins_are_refused(tmp_path, wheels):
    import shutil

    odd = tmp_path / "odd"
    odd.mkdir()
    for w in wheels.glob("*.whl"):
        shutil.copy(w, odd / w.name.replace("hydra_core-1.3.8", "hydra_core-1.3.2"))
    gpu_check = bench_script("gpu_check")
    with pytest.raises(SystemExit, match="differ from constraints.txt.*hydra-core"):
        gpu_check.install_wheels(odd, {})


def test_the_data_travels_in_parts_that_fit_a_call_and_join_again(tmp_path, monkeypatch):
    data = write_cifar_npz(tmp_path / "data", n_train=500, n_test=50)
    write_mnist(data, gz=True)
    monkeypatch.setattr(gpu_carry, "PART_MIB", 0.5)  # 170 images of 3 KiB a part, so the train set takes three
    gpu_carry.data(data, tmp_path / "parts")
    parts = sorted((tmp_path / "parts").iterdir())
    assert len(parts) >= 4 and all(sum(f.stat().st_size for f in p.iterdir()) <= 0.5 * 2**20 + 2**16 for p in parts[:3])
    joined = gpu_carry.assemble(tmp_path / "parts", tmp_path / "joined")
    for split in ("train", "test"):
        with np.load(data / "cifar10" / f"{split}.npz") as a, np.load(joined / "cifar10" / f"{split}.npz") as b:
            assert np.array_equal(a["x"], b["x"]) and np.array_equal(a["y"], b["y"])
    assert sorted(p.name for p in (joined / "MNIST" / "raw").iterdir()) == sorted(
        p.name for p in (data / "MNIST" / "raw").glob("*.gz")
    )
