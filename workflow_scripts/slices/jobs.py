"""Snakemake entries of rules/slices.smk: one modality's slices of one subject and space (the
inputs: rule slices; the target SPECT: rule target_slices)."""

from __future__ import annotations

from workflow_scripts.slices.extract import extract
from workflow_scripts.slices.files import TARGET, save_slices


def _cut_settings(smk) -> dict:
    """What every slice job of a subject uses alike: who it is and how the slices are cut."""
    cfg = smk.params.settings
    return {
        "subject": smk.wildcards.subject,
        "split": smk.params.split,
        "space": smk.params.space_name,
        "n_slices": cfg["n_slices"],
        "size": cfg["size"],
        "min_brain_fraction": cfg["min_brain_fraction"],
    }


def slices_job(smk) -> None:
    """Snakemake entry (rule slices): one input modality (mri | pet) of a subject in a space."""
    cfg, modality = smk.params.settings, smk.wildcards.modality
    ss = extract(
        {modality: smk.input.image},
        smk.input.brainmask,
        scaling=cfg["scaling"],
        context=cfg["context"],
        **_cut_settings(smk),
    )
    save_slices(ss, smk.output[0], modality, cfg["dtype"])


def target_slices_job(smk) -> None:
    """Snakemake entry (rule target_slices): the target SPECT of a subject in a space."""
    cfg = smk.params.settings
    ss = extract(
        {TARGET: smk.input.image},
        smk.input.brainmask,
        target_scaling=cfg["target_scaling"],
        **_cut_settings(smk),
    )
    save_slices(ss, smk.output[0], TARGET, cfg["dtype"])
