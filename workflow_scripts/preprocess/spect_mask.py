"""SPECT brain mask from the intensity histogram, as the paper did in MIPAV.

Smooth lightly (counts are noisy), take a threshold from the histogram of the head, keep the
largest connected component and fill its holes (slice by slice too, for the ventricles).
"""

from __future__ import annotations

import logging

import nibabel as nib
import numpy as np
from scipy import ndimage
from skimage.filters import threshold_otsu

from workflow_scripts.masks import fill_holes, largest_component

log = logging.getLogger(__name__)


class MaskError(RuntimeError):
    """The SPECT mask came out empty or implausible."""


def histogram_threshold(data: np.ndarray, method: str = "otsu", fraction: float = 0.35) -> float:
    """Threshold separating brain uptake from background and extracerebral activity.

    otsu: Otsu's threshold of the voxels above 5% of the robust maximum (the head), i.e. the
    brain/non-brain valley of the head's histogram. fraction: fraction of the 99.5th percentile.
    """
    robust_max = float(np.percentile(data, 99.5))
    if robust_max <= 0:
        return float("inf")
    if method == "fraction":
        return fraction * robust_max
    head = data[data > 0.05 * robust_max]
    return float(threshold_otsu(head))


def spect_brain_mask(
    img: nib.Nifti1Image,
    *,
    subject: str = "",
    method: str = "otsu",
    fraction: float = 0.35,
    smooth_mm: float = 4.0,
) -> tuple[np.ndarray, dict]:
    """Binary brain mask of a SPECT image and a record of how it was made."""
    data = np.asarray(img.dataobj, dtype=np.float32)
    zooms = np.array(img.header.get_zooms()[:3], dtype=float)
    smooth = ndimage.gaussian_filter(data, smooth_mm / 2.3548 / zooms)
    thr = histogram_threshold(smooth, method, fraction)
    mask = smooth > thr
    if not mask.any():
        raise MaskError(f"sub-{subject} SPECT: mask is empty (threshold {thr:.3g})")
    mask = fill_holes(largest_component(mask))
    for k in range(mask.shape[2]):  # ventricles open to a slice edge in 3D
        mask[:, :, k] = fill_holes(mask[:, :, k])
    volume_ml = float(mask.sum() * np.prod(zooms) / 1000.0)
    if volume_ml < 300:
        raise MaskError(
            f"sub-{subject} SPECT: histogram mask is only {volume_ml:.0f} ml (threshold {thr:.3g}); "
            "the image may not contain a brain"
        )
    return mask, {"method": method, "threshold": thr, "volume_ml": round(volume_ml, 1)}
