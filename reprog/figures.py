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


def adversarial_figure(
    images: torch.Tensor,
    adversarial: torch.Tensor,
    clean_probs: torch.Tensor,
    adv_probs: torch.Tensor,
    class_names: Sequence[str] | None = None,
) -> plt.Figure:
    """Rows of original | perturbation (amplified) | adversarial, titled with predictions and confidences."""
    names = class_names or [str(i) for i in range(clean_probs.shape[1])]
    delta = (adversarial - images).detach().float().cpu()
    gain = 0.5 / max(delta.abs().max().item(), 1e-12)  # the largest change spans half the range
    fig, axes = plt.subplots(len(images), 3, figsize=(6.3, 2.2 * len(images)), squeeze=False)
    for row, (x, d, x_adv, p, q) in enumerate(
        zip(images.detach().float().cpu(), delta, adversarial.detach().float().cpu(), clean_probs, adv_probs)
    ):
        panels = (
            (x, f"{names[p.argmax()]} {p.max():.0%}"),
            (0.5 + gain * d, f"perturbation x{gain:.0f}\nL-inf {d.abs().max() * 255:.1f}/255"),
            (x_adv, f"{names[q.argmax()]} {q.max():.0%}"),
        )
        for ax, (img, title) in zip(axes[row], panels):
            ax.imshow(img.permute(1, 2, 0).clamp(0, 1).numpy())
            ax.set_title(title, fontsize=9)
            ax.axis("off")
    fig.tight_layout()
    return fig


def curve_figure(curve: Sequence[dict[str, float]], x: str = "queries", title: str = "") -> plt.Figure:
    """Every rate in `curve` (the keys whose values lie in [0, 1]) against `x`, in percent."""
    xs = [row[x] for row in curve]
    rates = [k for k in curve[0] if k != x and all(0 <= row[k] <= 1 for row in curve)]
    fig, ax = plt.subplots(figsize=(5, 3.2))
    for key in rates:
        ax.plot(xs, [100 * row[key] for row in curve], marker="o", label=key)
    ax.set(xlabel=x, ylabel="%", title=title, ylim=(0, 100))
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return fig
