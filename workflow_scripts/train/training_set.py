"""Slice files -> the arrays model/ trains on, with the split-leakage guard and the record of
who a model was trained on.

model/ knows arrays only; splits and subjects are the workflow's. Training takes only subjects
of the training split (a held-out subject in the list is an error, not a warning), and each
model folder records its training subjects (`subjects.json`), checked before any scoring.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from workflow_scripts.nifti_io import write_json
from workflow_scripts.slices.files import TARGET, load_subjects, stack_input


class LeakageError(ValueError):
    """A subject would cross from a held-out split into training, or be scored after training."""


@dataclass(frozen=True)
class TrainingSet:
    """Inputs x (N, C, S, S) and targets y (N, 1, S, S) of the training subjects' slices, with
    the 2.5D context (of the model: the files' own or a smaller one) and target scaling."""

    x: np.ndarray
    y: np.ndarray
    subjects: list[str]
    context: int
    target_scaling: str


def load_training_set(
    paths: list[str | Path],
    model_input: str,
    context: int | None = None,
    allowed_split: str = "train",
) -> TrainingSet:
    """Read the slice files (the input modalities and the target of each subject, subject by
    subject) of the subjects a model learns from. `context`: the model's 2.5D context (None:
    the files' own; smaller: only the nearer neighbours, e.g. a 2D twin)."""
    xs, ys, subjects = [], [], []
    kinds = set()
    for ss in load_subjects(paths):
        kinds.add((ss.context, ss.target_scaling))
        if ss.split != allowed_split:
            raise LeakageError(
                f"sub-{ss.subject} is in split '{ss.split}' ({ss.space}); only "
                f"'{allowed_split}' subjects may build this set"
            )
        if TARGET not in ss.images:
            raise ValueError(f"sub-{ss.subject} ({ss.space}): no SPECT slices to learn from")
        xs.append(stack_input(ss, model_input, context))
        ys.append(np.asarray(ss.images[TARGET], dtype=np.float32)[:, None])
        subjects.append(ss.subject)
    if not xs:
        raise ValueError("no slice files given")
    if len(kinds) > 1:
        raise ValueError(f"slice files mix 2.5D contexts / target scalings: {sorted(kinds)}")
    file_context, target_scaling = kinds.pop()
    return TrainingSet(
        np.concatenate(xs),
        np.concatenate(ys),
        subjects,
        file_context if context is None else int(context),
        target_scaling,
    )


def validation_pairs(
    paths: list[str | Path], model_input: str, context: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """(inputs, target slices) per held-out subject, for the loss log's validation scores."""
    pairs = []
    for ss in load_subjects(paths):
        if TARGET not in ss.images:
            raise ValueError(f"sub-{ss.subject} ({ss.space}): no SPECT slices to validate on")
        pairs.append((stack_input(ss, model_input, context), np.asarray(ss.images[TARGET])))
    return pairs


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
