"""The two spaces' grids (native: centred on the subject's MRI brain; template: MNI152) and the
template files every template-space job reads."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np

from workflow_scripts.nifti_io import save_nifti
from workflow_scripts.preprocess import registration as reg


def working_resolution(grid_cfg: dict) -> float:
    """Register at 2 mm, or at the output grid's voxel size when that is coarser."""
    return max(reg.WORKING_MM, float(grid_cfg["voxel_mm"]))


def template_mask(template: nib.Nifti1Image) -> nib.Nifti1Image:
    """nilearn's MNI152 brain mask on the template's grid (its resampled T1 is not exactly 0
    outside the brain, so thresholding the T1 would not do)."""
    from nilearn import datasets

    res = 1 if abs(template.affine[0, 0]) < 1.5 else 2
    mask = datasets.load_mni152_brain_mask(resolution=res)
    return nib.Nifti1Image((np.asarray(mask.dataobj) > 0.5).astype(np.uint8), mask.affine)


def study_grid(grid_cfg: dict, centre_mask: str) -> nib.Nifti1Image:
    """A space's grid, centred on a brain mask: the subject's MRI brain (native) or the
    template's (template, `template_files`)."""
    centre = reg.mask_centroid(nib.load(centre_mask))
    return reg.grid_image(centre, grid_cfg["shape"], grid_cfg["voxel_mm"])


def template_files(t1w_out: str | Path, mask_out: str | Path) -> None:
    """Write nilearn's MNI152 brain T1 at 2 mm and its brain mask once, as they load (same
    dtype), so that template-space jobs read two small files instead of importing nilearn."""
    template = reg.template_brain(2.0)
    save_nifti(np.asanyarray(template.dataobj), t1w_out, affine=template.affine, code=4)
    mask = template_mask(template)
    save_nifti(np.asanyarray(mask.dataobj), mask_out, affine=mask.affine, code=4)
