"""Synthesise a subject's SPECT with one condition's model, rebuild the volume, and score it."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from workflow_scripts.layout import TEMPLATE, XFORM_CODE
from workflow_scripts.metrics import score_slices
from workflow_scripts.nifti_io import save_nifti, write_text
from workflow_scripts.slices import load_slices, place_slices, rebuild_volume

log = logging.getLogger(__name__)


def predict_subject(
    model_dir: str | Path,
    slice_file: str | Path,
    out_volume: str | Path,
    out_slices: str | Path,
    model_input: str,
    code: int = 1,
) -> np.ndarray:
    """Write the synthetic SPECT: [-1, 1] slices, and a volume on the subject's grid. Refuses
    subjects the model was trained on."""
    from model.data import assert_not_trained_on
    from model.infer import load_generator, synthesise
    from workflow_scripts.slices import stack_input

    ss = load_slices(slice_file)
    assert_not_trained_on(model_dir, ss.subject)
    pred = synthesise(load_generator(model_dir), stack_input(ss, model_input))
    tmp = Path(out_slices).with_name(f".{Path(out_slices).name}.tmp.npz")
    np.savez(tmp, pred=pred.astype(np.float32), z=ss.z)
    tmp.replace(out_slices)
    # image units through the real SPECT's slice scales where there is one (scored subjects);
    # predict-split subjects have none: relative uptake (prediction + 1, background 0)
    volume = (
        rebuild_volume(pred, ss, "spect") if "spect" in ss.images else place_slices(pred + 1.0, ss)
    )
    save_nifti(volume, out_volume, code=code)
    log.info("sub-%s: %d slices synthesised with %s", ss.subject, len(pred), model_dir)
    return pred


def score_subject(
    synth_slices: str | Path, slice_file: str | Path, out_metrics: str | Path, condition: dict
) -> pd.DataFrame:
    """Per-slice metrics of a synthetic SPECT against the real one (whole slice and brain)."""
    ss = load_slices(slice_file)
    if "spect" not in ss.images:
        raise ValueError(f"sub-{ss.subject} ({slice_file}) has no real SPECT to score against")
    with np.load(synth_slices) as f:
        pred = f["pred"]
    table = metrics_table(pred, ss, condition)
    write_text(table.to_csv(sep="\t", index=False), out_metrics)
    return table


def metrics_table(pred: np.ndarray, ss, condition: dict) -> pd.DataFrame:
    table = pd.DataFrame(score_slices(pred, np.asarray(ss.images["spect"]), np.asarray(ss.mask)))
    table.insert(0, "z", np.asarray(ss.z)[table["slice"].to_numpy()])
    for key in ("loss", "input", "space"):
        table.insert(0, key, condition[key])
    table.insert(0, "split", ss.split)
    table.insert(0, "subject", f"sub-{ss.subject}")
    table.insert(0, "condition", f"{condition['space']}/{condition['input']}/{condition['loss']}")
    return table


def predict_job(smk) -> None:
    """Snakemake entry (rule predict)."""
    import torch

    from workflow_scripts.derivatives import dataset_root, sha256, write_sidecar

    torch.set_num_threads(max(1, int(smk.threads)))
    label, condition = smk.wildcards.space, smk.params.condition
    predict_subject(
        Path(smk.input.weights).parent,
        smk.input.slices,
        smk.output.volume,
        smk.output.slices,
        condition["input"],
        code=XFORM_CODE[label],
    )
    write_sidecar(
        smk.output.volume,
        sources=list(smk.params.sources),
        skull_stripped=True,
        spatial_reference=label if label == TEMPLATE else smk.params.reference,
        Description="synthetic interictal SPECT, pix2pix generator applied to the subject's "
        "MRI and/or PET slices",
        Model={
            "Condition": condition,
            "Weights": Path(smk.input.weights)
            .absolute()
            .relative_to(dataset_root(smk.output.volume))
            .as_posix(),
            "WeightsSHA256": sha256(smk.input.weights),
        },
    )


def score_job(smk) -> None:
    """Snakemake entry (rule score)."""
    score_subject(smk.input.synth, smk.input.slices, smk.output[0], smk.params.condition)
