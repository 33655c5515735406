"""The optimisation: a condition's networks, their Adam optimisers, the learning-rate policy and
one pix2pix update (Pix2PixStep), in fp32 or under autocast with an fp16 gradient scaler."""

from __future__ import annotations

import torch
from torch import nn

from model.condition import Condition
from model.losses import GANLoss, ssim
from model.networks import PatchDiscriminator, UNetGenerator, init_weights

# the loss terms a step returns, in its order (the loss table's columns)
LOSS_COLUMNS = ("G_GAN", "G_L1", "G_SSIM", "D_real", "D_fake")


def build_networks(cond: Condition, size: int, cfg: dict) -> tuple[nn.Module, nn.Module]:
    g = init_weights(UNetGenerator(cond.in_channels, 1, size, cfg["ngf"]))
    d = init_weights(PatchDiscriminator(cond.in_channels + 1, cfg["ndf"]))
    return g, d


def make_optimizers(
    g: nn.Module, d: nn.Module, lr: float, beta1: float
) -> tuple[torch.optim.Adam, torch.optim.Adam]:
    """pix2pix's Adam (beta2 0.999) for G and D. Fused: one kernel per step instead of a loop of
    small ops per parameter (the same update; 1.16x the demo's whole CPU training step)."""
    fused = next(g.parameters()).device.type in ("cpu", "cuda")
    return (
        torch.optim.Adam(g.parameters(), lr=lr, betas=(beta1, 0.999), fused=fused),
        torch.optim.Adam(d.parameters(), lr=lr, betas=(beta1, 0.999), fused=fused),
    )


def lr_factor(epoch: int, epochs: int, epochs_decay: int) -> float:
    """pix2pix's linear policy: constant for `epochs`, then linearly to zero over `epochs_decay`."""
    return 1.0 - max(0, epoch + 1 - epochs) / float(epochs_decay + 1)


class Pix2PixStep:
    """One pix2pix update on a batch: discriminator on real and generated pairs, then the
    generator (adversarial + lambda_L1 * L1 [+ lambda_SSIM * (1 - SSIM)]). Returns the five
    loss terms (LOSS_COLUMNS) as one detached tensor, so the loop never waits on the device."""

    def __init__(
        self,
        g: nn.Module,
        d: nn.Module,
        opt_g: torch.optim.Optimizer,
        opt_d: torch.optim.Optimizer,
        cfg: dict,
        use_ssim: bool,
        dtype: torch.dtype | None,
    ) -> None:
        self.g, self.d, self.opt_g, self.opt_d = g, d, opt_g, opt_d
        self.cfg, self.use_ssim, self.dtype = cfg, use_ssim, dtype
        self.device = next(g.parameters()).device
        # fp16 only (bf16 has fp32's range); its state is checkpointed
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=dtype == torch.float16)
        self.gan = GANLoss()
        self.l1 = nn.L1Loss()

    def _autocast(self):
        return torch.autocast(
            self.device.type, dtype=self.dtype or torch.float32, enabled=self.dtype is not None
        )

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        g, d, cfg, scaler = self.g, self.d, self.cfg, self.scaler
        if self.device.type == "cuda":
            x = x.contiguous(memory_format=torch.channels_last)
            y = y.contiguous(memory_format=torch.channels_last)
        with self._autocast():
            fake = g(x)
        # discriminator: real pairs -> 1, generated pairs -> 0
        d.requires_grad_(True)
        self.opt_d.zero_grad(set_to_none=True)
        with self._autocast():
            d_fake = self.gan(d(torch.cat([x, fake.detach()], 1)), False)
            d_real = self.gan(d(torch.cat([x, y], 1)), True)
            loss_d = 0.5 * (d_fake + d_real)
        scaler.scale(loss_d).backward()
        scaler.step(self.opt_d)
        # generator: fool D, stay close to the target
        d.requires_grad_(False)
        self.opt_g.zero_grad(set_to_none=True)
        with self._autocast():
            g_gan = self.gan(d(torch.cat([x, fake], 1)), True)
        g_l1 = self.l1(fake.float(), y.float()) * cfg["lambda_l1"]
        if self.use_ssim:
            g_ssim = (1.0 - ssim(fake.float(), y.float()).mean()) * cfg["lambda_ssim"]
        else:
            g_ssim = torch.zeros((), device=self.device)
        loss_g = g_gan + g_l1 + g_ssim
        scaler.scale(loss_g).backward()
        scaler.step(self.opt_g)
        scaler.update()
        return torch.stack([g_gan, g_l1, g_ssim, d_real, d_fake]).detach().float()
