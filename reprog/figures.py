"""Matplotlib figures for TensorBoard and the README."""

import math
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402


def image_grid(images: torch.Tensor, titles: Sequence[str], cols: int = 8) -> plt.Figure:
    """(N, C, H, W) images in [0, 1] in a grid, each with its title."""
    n = len(images)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(1.6 * cols, 1.8 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, img, title in zip(axes.flat, images.detach().float().cpu(), titles):
        ax.imshow(img.permute(1, 2, 0).clamp(0, 1).numpy())
        ax.set_title(title, fontsize=8)
    fig.tight_layout()
    return fig
