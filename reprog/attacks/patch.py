"""`Patch`: an adversarial patch (Brown et al. 2017): one image region, the same for every input, that turns any
image it is stuck on into the target class, wherever it lands, at any angle and size.

Learned by Adam with EOT over placement (`reprog.transforms.paste`: position, rotation within `degrees`, zoom in
`scale`), plus the world's transform when `eot_samples` is set, on `fit_size` training images; at test time it is
pasted onto held-out images at random placements from the attack's seeded generator. `size` is the patch's share
of the image area in percent; `shape` is square or circle. `save` writes `<key>.safetensors` + `.json` (the patch,
its mask, and every setting needed to re-apply it, as a program is shared), which `python -m reprog.patch_predict`
applies.
"""

from pathlib import Path
from typing import Any

import torch
from torch import nn

from reprog.artifacts import check_shapes, read_artifact, save_artifact
from reprog.attacks.attack import ATTACKS, Attack, gradients_for
from reprog.domains import INT_0, INT_1, NON_NEGATIVE, POSITIVE, check
from reprog.errors import UserError, brief
from reprog.transforms import Transform, build_transform, paste, patch_side, shape_mask
from reprog.transforms.transform import check_range

SHAPES = ("square", "circle")
HINT = "train one with `python train.py experiment=attack_patch victim.ckpt_path=<victim>`"


