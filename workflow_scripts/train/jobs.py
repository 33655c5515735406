"""Snakemake entry of rules/train.smk: one condition's model from its slice files, on the device
the job asked for."""

from __future__ import annotations

from pathlib import Path

from model.condition import Condition
from workflow_scripts.train.from_slices import train_from_slices


def train_job(smk) -> None:
    """Snakemake entry (rule train)."""
    train_from_slices(
        list(smk.input.train),
        Path(smk.output.weights).parent,
        Condition(
            *(smk.params.condition[k] for k in ("space", "input", "loss")),
            context=smk.params.condition.get("context"),
        ),
        # weight-affecting settings come from params (a change retrains); how and where it
        # runs (device, checkpointing, validation) from config (a change does not)
        {**smk.config["train"], **smk.params.settings},
        threads=smk.threads,
        gpus=requested_gpus(smk),
        val_files=list(smk.input.validation) if "validation" in smk.input.keys() else None,
    )


def requested_gpus(smk) -> int:
    """The GPUs this job asked the scheduler for: its `gpu` resource (rules/train.smk sets it
    from train.gpus; --set-resources may override it), else train.gpus."""
    gpu = getattr(smk.resources, "gpu", None)
    return int(gpu if gpu is not None else smk.config["train"].get("gpus", 0))
