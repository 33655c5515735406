# Shared by every stage: the cohort, path helpers and wildcard constraints.

from pathlib import Path

from workflow_scripts.cohort import build_cohort

COHORT = build_cohort(config)
OUT = Path(config["out_dir"])
BIDS = Path(config["bids_dir"])
LOGS = OUT / "logs"
SPACES = config["train"]["spaces"]
INPUTS = config["train"]["inputs"]
LOSSES = config["train"]["losses"]


wildcard_constraints:
    subject="[A-Za-z0-9]+",
    space="native|template",
    input="mri|pet|mri_pet",
    loss="l1_bce|l1_bce_ssim",


def bids(subject, modality):
    """Path of one raw input image (modality: t1w, pet, spect, ictal)."""
    return str(COHORT.path(subject, modality))


# --- final targets of each stage (rule all) ---


def simulate_targets():
    if not config["simulate"]["enabled"]:
        return []
    qc = expand(OUT / "qc" / "simulate" / "sub-{subject}_simulate.png", subject=COHORT.subjects())
    return [BIDS / "participants.tsv", *qc]
