"""Synthesise a subject's SPECT with one condition's model (workflow_scripts.synthesis): the
volume, its uncertainty map and the synthetic slices, never given the subject's real SPECT.
Scoring them against the real one is workflow_scripts.score."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from workflow_scripts.layout import TEMPLATE, XFORM_CODE
from workflow_scripts.nifti_io import atomic_path, save_nifti


def predict_job(smk) -> None:
    """Snakemake entry (rule predict): never given the subject's SPECT."""
    import torch

    from workflow_scripts.derivatives import dataset_root, sha256, write_sidecar
    from workflow_scripts.synthesis import model_meta, synthesise_subject

    torch.set_num_threads(max(1, int(smk.threads)))
    label, condition = smk.wildcards.space, smk.params.condition
    model_dir = Path(smk.input.weights).parent
    from workflow_scripts.train.training_set import assert_not_trained_on

    assert_not_trained_on(model_dir, smk.wildcards.subject)
    volumes = {m: smk.input[m] for m in ("mri", "pet") if m in smk.input.keys()}
    result = synthesise_subject(
        model_dir,
        volumes,
        smk.input.brainmask,
        subject=smk.wildcards.subject,
        space=condition["space"],
        scaling=smk.params.scaling,
        shift_px=smk.params.shift_px,
    )
    code = XFORM_CODE[label]
    save_nifti(result.volume, smk.output.volume, code=code)
    save_nifti(result.sd, smk.output.sd, code=code)
    with atomic_path(smk.output.slices, ".npz") as tmp:
        np.savez(tmp, pred=result.pred.astype(np.float32), z=result.z)
    meta = model_meta(model_dir)
    model = {
        "Condition": condition,
        "Context": meta["context"],
        "TargetScaling": meta["target_scaling"],
        "Weights": Path(smk.input.weights)
        .absolute()
        .relative_to(dataset_root(smk.output.volume))
        .as_posix(),
        "WeightsSHA256": sha256(smk.input.weights),
        "Precision": result.precision,
    }
    units = "uptake relative to the mean over the MRI brain mask (brain mean = 1)"
    if meta["target_scaling"] == "per_slice":
        units += "; per_slice model: each axial slice carries its own arbitrary gain"
    common = {
        "sources": list(smk.params.sources),
        "spatial_reference": label if label == TEMPLATE else smk.params.reference,
    }
    write_sidecar(
        smk.output.volume,
        skull_stripped=True,
        Description="synthetic interictal SPECT: pix2pix generator applied to every brain "
        "slice of the subject's MRI and/or PET (never its real SPECT)",
        Units=units,
        Model=model,
        **common,
    )
    write_sidecar(
        smk.output.sd,
        Description="uncertainty of the synthetic SPECT: standard deviation over test-time "
        f"augmentations (mirror x shifts of 0 / +-{smk.params.shift_px} pixels)",
        Units=units,
        Model=model,
        **common,
    )
