"""Score a synthetic SPECT against the real one: per slice on the sampled slices (the
reproduction of the paper's Table 4 on [-1, 1], plus the primary relative-uptake metrics of the
same slices) and as a whole volume (workflow_scripts.evaluate.volume_metrics, the primary endpoints)."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from workflow_scripts.evaluate.metrics import score_slices


def sampled_predictions(synth_slices: str | Path, z: np.ndarray) -> np.ndarray:
    """The synthetic slices (model output, [-1, 1]) at the given axial indices."""
    with np.load(synth_slices) as f:
        pred, pz = f["pred"], f["z"]
    where = {int(v): i for i, v in enumerate(pz)}
    missing = [int(v) for v in z if int(v) not in where]
    if missing:
        raise ValueError(f"{synth_slices}: no synthetic slice at z {missing}")
    return pred[[where[int(v)] for v in z]]


def metrics_table(pred: np.ndarray, ss, condition: dict) -> pd.DataFrame:
    table = pd.DataFrame(score_slices(pred, np.asarray(ss.images["spect"]), np.asarray(ss.mask)))
    table.insert(0, "z", np.asarray(ss.z)[table["slice"].to_numpy()])
    for key in ("loss", "input", "space"):
        table.insert(0, key, condition[key])
    table.insert(0, "split", ss.split)
    table.insert(0, "subject", f"sub-{ss.subject}")
    table.insert(0, "condition", f"{condition['space']}/{condition['input']}/{condition['loss']}")
    # training run (train.seeds; run 0 when the condition names none)
    table.insert(table.columns.get_loc("loss") + 1, "run", condition.get("run", 0))
    return table


def scored_tables(
    pred: np.ndarray,
    ss,
    condition: dict,
    volume: np.ndarray,
    real: np.ndarray,
    sd: np.ndarray,
    mask: np.ndarray,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-slice table (the paper's [-1, 1] Table 4 metrics of the slices `pred`, and the
    primary relative-uptake metrics of the same axial slices of `volume`) and the one-row
    volume table, both against the real SPECT inside the scoring `mask`."""
    from workflow_scripts.evaluate.volume_metrics import (
        relative,
        slice_primary_scores,
        volume_scores,
    )

    table = metrics_table(pred, ss, condition)
    rel = slice_primary_scores(relative(volume, mask), relative(real, mask), mask, ss.z)
    table = table.merge(pd.DataFrame(rel), on="z", how="left", validate="one_to_one")
    scores = volume_scores(volume, real, sd, mask)
    row = {"subject": f"sub-{ss.subject}", "split": ss.split, **condition}
    row["run"] = condition.get("run", 0)
    return table, pd.DataFrame([{**row, **scores}])


def load_float(path: str | Path) -> np.ndarray:
    return np.asarray(nib.load(path).dataobj, dtype=np.float64)


def scoring_mask(brainmask: str | Path, spectmask: str | Path) -> np.ndarray:
    """Where the reference exists: the MRI brain mask x the real SPECT's mask."""
    return (load_float(brainmask) > 0) & (load_float(spectmask) > 0)