@ATTACKS.register("patch")
class Patch(Attack):
    fit_on = "train"
    bounded = False
    target: int | None  # one class for every image, or None (untargeted)
    meta: dict[str, Any]  # the saved metadata, on a patch from `load_patch`

    def __init__(
        self,
        model: nn.Module,
        target: int | None = 0,
        size: float = 10.0,
        shape: str = "square",
        degrees: float = 22.5,
        scale: tuple[float, float] = (0.8, 1.2),
        epochs: int = 5,
        lr: float = 0.05,
        batch_size: int = 128,
        fit_size: int = 0,
        seed: int | None = 0,
        eot_samples: int | None = None,
        transform: Transform | None = None,
    ) -> None:
        if target is not None and (isinstance(target, bool) or not isinstance(target, int)):
            raise UserError(f"a patch aims every image at one class: target must be an int or null, not {target!r}")
        if isinstance(size, bool) or not isinstance(size, (int, float)) or not 0 < size <= 100:
            raise UserError(f"patch size={size!r}: it is a percentage of the image area, so 0 < size <= 100")
        if shape not in SHAPES:
            raise UserError(f"patch shape={shape!r}: choose one of {', '.join(SHAPES)}")
        super().__init__(model, target, seed, eot_samples, transform)
        check(self.kind, locals(), degrees=NON_NEGATIVE, epochs=INT_1, lr=POSITIVE, batch_size=INT_1, fit_size=INT_0)
        self.size, self.shape, self.degrees = float(size), shape, float(degrees)
        self.scale = check_range("scale", scale, 0.05, 10.0)
        self.epochs, self.lr, self.batch_size, self.fit_size = epochs, lr, batch_size, fit_size
        self.patch: torch.Tensor | None = None
        self.mask: torch.Tensor | None = None
        self.image_shape: tuple[int, ...] = ()

    def side(self, height: int, width: int) -> int:
        """The patch's side in pixels on an image of this size; refused when it cannot fit inside it."""
        side = patch_side(self.size, height, width)
        if side * self.scale[1] > min(height, width):
            raise UserError(
                f"patch size={self.size:g}% is {side} px a side, {side * self.scale[1]:.0f} px at scale "
                f"{self.scale[1]:g}: larger than the {height}x{width} image; lower size or scale"
            )
        return side

    def stick(self, images: torch.Tensor, patch: torch.Tensor) -> torch.Tensor:
        assert self.mask is not None, "fit or load_patch sets the mask"
        return paste(
            images, patch, self.mask.to(patch), self.generator or torch.default_generator, self.degrees, self.scale
        )

    def fit(self, images: torch.Tensor, labels: torch.Tensor) -> "Patch":
        """Learn the patch on `images` (N, C, H, W) in [0, 1]."""
        channels, height, width = images.shape[1:]
        side = self.side(height, width)
        self.image_shape = (channels, height, width)
        generator = self.generator or torch.default_generator
        self.curve = []
        with gradients_for(self.model):  # eval mode; autograd on inside a Lightning test loop too
            self.mask = shape_mask(side, self.shape).to(images.device)
            patch = torch.rand(channels, side, side, generator=generator).to(images.device).requires_grad_(True)
            optimizer = torch.optim.Adam([patch], lr=self.lr)
            for _ in range(self.epochs):
                order = torch.randperm(len(images), generator=generator).to(images.device)
                for idx in order.split(self.batch_size):
                    x, y = self.stick(images[idx].clone(), patch), labels[idx].clone()
                    goal = torch.full_like(y, self.target) if self.target is not None else y
                    x, goal = self.through_world(x, goal)  # and through the world's transform, under EOT
                    logits = self.model(x)
                    loss = -self.loss(logits, goal).mean()
                    self.check_fit_loss(loss, len(self.curve))
                    (patch.grad,) = torch.autograd.grad(loss, [patch])
                    optimizer.step()
                    with torch.no_grad():
                        patch.clamp_(0, 1)
                    self.curve.append(
                        {"step": len(self.curve) + 1, "success": float(self.succeeded(logits, goal).float().mean())}
                    )
        self.check_fit_weights([("patch", patch)], len(self.curve))
        self.patch = patch.detach()
        return self

    def perturb(self, images: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
        if self.patch is None:
            raise RuntimeError("Patch.fit(images, labels) learns the patch; call it (or load_patch) before attacking")
        if tuple(images.shape[1:]) != self.image_shape:
            raise UserError(f"this patch was made for {list(self.image_shape)} images, not {list(images.shape[1:])}")
        with torch.no_grad():
            return self.stick(images, self.patch.to(images))

    def picture(self) -> torch.Tensor | None:
        if self.patch is None:
            return None
        assert self.mask is not None  # set with the patch
        return (self.patch * self.mask).cpu()

    def settings(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "size": self.size,
            "shape": self.shape,
            "degrees": self.degrees,
            "scale": list(self.scale),
            "seed": None if self.generator is None else self.generator.initial_seed(),
        }

    def save(self, path: Path) -> Path | None:
        """`<path>.safetensors` (+ `.json`): the patch, its mask, and the victim and placement it was made for."""
        if self.patch is None:
            return None
        assert self.mask is not None  # set with the patch
        meta = {
            "attack": "patch",
            "patch": self.settings(),
            "image": list(self.image_shape),
            "victim": {"sha256": getattr(self.model, "sha256", None), "model": getattr(self.model, "spec", None)},
            "transform": self.transform.config() if self.eot and self.transform is not None else None,
        }
        return save_artifact(Path(f"{path}.safetensors"), {"patch": self.patch, "mask": self.mask}, meta)


def load_patch(path: str | Path, model: nn.Module) -> Patch:
    """A patch saved by `Patch.save`, ready to stick onto images for `model` at seeded random placements."""
    path = Path(path)
    tensors, meta = read_artifact(path, "patch", HINT)
    try:
        settings, (channels, height, width) = dict(meta["patch"]), meta["image"]
        transform = meta.get("transform")
        patch = Patch(model, **settings, transform=build_transform(**transform) if transform else None)
        side = patch.side(height, width)
    except UserError as e:
        raise UserError(f"patch {path}: its metadata is not valid ({e})") from e
    except (KeyError, TypeError, ValueError) as e:
        raise UserError(f"patch {path}: its metadata is incomplete ({brief(e)}); {HINT}") from e
    check_shapes(
        tensors,
        {"patch": torch.empty(channels, side, side), "mask": torch.empty(1, side, side)},
        path,
        f"patch ({meta['patch']})",
    )
    patch.patch, patch.mask, patch.image_shape = tensors["patch"], tensors["mask"], (channels, height, width)
    patch.meta = meta
    return patch
