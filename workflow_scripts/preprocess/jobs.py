"""Snakemake entries of rules/preprocess.smk (and synth_to_scan): reorient, skull strip / mask,
register, resample to the two spaces, QC. Each `*_job(smk)` reads the job's files and settings
and calls the stage's plain functions (reorient, skullstrip, spect_mask, registration, spaces,
qc), which the tests use directly."""

from __future__ import annotations

import logging
from pathlib import Path

import nibabel as nib
import numpy as np

from workflow_scripts.derivatives import write_sidecar
from workflow_scripts.layout import TEMPLATE, XFORM_CODE
from workflow_scripts.nifti_io import save_nifti, write_json
from workflow_scripts.preprocess import registration as reg
from workflow_scripts.preprocess.reorient import reorient
from workflow_scripts.preprocess.spaces import study_grid, template_files, working_resolution

log = logging.getLogger(__name__)


def reorient_job(smk) -> None:
    info = reorient(
        smk.input[0], smk.output.image, smk.params.subject, smk.params.mod, smk.params.pet_4d
    )
    write_sidecar(
        smk.output.image,
        sources=[smk.input[0]],
        skull_stripped=False,
        spatial_reference=smk.input[0],
        Description="the input image with its voxel axes permuted/flipped to RAS+ (no "
        "interpolation); 4D PET averaged over frames",
        OrientationIn=info["orientation_in"],
    )


def skullstrip_job(smk) -> None:
    from workflow_scripts.preprocess.skullstrip import skull_strip  # nipype is slow to import

    cfg = smk.params.settings
    mod = smk.params.mod
    record = skull_strip(
        smk.input[0],
        smk.output.brain,
        smk.output.mask,
        subject=smk.params.subject,
        modality=mod,
        backend=cfg["backend"],
        frac=cfg["frac"],
        robust=cfg["robust"],
    )
    _brain_sidecars(smk, record)


def _brain_sidecars(smk, record: dict) -> None:
    """BIDS sidecars of a brain image and its mask (the method's record goes with the image)."""
    own = {"sources": [smk.input[0]], "spatial_reference": smk.input[0]}
    what = "skull-stripped" if smk.params.mod in ("T1w", "pet") else "masked by its histogram"
    write_sidecar(
        smk.output.brain,
        skull_stripped=True,
        Description=f"the reoriented image, {what}",
        **own,
        **record,
    )
    write_sidecar(smk.output.mask, Type="Brain", Description="brain mask", **own)


def spectmask_job(smk) -> None:
    from workflow_scripts.preprocess.spect_mask import spect_brain_mask

    cfg = smk.params.settings
    img = nib.load(smk.input[0])
    mask, info = spect_brain_mask(
        img, subject=smk.params.subject, method=cfg["method"], fraction=cfg["fraction"]
    )
    data = np.asarray(img.dataobj, dtype=np.float32)
    save_nifti((data * mask).astype(np.float32), smk.output.brain, affine=img.affine)
    save_nifti(mask.astype(np.uint8), smk.output.mask, affine=img.affine)
    _brain_sidecars(smk, {"Method": "SPECT intensity histogram", **info})


def working_grid_job(smk) -> None:
    """The subject's MRI brain and mask on the registration working grid (rule working_grid)."""
    reg.set_threads(smk.threads)
    working = working_resolution(smk.params.grid)
    i, o = smk.input, smk.output
    reg.write_working_grid(i.brain, i.mask, working, o.image, o.mask)
    log.info("sub-%s: T1w brain and mask on the %.3g mm working grid", smk.params.subject, working)


def _register(smk, fixed: reg.Image, moving: reg.Image, masks: tuple, kind: str, record: dict):
    """One registration job: `moving` onto `fixed` (each with its brain mask; reg.register says
    what an image given as a path is), the transform, and its JSON sidecar (`record`: sources
    and spaces, plus the registration's own record)."""
    reg.set_threads(smk.threads)
    name = record["FromSpace"].split()[0]  # T1w, or the modality of a scan
    to = "MNI152" if record["ToSpace"] == TEMPLATE else record["ToSpace"]
    done = reg.register(
        fixed,
        moving,
        smk.output.xfm,
        kind=kind,
        cfg=smk.params.registration,
        label=f"sub-{smk.params.subject} {name} -> {to} ({record['Sources'][0]})",
        fixed_mask=masks[0],
        moving_mask=masks[1],
        working_mm=working_resolution(smk.params.grid),
    )
    write_json(
        {**record, "Software": "ANTs (antspyx), ITK transform file", **done}, smk.output.json
    )


