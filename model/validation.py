"""Scoring the generator on held-out slices during training (the loss table's val_ columns)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from model.losses import ssim


@torch.inference_mode()
def validation_scores(
    g: nn.Module, pairs: Sequence[tuple[np.ndarray, np.ndarray]], device: torch.device
) -> dict:
    """Mean slice SSIM and PSNR (range [-1, 1]) of the generator on held-out (x, y) pairs."""
    g.eval()
    scores_ssim, scores_psnr = [], []
    for x_np, y_np in pairs:
        x = torch.from_numpy(np.asarray(x_np, dtype=np.float32)).to(device)
        y = torch.tensor(np.asarray(y_np, dtype=np.float32)).reshape(len(x), 1, *x.shape[2:])
        y = y.to(device)
        fake = g(x).float()
        scores_ssim.append(ssim(fake, y))
        mse = ((fake - y) ** 2).flatten(1).mean(1)
        scores_psnr.append(10 * torch.log10(4.0 / mse.clamp_min(1e-12)))
    g.train()
    return {
        "val_SSIM": torch.cat(scores_ssim).mean().item(),
        "val_PSNR": torch.cat(scores_psnr).mean().item(),
    }
