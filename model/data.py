"""Training pairs over arrays, and pix2pix augmentation.

The dataset is given arrays (input and target slices); where they come from (files, splits,
subjects) is the caller's business (the workflow: workflow_scripts/train/training_set.py). The
whole training set is small (paper: 3,000 slices of 256^2, ~0.8 GB as float32), so it is held as one
tensor and batches are cut from it: no worker processes, no per-item Python overhead.
Augmentation is pix2pix's: resize to S*286/256, random S x S crop, random mirror, the same for
input and target. Batches are a pure function of (seed, epoch), which makes training resumable
to the bit: an epoch's order, crop offsets and mirror flags are drawn at its start from a CPU
generator (the same draws on any device) and moved to the device in one copy, so cutting and
augmenting a batch never waits on the host (no per-batch host-device sync on CUDA).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset


class SliceDataset(Dataset):
    """(input (C,S,S), target (1,S,S)) training pairs from arrays `x` (N, C, S, S) and `y`
    (N, 1, S, S) (or (N, S, S)), both scaled to [-1, 1]."""

    def __init__(
        self,
        x: np.ndarray | torch.Tensor,
        y: np.ndarray | torch.Tensor,
        augment: bool = True,
        seed: int = 0,
    ):
        x = torch.as_tensor(np.asarray(x, dtype=np.float32))
        y = torch.as_tensor(np.asarray(y, dtype=np.float32))
        if y.ndim == 3:
            y = y[:, None]
        if x.ndim != 4 or x.shape[-1] != x.shape[-2]:
            raise ValueError(f"inputs must be (N, C, S, S) square slices, got {tuple(x.shape)}")
        if tuple(y.shape) != (x.shape[0], 1, *x.shape[2:]):
            raise ValueError(f"targets {tuple(y.shape)} do not match inputs {tuple(x.shape)}")
        if not len(x):
            raise ValueError("no training slices given")
        self.x, self.y = x, y
        self.augment = augment
        self.seed = seed

    @property
    def size(self) -> int:
        return int(self.x.shape[-1])

    @property
    def in_channels(self) -> int:
        return int(self.x.shape[1])

    def __len__(self) -> int:
        return self.x.shape[0]

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.x[i], self.y[i]

    def batches(
        self, batch_size: int, epoch: int, device=None
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Shuffled (and augmented) batches of one epoch, the same for the same (seed, epoch)."""
        x_all, y_all = self.x, self.y
        if device is not None and x_all.device != torch.device(device):
            x_all, y_all = x_all.to(device), y_all.to(device)
            self.x, self.y = x_all, y_all  # keep the set resident where training runs
        plan = epoch_plan(len(self), self.x.shape[-1], self.seed * 100_003 + epoch, self.augment)
        plan = plan.to(x_all.device)  # the epoch's one host-to-device copy
        for start in range(0, len(plan), batch_size):
            rows = plan[start : start + batch_size]
            x, y = x_all[rows[:, 0]], y_all[rows[:, 0]]
            if self.augment:
                x, y = crop_and_mirror(x, y, rows[:, 1:3], rows[:, 3])
            yield x, y


def epoch_plan(n: int, size: int, seed: int, augment: bool) -> torch.Tensor:
    """(n, 4) int64 on the CPU: per position in the epoch, the slice index, the crop's row and
    column offsets in the upscaled image, and whether to mirror (0/1)."""
    gen = torch.Generator().manual_seed(seed)
    order = torch.randperm(n, generator=gen)
    if not augment:
        return torch.stack([order, *torch.zeros(3, n, dtype=torch.int64)], 1)
    big = jitter_size(size)
    offsets = torch.randint(0, big - size + 1, (n, 2), generator=gen)
    flips = (torch.rand(n, generator=gen) < 0.5).long()
    return torch.cat([order[:, None], offsets, flips[:, None]], 1)


def jitter_size(size: int) -> int:
    return int(round(size * 286 / 256))


def crop_and_mirror(
    x: torch.Tensor, y: torch.Tensor, offsets: torch.Tensor, flips: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """pix2pix augmentation of a batch: upscale by 286/256, crop back at `offsets` (n, 2: row,
    column), mirror where `flips` (n) is set; input and target alike. One gather on the device
    (offsets and flips live there): no value is read back to the host."""
    n, c, s, _ = x.shape
    big = jitter_size(s)
    both = F.interpolate(
        torch.cat([x, y], dim=1), size=(big, big), mode="bilinear", align_corners=False
    )
    ar = torch.arange(s, device=both.device)
    rows = offsets[:, :1] + ar  # (n, s)
    cols = offsets[:, 1:2] + torch.where(flips[:, None].bool(), s - 1 - ar, ar)
    batch = torch.arange(n, device=both.device)[:, None, None, None]
    chans = torch.arange(both.shape[1], device=both.device)[None, :, None, None]
    out = both[batch, chans, rows[:, None, :, None], cols[:, None, None, :]]
    return out[:, :c].contiguous(), out[:, c:].contiguous()


def jitter_and_mirror(
    x: torch.Tensor, y: torch.Tensor, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """crop_and_mirror with offsets and flips drawn from `gen` for this batch alone."""
    n, _, s, _ = x.shape
    offsets = torch.randint(0, jitter_size(s) - s + 1, (n, 2), generator=gen)
    flips = torch.rand(n, generator=gen) < 0.5
    return crop_and_mirror(x, y, offsets.to(x.device), flips.to(x.device))
