"""Whole-volume agreement of a synthetic SPECT with the real one, in relative uptake, inside the
scoring mask: the MRI brain mask x the real SPECT's own mask (the reference is only defined
there; the synthetic volume never sees either). Each volume is divided by its mean inside it.

- through-slice consistency: the coefficient of variation along z of (synthetic slice mean /
  real slice mean), in percent, over the axial slices holding at least a quarter of the largest
  slice's mask; 0 when no slice carries its own gain;
- SSIM of coronal and sagittal reformats: scikit-image's SSIM (11 x 11 Gaussian window, sigma
  1.5, K1 0.01, K2 0.03, data range RELATIVE_MAX) of each plane that meets the brain, its map
  averaged over the plane's brain voxels 5 or more from its border (as scikit-image does), then
  over planes weighted by those voxels;
- MAE inside the brain;
- uncertainty check: mean absolute error in the voxels of the top decile of the uncertainty map
  over that of the bottom decile (> 1 when the map points at the errors).
"""

from __future__ import annotations

import numpy as np
from skimage.metrics import structural_similarity

from workflow_scripts.slices import RELATIVE_MAX

SSIM_WINDOW = {"gaussian_weights": True, "sigma": 1.5, "use_sample_covariance": False}


def relative(volume: np.ndarray, brain: np.ndarray) -> np.ndarray:
    mean = float(volume[brain].mean()) if brain.any() else 0.0
    if not mean > 0:
        raise ValueError("no positive uptake inside the brain mask")
    return volume / mean


# Axial slices whose mask covers less than this share of the largest slice's are left out of the
# through-slice CV: a few voxels at the vertex or the skull base make the ratio pure noise.
MIN_SLICE_SHARE = 0.25


def through_slice_cv(synth: np.ndarray, real: np.ndarray, brain: np.ndarray) -> float:
    """CV (%) along z of synthetic / real slice means inside the mask, over the axial slices
    whose mask covers at least MIN_SLICE_SHARE of the largest slice's area."""
    area = brain.sum(axis=(0, 1))
    ratios = []
    for z in np.flatnonzero(area >= MIN_SLICE_SHARE * area.max()):
        m = brain[:, :, z]
        if real[:, :, z][m].mean() > 0:
            ratios.append(synth[:, :, z][m].mean() / real[:, :, z][m].mean())
    ratios = np.asarray(ratios)
    return float(100.0 * ratios.std() / ratios.mean())


def plane_ssim(synth: np.ndarray, real: np.ndarray, brain: np.ndarray, axis: int) -> float:
    """Brain-masked SSIM of the planes across `axis` (0 sagittal, 1 coronal, 2 axial)."""
    total, weight = 0.0, 0
    for k in range(brain.shape[axis]):
        m = np.take(brain, k, axis=axis)
        if not m.any():
            continue
        a = np.take(synth, k, axis=axis).astype(np.float64)
        b = np.take(real, k, axis=axis).astype(np.float64)
        if min(a.shape) < 11:
            raise ValueError(f"plane {a.shape} is smaller than the 11 x 11 SSIM window")
        _, smap = structural_similarity(a, b, data_range=RELATIVE_MAX, full=True, **SSIM_WINDOW)
        # as scikit-image averages: only pixels a half window (5) or more from the border
        inner = np.zeros_like(m)
        inner[5:-5, 5:-5] = m[5:-5, 5:-5]
        total += float(smap[inner].sum())
        weight += int(inner.sum())
    if not weight:
        raise ValueError("no brain voxel lies 5 or more voxels inside a plane's border")
    return total / weight


def uncertainty_ratio(
    synth: np.ndarray, real: np.ndarray, sd: np.ndarray, brain: np.ndarray
) -> float:
    """Mean |synthetic - real| in the top uncertainty decile over that in the bottom decile."""
    err, u = np.abs(synth - real)[brain], sd[brain]
    lo, hi = np.quantile(u, [0.1, 0.9])
    bottom, top = err[u <= lo], err[u >= hi]
    return float(top.mean() / bottom.mean())


def volume_scores(
    synth: np.ndarray, real: np.ndarray, sd: np.ndarray, brain: np.ndarray
) -> dict[str, float]:
    """Every volume score of one synthetic SPECT (inputs in any units: both are made relative)."""
    factor = float(synth[brain].mean())  # the uncertainty map scales with its volume
    synth, real, sd = relative(synth, brain), relative(real, brain), sd / factor
    return {
        "MAE_brain": float(np.abs(synth - real)[brain].mean()),
        "through_slice_CV_percent": through_slice_cv(synth, real, brain),
        "SSIM_coronal": plane_ssim(synth, real, brain, axis=1),
        "SSIM_sagittal": plane_ssim(synth, real, brain, axis=0),
        "uncertainty_top_bottom_MAE_ratio": uncertainty_ratio(synth, real, sd, brain),
    }
