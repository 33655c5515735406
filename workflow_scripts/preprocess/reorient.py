"""Validate an input image and bring its voxel axes to RAS+ (no interpolation)."""

from __future__ import annotations

import logging

import nibabel as nib

from workflow_scripts.nifti_io import load_volume, save_nifti

log = logging.getLogger(__name__)

# Our modality names -> the cohort's input keys.
INPUT_KEY = {"T1w": "t1w", "pet": "pet", "spect": "spect", "ictal": "ictal"}


def reorient(in_file, out_file, subject: str, modality: str, pet_4d: str = "mean") -> dict:
    """Validate, then permute/flip voxels to RAS+ (no interpolation, world positions kept)."""
    img = load_volume(in_file, subject, INPUT_KEY[modality], pet_4d=pet_4d)
    before = "".join(nib.aff2axcodes(img.affine))
    canonical = nib.as_closest_canonical(img)
    save_nifti(canonical, out_file)
    log.info("sub-%s %s: %s -> RAS (%s)", subject, modality, before, in_file)
    return {"orientation_in": before, "shape": list(canonical.shape)}
