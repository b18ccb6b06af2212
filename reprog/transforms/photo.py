"""`Photo`: what a camera does to an image: contrast, brightness, blur, sensor noise, and JPEG compression.

JPEG is kornia's differentiable codec (Reich et al. 2024), so gradients pass through the compression an
attack must survive, instead of being approximated (BPDA) or skipped.
"""

import math
from typing import Any

import torch
from kornia.enhance import adjust_brightness, adjust_contrast, jpeg_codec_differentiable
from kornia.filters import gaussian_blur2d

from reprog.transforms.transform import TRANSFORMS, Params, Transform, check_at_least, check_range, uniform


@TRANSFORMS.register("photo")
class Photo(Transform):
    def __init__(
        self,
        brightness: float = 0.1,
        contrast: tuple[float, float] = (0.8, 1.2),
        blur: float = 1.0,
        noise: float = 0.02,
        jpeg: tuple[float, float] | None = (50, 90),
        seed: int = 0,
    ) -> None:
        """`brightness`: largest shift either way; `contrast`: [low, high] factor; `blur`: largest Gaussian sigma
        (pixels, 0: none); `noise`: std of Gaussian noise; `jpeg`: [low, high] quality (null: no compression)."""
        super().__init__(seed)
        self.brightness = check_at_least("brightness", brightness)
        self.contrast = check_range("contrast", contrast, 0.0, 10.0)
        self.blur = check_at_least("blur", blur)
        self.noise = check_at_least("noise", noise)
        self.jpeg = check_range("jpeg", jpeg, 1, 100) if jpeg is not None else None

    def sample(self, shape: torch.Size, generator: torch.Generator) -> Params:
        n = shape[0]
        params = {
            "brightness": uniform(n, -self.brightness, self.brightness, generator),
            "contrast": uniform(n, *self.contrast, generator),
            "sigma": uniform(n, 0.1 * self.blur, self.blur, generator),
            "noise": torch.randn(tuple(shape), generator=generator) * self.noise,
        }
        if self.jpeg:
            params["quality"] = uniform(n, *self.jpeg, generator)
        return params

    def apply_params(self, x: torch.Tensor, params: Params) -> torch.Tensor:
        x = adjust_contrast(x, params["contrast"], clip_output=False)
        x = adjust_brightness(x, params["brightness"], clip_output=False)
        if self.blur > 0:
            size = 2 * math.ceil(2 * self.blur) + 1
            x = gaussian_blur2d(x, size, params["sigma"][:, None].expand(-1, 2), border_type="reflect")
        x = (x + params["noise"]).clamp(0, 1)
        if self.jpeg:
            x = jpeg(x, params["quality"])
        return x

    def settings(self) -> dict[str, Any]:
        return {
            "brightness": self.brightness,
            "contrast": list(self.contrast),
            "blur": self.blur,
            "noise": self.noise,
            "jpeg": list(self.jpeg) if self.jpeg else None,
            **super().settings(),
        }


def jpeg(x: torch.Tensor, quality: torch.Tensor) -> torch.Tensor:
    """kornia's differentiable JPEG round trip; a grey image goes through as grey RGB."""
    if x.shape[1] == 3:
        return jpeg_codec_differentiable(x, quality)
    return jpeg_codec_differentiable(x.mean(1, keepdim=True).expand(-1, 3, -1, -1), quality).mean(1, keepdim=True)