def register_mri_job(smk) -> None:
    """Rigid PET/SPECT/ictal -> MRI."""
    i = smk.input
    record = {
        "Sources": [str(i.moving), str(i.mri)],
        "FromSpace": f"{smk.params.mod} scanner space",
        "ToSpace": "T1w",
    }
    fixed, fixed_mask = Path(i.mri_grid), Path(i.mri_grid_mask)  # on the working grid
    masks = (fixed_mask, nib.load(i.moving_mask))
    _register(smk, fixed, nib.load(i.moving), masks, "Rigid", record)


def register_template_job(smk) -> None:
    """Affine MRI -> MNI152 (nilearn's ICBM 2009 brain)."""
    i = smk.input
    record = {"Sources": [str(i.mri)], "FromSpace": "T1w", "ToSpace": TEMPLATE}
    masks = (nib.load(i.template_mask), nib.load(i.mri_mask))
    moving = Path(i.mri_grid)  # the MRI, already on the working grid
    _register(smk, nib.load(i.template), moving, masks, "Affine", record)


def template_job(smk) -> None:
    """Snakemake entry (rule template_files)."""
    template_files(smk.output.t1w, smk.output.mask)


def space_job(smk) -> None:
    """Resample one modality (and its mask) onto a space's grid through its transforms."""
    reg.set_threads(smk.threads)
    space, mod, label = smk.params.space_name, smk.params.modality, smk.wildcards.space
    grid = study_grid(smk.params.grid, smk.input.grid_mask)
    to_mri = [smk.input.xfm] if "xfm" in smk.input.keys() else []
    to_mni = [smk.input.template_xfm] if space == "template" else []
    transforms = to_mni + to_mri  # antsApplyTransforms order: last is applied first
    code = XFORM_CODE[label]
    reg.resample(
        smk.input.image, grid, transforms, smk.output.image, interpolation="linear", code=code
    )
    # the T1w image defines space-T1w's grid; every other image refers to it
    ref = label if space == "template" or mod == "T1w" else smk.params.reference
    sources = [smk.input.image, *transforms]
    stripped = mod != "ictal"
    write_sidecar(
        smk.output.image,
        sources=sources,
        skull_stripped=stripped,
        spatial_reference=ref,
        Description=f"{mod} resampled onto the {space} grid ({label})",
    )
    if "mask" in smk.input.keys():
        reg.resample(
            smk.input.mask,
            grid,
            transforms,
            smk.output.mask,
            interpolation="nearestNeighbor",
            dtype=np.uint8,
            code=code,
        )
        write_sidecar(
            smk.output.mask,
            sources=[smk.input.mask, *transforms],
            spatial_reference=ref,
            Type="Brain",
            Description=f"{mod} brain mask resampled onto the {space} grid ({label})",
        )
    log.info("sub-%s %s -> space-%s through %s", smk.params.subject, mod, label, transforms)


def qc_job(smk) -> None:
    from workflow_scripts.preprocess.qc import registration_qc

    registration_qc(
        smk.input.mri,
        {k: v for k, v in smk.input.items() if k not in ("mri",)},
        smk.output[0],
        title=f"sub-{smk.wildcards.subject} space-{smk.wildcards.space}",
    )


def to_scan_job(smk) -> None:
    """Snakemake entry (rule synth_to_scan): the native synthetic SPECT into one of the
    subject's own SPECT scans, through that scan's rigid transform inverted."""
    reg.set_threads(smk.threads)
    reference = nib.load(smk.input.reference)
    reg.resample(smk.input.volume, reference, [smk.input.xfm], smk.output.image, invert=True)
    write_sidecar(
        smk.output.image,
        sources=[smk.input.volume, smk.input.xfm],
        spatial_reference=smk.params.raw,
        Description="the synthetic interictal SPECT resampled onto the grid of the subject's own "
        f"{smk.wildcards.scan} SPECT scan (RAS voxel order, same world coordinates): it overlays "
        "that scan in any viewer",
    )


def description_job(smk) -> None:
    """Snakemake entry (rule derivatives_description): the derivatives' dataset_description.json."""
    from workflow_scripts.derivatives import write_description
    from workflow_scripts.layout import Layout

    write_description(Layout(Path(smk.output[0]).parent, Path(smk.params.bids)))
