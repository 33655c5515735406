"""Training pairs from slice files, pix2pix augmentation, and the split-leakage guard.

The whole training set is small (paper: 3,000 slices of 256^2, ~0.8 GB as float32), so it is
held as one tensor and batches are cut from it: no worker processes, no per-item Python
overhead. Augmentation is pix2pix's: resize to S*286/256, random S x S crop, random mirror, the
same for input and target. Batches are a pure function of (seed, epoch), which makes training
resumable to the bit.
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
    """(input (C,S,S), target (1,S,S)) pairs of the training subjects' slices."""

    def __init__(
        self,
        paths: list[str | Path],
        model_input: str,
        augment: bool = True,
        seed: int = 0,
        allowed_split: str = "train",
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
            xs.append(stack_input(ss, model_input))
            ys.append(np.asarray(ss.images["spect"], dtype=np.float32)[:, None])
            self.subjects.append(ss.subject)
        if not xs:
            raise ValueError("no slice files given")
        if len(kinds) > 1:
            raise ValueError(f"slice files mix 2.5D contexts / target scalings: {sorted(kinds)}")
        self.context, self.target_scaling = kinds.pop()
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
        gen = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
        order = torch.randperm(len(self), generator=gen)
        x_all, y_all = self.x, self.y
        if device is not None and x_all.device != torch.device(device):
            x_all, y_all = x_all.to(device), y_all.to(device)
            self.x, self.y = x_all, y_all  # keep the set resident where training runs
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size].to(x_all.device)
            x, y = x_all[idx], y_all[idx]
            if self.augment:
                x, y = jitter_and_mirror(x, y, gen)
            yield x, y


def jitter_and_mirror(
    x: torch.Tensor, y: torch.Tensor, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """pix2pix augmentation of a batch: upscale by 286/256, random crop back, random mirror."""
    n, c, s, _ = x.shape
    big = int(round(s * 286 / 256))
    both = F.interpolate(
        torch.cat([x, y], dim=1), size=(big, big), mode="bilinear", align_corners=False
    )
    offsets = torch.randint(0, big - s + 1, (n, 2), generator=gen)
    flips = torch.rand(n, generator=gen) < 0.5
    out = torch.stack(
        [
            both[i, :, int(oy) : int(oy) + s, int(ox) : int(ox) + s]
            for i, (oy, ox) in enumerate(offsets.tolist())
        ]
    )
    out = torch.where(flips.to(out.device)[:, None, None, None], out.flip(-1), out)
    return out[:, :c].contiguous(), out[:, c:].contiguous()


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
