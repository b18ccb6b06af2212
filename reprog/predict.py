"""Classify images through a victim with a learned program.

    python -m reprog.predict program=<run>/program.safetensors victim=<victim run>/victim.safetensors \
        images=digits.npz          # an array .npz: x uint8 (N, H, W[, C]), C = 1 or 3, y optional
    python -m reprog.predict program=... victim=... images=mnist   # MNIST test set under data_dir
    python -m reprog.predict program=... victim=... images=cifar10 # CIFAR-10 test set under data_dir
    python -m reprog.predict program=... victim=pretrained images=mnist   # a pretrained victim (efficientnet_lite0)

Settings (key=value): program, victim, images (required); data_dir (env REPROG_DATA_DIR, default data),
cache_dir (env REPROG_CACHE_DIR, default outputs/cache: where MNIST's .gz originals and CIFAR-10's archive are
extracted, so data_dir is only read), batch_size (512), show (20: predictions printed), precision (32-true, or
bf16-mixed as the ImageNet experiments train and test).

Prints the accuracy (when labels are given) and the first predictions. A program made for another
victim is refused: its metadata holds the sha256 of the victim it was trained on.
"""

import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from reprog.data.cifar10 import CIFAR10DataModule
from reprog.data.mnist import PaddedMNISTDataModule
from reprog.data.target_images import RESIZE, resize, to_canvas
from reprog.errors import UserError, brief
from reprog.models.frozen import FrozenVictim, load_frozen_victim
from reprog.program_io import LoadedProgram, load_program

DEFAULTS = {
    "program": "???",
    "victim": "???",
    "images": "???",
    "data_dir": "${oc.env:REPROG_DATA_DIR,data}",
    "cache_dir": "${oc.env:REPROG_CACHE_DIR,outputs/cache}",
    "batch_size": 512,
    "show": 20,
    "precision": "32-true",
}
PRECISIONS = ("32-true", "bf16-mixed")  # Lightning's names: fp32, or bf16 autocast
USAGE = "usage: python -m reprog.predict program=P victim=V images=I"
EXAMPLES = {
    "program": "<run>/program.safetensors",
    "victim": "<victim run>/victim.safetensors",
    "images": "digits.npz or images=mnist",
    "data_dir": "data",
    "cache_dir": "outputs/cache",
}
HOLDS = {  # where data_dir= must point for a data set named by images=
    "mnist": "the folder that holds MNIST/raw/",
    "cifar10": "the folder that holds cifar10/test.npz, cifar-10-batches-py/ or cifar-10-python.tar.gz",
}


