"""GradAlign (Andriushchenko and Flammarion, 2020): a regularizer against catastrophic overfitting.

FGSM training collapses when the loss stops being linear inside the eps-ball, so that one step no longer finds
the worst point. GradAlign penalizes 1 - cos between the input gradients at the image and at a uniformly random
point of the ball, which keeps it linear; the price is a double backward pass.
"""

import torch
import torch.nn.functional as F
from torch import nn


def grad_align(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float) -> torch.Tensor:
    """Mean 1 - cos(∇ℓ(x), ∇ℓ(x + η)), η ~ U[-eps, eps]; differentiable in the model's weights through the second
    gradient only, as in the authors' code."""
    clean = x.detach().requires_grad_(True)
    g_clean = torch.autograd.grad(F.cross_entropy(model(clean), y), clean)[0]
    noisy = (x.detach() + torch.empty_like(x).uniform_(-eps, eps)).clamp(0, 1).requires_grad_(True)
    g_noisy = torch.autograd.grad(F.cross_entropy(model(noisy), y), noisy, create_graph=True)[0]
    return 1 - F.cosine_similarity(g_clean.flatten(1), g_noisy.flatten(1), dim=1).mean()
