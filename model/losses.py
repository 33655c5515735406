"""Losses: adversarial BCE, L1, and a differentiable SSIM (Wang et al. 2004).

SSIM uses an 11x11 Gaussian window (sigma 1.5), K1 = 0.01, K2 = 0.03 and the data range of the
[-1, 1] images (2.0), computed over the valid region (no padding), as scikit-image does with
gaussian_weights=True, use_sample_covariance=False.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

DATA_RANGE = 2.0


def gaussian_window(
    size: int = 11, sigma: float = 1.5, device=None, dtype=torch.float32
) -> torch.Tensor:
    coords = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    g = (g / g.sum()).to(dtype)
    return (g[:, None] * g[None, :]).to(device)[None, None]


def ssim_map(
    x: torch.Tensor,
    y: torch.Tensor,
    data_range: float = DATA_RANGE,
    size: int = 11,
    sigma: float = 1.5,
) -> torch.Tensor:
    """Per-pixel SSIM of (N, 1, H, W) images over the valid window positions."""
    w = gaussian_window(size, sigma, x.device, x.dtype)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mu_x, mu_y = F.conv2d(x, w), F.conv2d(y, w)
    sxx = F.conv2d(x * x, w) - mu_x**2
    syy = F.conv2d(y * y, w) - mu_y**2
    sxy = F.conv2d(x * y, w) - mu_x * mu_y
    num = (2 * mu_x * mu_y + c1) * (2 * sxy + c2)
    den = (mu_x**2 + mu_y**2 + c1) * (sxx + syy + c2)
    return num / den


def ssim(x: torch.Tensor, y: torch.Tensor, data_range: float = DATA_RANGE) -> torch.Tensor:
    """Mean SSIM per image, shape (N,)."""
    return ssim_map(x, y, data_range).flatten(1).mean(1)


class GANLoss(nn.Module):
    """BCE on the discriminator's logits against all-real or all-fake labels."""

    def __init__(self):
        super().__init__()
        self.bce = nn.BCEWithLogitsLoss()

    def forward(self, logits: torch.Tensor, real: bool) -> torch.Tensor:
        target = torch.ones_like(logits) if real else torch.zeros_like(logits)
        return self.bce(logits, target)