def read_images(images: str, data_dir: str, cache_dir: str | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Images as uint8 (N, C, H, W), C = 1 or 3, and labels if present; nothing is written under `data_dir`.

    MNIST's .gz originals and CIFAR-10's original archive are extracted into `cache_dir` (default: env
    REPROG_CACHE_DIR, else outputs/cache).
    """
    if images in HOLDS:
        return _read_named(images, data_dir, cache_dir)
    if Path(images).is_dir():
        raise UserError(
            f"images={images} is a folder; pass an .npz file with x uint8 (N, H, W[, C]), or "
            "images=mnist or images=cifar10"
        )
    x, y = _read_npz(images)
    channels_first = (x if x.ndim == 4 else x[..., None]).transpose(0, 3, 1, 2).copy()
    return torch.from_numpy(channels_first), (torch.from_numpy(y.astype(np.int64)) if y is not None else None)


def _read_named(images: str, data_dir: str, cache_dir: str | None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The test split of the data set `images` names, read by its data module from `data_dir`."""
    try:
        if images == "mnist":
            return PaddedMNISTDataModule(data_dir, cache_dir=cache_dir, download=False).raw_split(train=False)
        return CIFAR10DataModule(data_dir, cache_dir=cache_dir, download=False).load_split(train=False)
    except UserError as e:  # its hint names training's settings; name ours (a corrupt file keeps its own advice)
        what = str(e) if str(e).startswith("corrupt") else str(e).rsplit("; ", 1)[0]
        raise UserError(f"images={images}: {what}; point data_dir= (env REPROG_DATA_DIR) at {HOLDS[images]}") from e


def _read_npz(images: str) -> tuple[np.ndarray, np.ndarray | None]:
    """The .npz file's x (uint8 (N, H, W) or (N, H, W, C), C = 1 or 3) and its labels y, if it has them."""
    try:
        with np.load(images, allow_pickle=False) as f:
            x, y = f["x"], (f["y"] if "y" in f.files else None)
    except Exception as e:
        raise UserError(
            f"cannot read images {images} ({brief(e)}); give an .npz with x uint8 "
            "(N, H, W) or (N, H, W, C) and optional labels y, or images=mnist or images=cifar10"
        ) from e
    if x.dtype != np.uint8 or x.ndim not in (3, 4) or (x.ndim == 4 and x.shape[-1] not in (1, 3)) or 0 in x.shape[1:]:
        raise UserError(
            f"images {images}: x is {x.dtype} {x.shape}; expected uint8 (N, H, W), (N, H, W, 1) or (N, H, W, 3)"
        )
    if y is not None:
        _check_labels(images, y, len(x))
    return x, y


def _check_labels(images: str, y: np.ndarray, n: int) -> None:
    """One integer label per image, or one line saying what the file holds instead."""
    if not np.issubdtype(y.dtype, np.integer):
        raise UserError(
            f"images {images}: labels y are {y.dtype}; expected integers, one per image (or save the .npz without y)"
        )
    if y.shape != (n,):
        raise UserError(
            f"images {images}: labels y have shape {y.shape} for {n} images; "
            "expected one integer label per image (or save the .npz without y)"
        )


def load(program_path: str, victim_path: str) -> tuple[LoadedProgram, FrozenVictim]:
    """The program and its victim, checked to belong together (before any image is read)."""
    loaded = load_program(program_path)
    bad = non_finite({"program": loaded.program, "label map": loaded.label_map})
    if bad:  # it would answer one class for every image, without a word
        raise UserError(
            f"program {program_path} holds NaN or inf ({', '.join(bad[:3])}): the run that made it diverged; train "
            "it again with a lower learning rate (optimizer.lr)"
        )
    if victim_path == "pretrained":  # rebuilt from the spec the program recorded; the sha256 check still holds
        victim = load_frozen_victim(None, model=loaded.meta["victim"]["model"])
    else:
        victim = load_frozen_victim(victim_path)
    if victim.sha256 != loaded.victim_sha256:
        raise UserError(
            f"program {program_path} was made for victim sha256 {loaded.victim_sha256[:12]}…, but "
            f"{victim_path} is {victim.sha256[:12]}…; pass the victim it was trained on"
        )
    if bad := non_finite({"victim": victim}):
        raise UserError(
            f"victim {victim_path} holds NaN or inf ({', '.join(bad[:3])}): the run that made it diverged; train "
            "it again with a lower learning rate (optimizer.lr)"
        )
    resized = loaded.meta.get("target", {}).get("resize", RESIZE)
    if resized != RESIZE:
        raise UserError(
            f"program {program_path} was trained on target images resized with {resized!r}, but this "
            f"reprog resizes with {RESIZE!r}; use the reprog version that made it"
        )
    return loaded, victim


def non_finite(modules: dict[str, torch.nn.Module]) -> list[str]:
    """`<what> <tensor name>` for each floating-point tensor of the modules that holds NaN or inf."""
    return [
        f"{what} {name}"
        for what, module in modules.items()
        for name, tensor in module.state_dict().items()
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all())
    ]


@torch.inference_mode()
def classify(
    loaded: LoadedProgram, victim: FrozenVictim, images: torch.Tensor, batch_size: int = 512, precision: str = "32-true"
) -> torch.Tensor:
    """Target-class predictions for uint8 (N, C, H, W) images, C = 1 (grey, replicated) or the program's channels."""
    placement, channels = loaded.program.placement, loaded.program.channels
    if images.shape[1] not in (1, channels):
        raise UserError(
            f"the images have {images.shape[1]} channels; this program takes grey images or {channels}-channel ones"
        )
    images = resize(images, placement.size)
    with torch.autocast("cpu", torch.bfloat16, enabled=precision == "bf16-mixed"):
        preds = [
            loaded.label_map(victim(loaded.program(to_canvas(chunk, placement, channels)))).argmax(1)
            for chunk in images.split(batch_size)
        ]
    return torch.cat(preds)


def predict(
    program_path: str, victim_path: str, images: torch.Tensor, batch_size: int = 512, precision: str = "32-true"
) -> torch.Tensor:
    """Target-class predictions for uint8 (N, C, H, W) images, from the program and victim files."""
    return classify(*load(program_path, victim_path), images, batch_size, precision)


