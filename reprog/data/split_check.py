"""`check_split`: the one check every loaded split passes, so bad data fails at setup, not mid-training.

It is cheap (dtype, shape, and a vectorised min/max of the labels): CIFAR-10's 50k images cost nothing.
uint8 images can hold no NaN or out-of-range pixel, so the pixels themselves are not scanned.
"""

import torch

from reprog.errors import UserError


def check_split(
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    channels: int,
    num_classes: int,
    images_from: str,
    labels_from: str,
    channel_fix: str,
) -> None:
    """Raise a one-line UserError unless x is uint8 (N, channels, H, W) and y int (N,) in 0..num_classes-1.

    `channel_fix` ends the message for a wrong channel count: what to change, which depends on the module.
    """
    if x.dtype != torch.uint8 or x.ndim != 4:
        raise UserError(
            f"images from {images_from} are {x.dtype} with shape {tuple(x.shape)}, expected uint8 "
            f"(N, {channels}, H, W); re-create the data set as uint8 images"
        )
    if x.numel() == 0:
        raise UserError(
            f"no images in {images_from} (shape {tuple(x.shape)}); point the data module at a non-empty data set"
        )
    if x.shape[1] != channels:
        raise UserError(
            f"images from {images_from} have {x.shape[1]} channels, but this data module expects "
            f"{channels}; {channel_fix}"
        )
    if y.dtype == torch.bool or y.is_floating_point() or y.is_complex() or y.shape != (len(x),):
        raise UserError(
            f"labels from {labels_from} are {y.dtype} with shape {tuple(y.shape)}, expected integer "
            f"labels of shape ({len(x)},); re-create the data set with one integer label per image"
        )
    lo, hi = (int(v) for v in torch.aminmax(y))
    if lo < 0 or hi >= num_classes:
        raise UserError(
            f"labels in {labels_from} run {lo}..{hi} but data.num_classes={num_classes}; "
            "fix the labels or set data.num_classes"
        )
