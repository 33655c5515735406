"""Reading the demo simulator's ground truth: one reader for every consumer.

The truth file (workflow_scripts/layout.py `simulation_truth`; written by
workflow_scripts/simulate/subject.py, which documents its fields) gives, per image, the matrix
`world_from_anatomy` taking a point of the subject's anatomy frame (mm) to that image's scanner
world (mm), and points in the anatomy frame (`focus_anatomy_mm`, `cavity_anatomy_mm`).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from nibabel.affines import apply_affine


class TruthFileError(ValueError):
    """A simulator truth file that cannot be read or lacks what is asked of it."""


def read_truth(path: str | Path) -> dict:
    """The parsed truth file; a clear error naming the file when it is missing or malformed."""
    path = Path(path)
    try:
        truth = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise TruthFileError(f"simulation truth {path}: cannot read ({err})") from None
    if not isinstance(truth, dict) or not isinstance(truth.get("images"), dict):
        raise TruthFileError(f"simulation truth {path}: no 'images' poses")
    return truth


def point_in_world(truth: dict, image: str, key: str = "focus_anatomy_mm") -> np.ndarray:
    """The anatomy-frame point `truth[key]` in `image`'s scanner world (mm), shape (3,)."""
    subject = truth.get("subject", "?")
    try:
        w = np.asarray(truth["images"][image]["world_from_anatomy"], dtype=float)
        point = np.asarray(truth[key], dtype=float).ravel()
    except KeyError as err:
        raise TruthFileError(
            f"sub-{subject} simulation truth: no {err} (asked {image}, {key})"
        ) from None
    return apply_affine(w, point)


def focus_from_truth(path: str | Path) -> tuple[np.ndarray, float]:
    """Simulated focus centre in T1w world mm (= native-space world) and its radius (mm)."""
    truth = read_truth(path)
    return point_in_world(truth, "T1w"), float(truth["focus_radius_mm"])