def settings(argv: list[str]) -> DictConfig:
    """The command line as a checked config: every mistake in it is a UserError naming the argument."""
    cfg = OmegaConf.create(DEFAULTS)
    for arg in argv:
        key = arg.split("=", 1)[0]
        if "=" not in arg or not key:
            raise UserError(f"argument {arg!r} is not key=value; {USAGE} (settings: {', '.join(DEFAULTS)})")
        if key not in DEFAULTS:
            raise UserError(f"unknown setting {key!r}; known: {', '.join(DEFAULTS)}")
        try:
            cfg.merge_with(OmegaConf.from_dotlist([arg]))
        except Exception as e:  # OmegaConf's own errors, and YAML's for values such as `[1,`
            raise UserError(f"cannot parse {arg!r} ({brief(e, 160)}); write plain key=value, quoting odd values") from e
    for key in ("program", "victim", "images"):
        if OmegaConf.is_missing(cfg, key):
            raise UserError(f"{key}=... is required; {USAGE}")
    for key in ("program", "victim", "images", "data_dir", "cache_dir"):
        try:
            value = cfg[key]  # resolves interpolations such as ${oc.env:...}
        except OmegaConfBaseException as e:
            raise UserError(
                f"cannot resolve {key}= ({brief(e, 160)}); fix the ${{...}} it uses, or give {key}= a plain value"
            ) from e
        if value is None or str(value) == "":
            raise UserError(f"{key}= is empty; give a path, e.g. {key}={EXAMPLES[key]}")
        if OmegaConf.is_config(value):
            raise UserError(f"{key}={_shown(value)} is not a path; give one, e.g. {key}={EXAMPLES[key]}")
        cfg[key] = str(value)
    for key, low, meaning in (("batch_size", 1, "a whole number ≥ 1"), ("show", 0, "a whole number ≥ 0")):
        if type(cfg[key]) is not int or cfg[key] < low:
            raise UserError(f"{key}={_shown(cfg[key])} is not {meaning}; e.g. {key}={DEFAULTS[key]}")
    if cfg.precision not in PRECISIONS:
        raise UserError(f"precision={_shown(cfg.precision)}: choose one of {', '.join(PRECISIONS)}")
    for key, file in (("program", "program.safetensors"), ("victim", "victim.safetensors")):
        if Path(cfg[key]).is_dir():
            inside = Path(cfg[key]) / file
            hint = f"pass {inside}" if inside.is_file() else f"pass the {file} file written by a run"
            raise UserError(f"{key}={cfg[key]} is a folder; {hint}")
    return cfg


def _shown(value: Any) -> str:
    return repr(OmegaConf.to_container(value) if OmegaConf.is_config(value) else value)


def help_asked(argv: list[str], doc: str | None) -> bool:
    """Whether a key=value command line asks only for help (-h or --help); if so, `doc` is printed."""
    if argv in (["-h"], ["--help"]):
        print(doc)
        return True
    return False


def main(argv: list[str]) -> None:
    if help_asked(argv, __doc__):
        return
    try:
        cfg = settings(argv)
        loaded, victim = load(cfg.program, cfg.victim)
        x, y = read_images(cfg.images, cfg.data_dir, cfg.cache_dir)
        if len(x) == 0:
            raise UserError(f"images={cfg.images} holds no images; give at least one")
        targets = loaded.label_map.num_targets
        if y is not None and len(y) and (int(y.min()) < 0 or int(y.max()) >= targets):
            raise UserError(
                f"images={cfg.images} has labels {int(y.min())}..{int(y.max())}, but the program has "
                f"{targets} classes (0..{targets - 1}); fix the labels, or save the .npz without y"
            )
        preds = classify(loaded, victim, x, cfg.batch_size, cfg.precision)
    except UserError as e:
        raise SystemExit(f"error: {e}") from None
    except OmegaConfBaseException as e:
        raise SystemExit(f"error: bad settings ({brief(e, 200)}); {USAGE}") from None
    print("predictions:", " ".join(map(str, preds[: cfg.show].tolist())), "…" if len(preds) > cfg.show else "")
    if y is not None:
        print(f"accuracy: {(preds == y).float().mean().item():.4f} on {len(y)} images")


if __name__ == "__main__":
    main(sys.argv[1:])
