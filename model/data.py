"""Training pairs from slice files, pix2pix augmentation, and the split-leakage guard.

The whole training set is small (paper: 3,000 slices of 256^2, ~0.8 GB as float32), so it is
held as one tensor and batches are cut from it: no worker processes, no per-item Python
overhead. Augmentation is pix2pix's: resize to S*286/256, random S x S crop, random mirror, the
same for input and target. Batches are a pure function of (seed, epoch), which makes training
resumable to the bit: an epoch's order, crop offsets and mirror flags are drawn at its start
from a CPU generator (the same draws on any device) and moved to the device in one copy, so
cutting and augmenting a batch never waits on the host (no per-batch host-device sync on CUDA).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from workflow_scripts.nifti_io import write_json
from workflow_scripts.slices import load_slices, stack_input


class LeakageError(ValueError):
    """A subject would cross from a held-out split into training, or be scored after training."""


class SliceDataset(Dataset):
    """(input (C,S,S), target (1,S,S)) pairs of the training subjects' slices; `context`: the
    model's 2.5D context (None: the files' own; smaller: only the nearer neighbours)."""

    def __init__(
        self,
        paths: list[str | Path],
        model_input: str,
        augment: bool = True,
        seed: int = 0,
        allowed_split: str = "train",
        context: int | None = None,
    ):
        xs, ys, self.subjects = [], [], []
        kinds = set()
        for path in paths:
            ss = load_slices(path)
            kinds.add((ss.context, ss.target_scaling))
            if ss.split != allowed_split:
                raise LeakageError(
                    f"sub-{ss.subject} is in split '{ss.split}' ({path}); only '{allowed_split}' "
                    "subjects may build this set"
                )
            if "spect" not in ss.images:
                raise ValueError(f"sub-{ss.subject} ({path}): no SPECT slices to learn from")
            xs.append(stack_input(ss, model_input, context))
            ys.append(np.asarray(ss.images["spect"], dtype=np.float32)[:, None])
            self.subjects.append(ss.subject)
        if not xs:
            raise ValueError("no slice files given")
        if len(kinds) > 1:
            raise ValueError(f"slice files mix 2.5D contexts / target scalings: {sorted(kinds)}")
        file_context, self.target_scaling = kinds.pop()
        self.context = file_context if context is None else int(context)
        self.x = torch.from_numpy(np.concatenate(xs))
        self.y = torch.from_numpy(np.concatenate(ys))
        self.model_input = model_input
        self.augment = augment
        self.seed = seed

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


def write_subject_list(
    model_dir: str | Path, train_subjects: list[str], extra: dict | None = None
) -> Path:
    """Record the exact subjects a model was trained on (checked before any scoring)."""
    return write_json(
        {"train": sorted(train_subjects), **(extra or {})}, Path(model_dir) / "subjects.json"
    )


def trained_subjects(model_dir: str | Path) -> set[str]:
    path = Path(model_dir) / "subjects.json"
    return set(json.loads(path.read_text())["train"])


def assert_not_trained_on(model_dir: str | Path, subject: str) -> None:
    """Refuse to score a subject the model saw in training."""
    if subject in trained_subjects(model_dir):
        raise LeakageError(
            f"sub-{subject} was in the training set of {model_dir} (subjects.json); scoring it "
            "would overstate the model's quality"
        )
