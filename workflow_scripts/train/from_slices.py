"""Training one condition from slice files: the workflow's side of model/train.py.

Reads the training subjects' slice files (refusing held-out ones), hands the arrays to the
pix2pix package and records the training subjects beside the model (the rule's entry:
workflow_scripts/train/jobs.py).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from model.condition import Condition
from model.data import SliceDataset
from model.train import train_condition
from workflow_scripts.train.training_set import (
    load_training_set,
    validation_pairs,
    write_subject_list,
)


def train_from_slices(
    slice_files: list[str | Path],
    model_dir: str | Path,
    cond: Condition,
    cfg: dict,
    *,
    threads: int = 1,
    gpus: int = 0,
    val_files: list[str | Path] | None = None,
    stop_after_epochs: int | None = None,
) -> dict:
    """Train (or resume) `cond` on the slice files of training subjects; the model folder gets
    the model's files (model/outputs.py) and subjects.json. Returns the last epoch's losses."""
    ts = load_training_set(slice_files, cond.model_input, cond.context)
    # 2.5D context and target scaling are properties of the slice files the model learns from
    cond = dataclasses.replace(cond, context=ts.context, target_scaling=ts.target_scaling)
    data = SliceDataset(ts.x, ts.y, augment=cfg["augment"], seed=cfg["seed"])
    validation = validation_pairs(val_files, cond.model_input, ts.context) if val_files else None
    last = train_condition(
        data,
        model_dir,
        cond,
        cfg,
        subjects=ts.subjects,
        threads=threads,
        gpus=gpus,
        validation=validation,
        stop_after_epochs=stop_after_epochs,
    )
    if "stopped_after_epoch" not in last:
        write_subject_list(model_dir, ts.subjects, {"condition": cond.name})
    return last
