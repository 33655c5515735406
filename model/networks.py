"""pix2pix networks (Isola et al. 2017): U-Net generator with skips and a PatchGAN discriminator.

Layer for layer as the published pix2pix: 4x4 convolutions with stride 2, batch norm (so no
conv bias where a norm follows), LeakyReLU(0.2) down, ReLU up, dropout 0.5 in the innermost
ngf*8 decoder blocks, tanh output. The U-Net has log2(size) levels (unet_256: 8, unet_128: 7).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from model.image_size import MIN_SIZE, check_image_size


class UNetBlock(nn.Module):
    """One U-Net level: down, the inner levels, up; the output is [input, up] (skip)."""

    def __init__(
        self,
        outer: int,
        inner: int,
        in_channels: int | None = None,
        sub: nn.Module | None = None,
        outermost: bool = False,
        innermost: bool = False,
        dropout: bool = False,
    ):
        super().__init__()
        self.outermost = outermost
        in_channels = outer if in_channels is None else in_channels
        down_conv = nn.Conv2d(in_channels, inner, 4, 2, 1, bias=False)
        if outermost:
            up = [nn.ReLU(True), nn.ConvTranspose2d(inner * 2, outer, 4, 2, 1), nn.Tanh()]
            layers = [down_conv, sub, *up]
        elif innermost:
            up = [
                nn.ReLU(True),
                nn.ConvTranspose2d(inner, outer, 4, 2, 1, bias=False),
                nn.BatchNorm2d(outer),
            ]
            layers = [nn.LeakyReLU(0.2, True), down_conv, *up]
        else:
            down = [nn.LeakyReLU(0.2, True), down_conv, nn.BatchNorm2d(inner)]
            up = [
                nn.ReLU(True),
                nn.ConvTranspose2d(inner * 2, outer, 4, 2, 1, bias=False),
                nn.BatchNorm2d(outer),
            ]
            layers = [*down, sub, *up] + ([nn.Dropout(0.5)] if dropout else [])
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.outermost:
            return self.model(x)
        return torch.cat([x, self.model(x)], 1)


class UNetGenerator(nn.Module):
    def __init__(self, in_channels: int, out_channels: int = 1, size: int = 256, ngf: int = 64):
        super().__init__()
        check_image_size(size)
        levels = int(math.log2(size))
        block = UNetBlock(ngf * 8, ngf * 8, innermost=True)
        for _ in range(levels - int(math.log2(MIN_SIZE))):  # the levels beyond the fixed five
            block = UNetBlock(ngf * 8, ngf * 8, sub=block, dropout=True)
        block = UNetBlock(ngf * 4, ngf * 8, sub=block)
        block = UNetBlock(ngf * 2, ngf * 4, sub=block)
        block = UNetBlock(ngf, ngf * 2, sub=block)
        self.model = UNetBlock(
            out_channels, ngf, in_channels=in_channels, sub=block, outermost=True
        )
        self.size = size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class PatchDiscriminator(nn.Module):
    """70x70 PatchGAN: three stride-2 layers, then two stride-1 layers to one logit per patch."""

    def __init__(self, in_channels: int, ndf: int = 64, n_layers: int = 3):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(in_channels, ndf, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        mult = 1
        for n in range(1, n_layers + 1):
            prev, mult = mult, min(2**n, 8)
            stride = 2 if n < n_layers else 1
            layers += [
                nn.Conv2d(ndf * prev, ndf * mult, 4, stride, 1, bias=False),
                nn.BatchNorm2d(ndf * mult),
                nn.LeakyReLU(0.2, True),
            ]
        layers.append(nn.Conv2d(ndf * mult, 1, 4, 1, 1))
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def init_weights(net: nn.Module, gain: float = 0.02) -> nn.Module:
    """pix2pix initialisation: conv weights N(0, 0.02), batch-norm weights N(1, 0.02), biases 0."""
    for m in net.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d):
            nn.init.normal_(m.weight, 0.0, gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, gain)
            nn.init.zeros_(m.bias)
    return net


def count_parameters(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())
