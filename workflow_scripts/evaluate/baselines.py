"""Honest baselines the trained models must beat (slice metrics, Table 4 reproduction).

- identity: the input slice itself (MRI or PET, already in [-1, 1]) taken as the SPECT;
- linear: one least-squares map input -> SPECT, fitted on all training slices' pixels (no
  per-subject fit), applied to held-out subjects.

The approximate best achievable score on simulated data is workflow_scripts.evaluate.ceiling's Monte
Carlo ceiling; its slice rows join these in tables/baselines.csv.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from workflow_scripts.evaluate.score import metrics_table
from workflow_scripts.slices.files import load_subjects, stack_input

log = logging.getLogger(__name__)


def fit_linear(train_files: list[str | Path], model_input: str) -> np.ndarray:
    """Least-squares coefficients [w_1..w_C, b] of SPECT on the input channels."""
    xs, ys = [], []
    for ss in load_subjects(train_files):
        x = stack_input(ss, model_input)  # (N, C, S, S)
        xs.append(np.moveaxis(x, 1, -1).reshape(-1, x.shape[1]))
        ys.append(np.asarray(ss.images["spect"], dtype=np.float32).ravel())
    x = np.concatenate(xs).astype(np.float64)
    design = np.hstack([x, np.ones((len(x), 1))])
    coef, *_ = np.linalg.lstsq(design, np.concatenate(ys).astype(np.float64), rcond=None)
    return coef


def apply_linear(coef: np.ndarray, x: np.ndarray) -> np.ndarray:
    """(N, C, S, S) -> (N, S, S), clipped to the [-1, 1] range of the targets."""
    pred = np.tensordot(coef[:-1], x, axes=([0], [1])) + coef[-1]
    return np.clip(pred, -1.0, 1.0).astype(np.float32)


def baseline_table(
    train_files: dict[str, list],
    eval_files: list[str | Path],
    inputs: list[str],
) -> pd.DataFrame:
    """Metrics of the baselines on held-out subjects (train_files: input -> training files)."""
    tables = []
    coefs = {inp: fit_linear(train_files[inp], inp) for inp in inputs if train_files.get(inp)}
    held_out = load_subjects(eval_files)
    for ss in held_out:
        if "spect" not in ss.images:
            continue
        for inp, coef in coefs.items():
            try:
                x = stack_input(ss, inp)
            except ValueError:
                continue  # the subject lacks this input's modality
            cond = {"space": ss.space, "input": inp, "loss": "linear"}
            tables.append(metrics_table(apply_linear(coef, x), ss, cond))
            if inp in ("mri", "pet"):
                cond = {"space": ss.space, "input": inp, "loss": "identity"}
                tables.append(metrics_table(x[:, 0], ss, cond))
    table = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()
    if not table.empty:
        table = table.rename(columns={"loss": "method"})
    log.info("baselines: %d rows for %d subjects", len(table), len(held_out))
    return table
