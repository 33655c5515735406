"""What is trained: a pix2pix condition and the fingerprint of a training run's settings.

The fingerprint names the settings a run's result depends on (condition, image size, training
subjects, hyper-parameters); a checkpoint is resumed only under the same fingerprint
(model/checkpoint.py), and the model folder's files record it (model/outputs.py).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass


@dataclass(frozen=True)
class Condition:
    space: str
    model_input: str
    loss: str
    # neighbouring input slices on either side (2.5D); None: the slice files' own context, fixed
    # when training starts (a smaller one uses the files' centre channels: a 2D twin)
    context: int | None = None
    target_scaling: str = "per_slice"  # how the target SPECT was put on [-1, 1]

    @property
    def in_channels(self) -> int:
        return (2 if self.model_input == "mri_pet" else 1) * (2 * (self.context or 0) + 1)

    @property
    def name(self) -> str:
        return f"space-{self.space}_input-{self.model_input}_loss-{self.loss}"


def fingerprint(cond: Condition, cfg: dict, subjects: list[str], size: int) -> str:
    """What a checkpoint must match to be resumed (the epoch count may grow)."""
    keys = (
        "batch_size",
        "lr",
        "beta1",
        "lambda_l1",
        "lambda_ssim",
        "ngf",
        "ndf",
        "augment",
        "seed",
    )
    blob = json.dumps(
        {
            "cond": dataclasses.asdict(cond),
            "size": size,
            "subjects": sorted(subjects),
            **{k: cfg[k] for k in keys},
            # the setting, not what it resolved to: `auto` may resolve otherwise on the node a
            # resumed job lands on (then training goes on at that precision, logged)
            "precision": cfg.get("precision", "auto"),
        },
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]
