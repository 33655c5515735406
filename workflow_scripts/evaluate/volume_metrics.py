"""Whole-volume agreement of a synthetic SPECT with the real one, in relative uptake, inside the
scoring mask: the MRI brain mask x the real SPECT's own mask (the reference is only defined
there; the synthetic volume never sees either). Each volume is divided by its mean inside it.

Primary metrics (issue 16; whole-slice [-1, 1] scores are dominated by background and SSIM on
signed data depends on the offset), on the rebuilt volumes in relative uptake (>= 0):
- MAE_rel = mean |synthetic - real| inside the mask;
- RMSE_rel and PSNR_rel_dB = 20 log10(PSNR_RANGE / RMSE_rel), PSNR_RANGE = RELATIVE_MAX = 3.0
  relative uptake, fixed for every subject (not the image's own max); PSNR and RMSE are one
  endpoint, RMSE is reported descriptively only;
- SSIM_rel: 3D SSIM of the two non-negative volumes (scikit-image, Gaussian window sigma 1.5,
  radius 5 (11 voxels), K1 0.01, K2 0.03, population covariances, data range PSNR_RANGE), its
  map averaged over the mask voxels 5 or more from every border of the volume;
- per axial slice (for the violins): the same MAE_rel, PSNR_rel_dB and a 2D SSIM_rel (same
  window and constants) inside the slice's mask.

- through-slice consistency: the coefficient of variation along z of (synthetic slice mean /
  real slice mean), in percent, over the axial slices holding at least a quarter of the largest
  slice's mask; 0 when no slice carries its own gain;
- SSIM of coronal and sagittal reformats: scikit-image's SSIM (11 x 11 Gaussian window, sigma
  1.5, K1 0.01, K2 0.03, data range RELATIVE_MAX) of each plane that meets the brain, its map
  averaged over the plane's brain voxels 5 or more from its border (as scikit-image does), then
  over planes weighted by those voxels;
- uncertainty check: mean absolute error in the voxels of the top decile of the uncertainty map
  over that of the bottom decile (> 1 when the map points at the errors).
"""

from __future__ import annotations

import numpy as np
from skimage.metrics import structural_similarity

from workflow_scripts.slices.files import RELATIVE_MAX

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
        # a basic index (a view), not np.take: take's gather across a Fortran-ordered volume
        # cost ~0.7 ms a plane, more than the SSIM itself
        plane = (slice(None),) * axis + (k,)
        m = brain[plane]
        if not m.any():
            continue
        a = synth[plane].astype(np.float64)
        b = real[plane].astype(np.float64)
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


# fixed data range of the relative-uptake PSNR and SSIM constants (relative uptake units)
PSNR_RANGE = RELATIVE_MAX
PAD = 5  # half of the 11-voxel window: scikit-image averages only voxels this far inside


def psnr_db(rmse: float, data_range: float = PSNR_RANGE) -> float:
    return float("inf") if rmse == 0 else float(20.0 * np.log10(data_range / rmse))


def masked_ssim(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    """SSIM of two non-negative 2D or 3D images, its map averaged over the mask's voxels PAD or
    more from every border (nan when there is none)."""
    a = np.clip(np.asarray(a, dtype=np.float64), 0, None)
    b = np.clip(np.asarray(b, dtype=np.float64), 0, None)
    if min(a.shape) < 2 * PAD + 1:
        raise ValueError(f"image {a.shape} is smaller than the 11-voxel SSIM window")
    _, smap = structural_similarity(a, b, data_range=PSNR_RANGE, full=True, **SSIM_WINDOW)
    inner = np.zeros(mask.shape, bool)
    inner[tuple(slice(PAD, -PAD) for _ in mask.shape)] = True
    inner &= mask
    return float(smap[inner].mean()) if inner.any() else float("nan")


def primary_scores(synth: np.ndarray, real: np.ndarray, brain: np.ndarray) -> dict[str, float]:
    """MAE_rel, RMSE_rel, PSNR_rel_dB and 3D SSIM_rel of two relative-uptake volumes."""
    diff = (synth - real)[brain]
    rmse = float(np.sqrt(np.mean(diff**2)))
    return {
        "MAE_rel": float(np.abs(diff).mean()),
        "RMSE_rel": rmse,
        "PSNR_rel_dB": psnr_db(rmse),
        "SSIM_rel": masked_ssim(synth, real, brain),
    }


def slice_primary_scores(
    synth: np.ndarray, real: np.ndarray, brain: np.ndarray, z: np.ndarray
) -> list[dict]:
    """Per axial slice z (relative-uptake volumes): MAE_rel, PSNR_rel_dB, 2D SSIM_rel inside
    the slice's mask (nan where the mask misses the slice)."""
    rows = []
    for zi in np.asarray(z, dtype=int):
        m = brain[:, :, zi]
        row = {"z": int(zi), "MAE_rel": np.nan, "PSNR_rel_dB": np.nan, "SSIM_rel": np.nan}
        if m.any():
            a, b = synth[:, :, zi], real[:, :, zi]
            diff = (a - b)[m]
            row["MAE_rel"] = float(np.abs(diff).mean())
            row["PSNR_rel_dB"] = psnr_db(float(np.sqrt(np.mean(diff**2))))
            row["SSIM_rel"] = masked_ssim(a, b, m)
        rows.append(row)
    return rows


def volume_scores(
    synth: np.ndarray, real: np.ndarray, sd: np.ndarray, brain: np.ndarray
) -> dict[str, float]:
    """Every volume score of one synthetic SPECT (inputs in any units: both are made relative)."""
    factor = float(synth[brain].mean())  # the uncertainty map scales with its volume
    synth, real, sd = relative(synth, brain), relative(real, brain), sd / factor
    return {
        **primary_scores(synth, real, brain),
        "through_slice_CV_percent": through_slice_cv(synth, real, brain),
        "SSIM_coronal": plane_ssim(synth, real, brain, axis=1),
        "SSIM_sagittal": plane_ssim(synth, real, brain, axis=0),
        "uncertainty_top_bottom_MAE_ratio": uncertainty_ratio(synth, real, sd, brain),
    }
