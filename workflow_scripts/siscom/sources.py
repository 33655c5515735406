"""The interictal sources of SISCOM and the two built from other subjects' scans.

Five kinds: the real interictal SPECT; a synthetic one per condition ('input/loss'); a **flat**
interictal, the training cohort's mean relative SPECT; the subject's PET smoothed to SPECT
resolution and **mapped linearly** to relative SPECT uptake; and the **raw PET** in the SPECT's
place (Perissinotti et al.'s shortcut). The flat image and the linear map are fitted on training
subjects only, so the real interictal scan of a scored subject reaches none of them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy import ndimage

REAL, PET, PET_LINEAR, FLAT = "real", "pet", "pet_linear", "flat"  # not synthetic conditions
KIND = {
    REAL: "real interictal SPECT",
    FLAT: "flat: training cohort's mean SPECT",
    PET_LINEAR: "PET smoothed + linear map",
    PET: "raw PET (Perissinotti)",
}
ORDER = (REAL, FLAT, PET_LINEAR, PET)  # baselines first, then the synthetic conditions

FWHM_TO_SIGMA = 1.0 / (2.0 * np.sqrt(2.0 * np.log(2.0)))


def source_slug(source: str) -> str:
    """File-name part of a source: 'real', 'flat', 'pet', 'pet_linear' or
    'synth_input-mri_loss-l1_bce'."""
    if source in KIND:
        return source
    model_input, loss = source.split("/")
    return f"synth_input-{model_input}_loss-{loss}"


def source_kind(source: str) -> str:
    return KIND.get(source, "synthetic")


def relative(data: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Uptake relative to its mean over `mask` (0 outside the mask)."""
    mask = np.asarray(mask, bool)
    mean = float(data[mask].mean()) if mask.any() else 0.0
    if not np.isfinite(mean) or mean <= 0:
        raise ValueError(f"no positive uptake in the mask (mean {mean:.3g})")
    return np.where(mask, data / mean, 0.0)


def require_training(subjects: Sequence[str], splits: Sequence[str]) -> None:
    """The cohort-built sources may only learn from training subjects: refuse any other."""
    others = [f"sub-{s} ({sp})" for s, sp in zip(subjects, splits, strict=True) if sp != "train"]
    if others:
        raise ValueError(
            f"SISCOM cohort sources must come from training subjects only; got {', '.join(others)}"
        )


def cohort_mean(volumes: Iterable[np.ndarray], masks: Iterable[np.ndarray]) -> np.ndarray:
    """Voxelwise mean of relative uptake over subjects (each divided by its mean in its own
    mask); at a voxel only the subjects whose mask covers it count, 0 where none does."""
    total = count = None
    for vol, mask in zip(volumes, masks, strict=True):
        m = np.asarray(mask, bool)
        rel = relative(np.asarray(vol, np.float64), m)
        total = rel if total is None else total + rel
        count = m.astype(np.int32) if count is None else count + m
    if total is None:
        raise ValueError("no training subject with a SPECT: the flat interictal needs one")
    return np.where(count > 0, total / np.maximum(count, 1), 0.0)


def fill_outward(image: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Every voxel outside `valid` takes the value of the nearest valid voxel."""
    valid = np.asarray(valid, bool)
    if not valid.any():
        raise ValueError("nothing to fill from: no valid voxel")
    idx = ndimage.distance_transform_edt(~valid, return_distances=False, return_indices=True)
    return image[tuple(idx)]


def fill_to_mask(data: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """An image over a mask: its own counts where it has them, the nearest counted voxel's value
    where the mask reaches beyond them (e.g. the PET's brain mask inside the MRI's), 0 outside.
    SISCOM would read a rim of zeros as a rim of hyperperfusion."""
    mask = np.asarray(mask, bool)
    counted = mask & (np.asarray(data) > 0)
    if not counted.any():
        raise ValueError("the image has no counts inside the mask")
    return np.where(mask, fill_outward(np.where(counted, data, 0.0), counted), 0.0)


def smooth_in_mask(
    data: np.ndarray, mask: np.ndarray, fwhm_mm: float, voxel_mm: Sequence[float]
) -> np.ndarray:
    """Gaussian smoothing to a coarser resolution inside a mask, normalised by the smoothed mask
    so the brain's edge is not darkened by the zeros around it (0 outside the mask)."""
    m = np.asarray(mask, bool)
    if fwhm_mm <= 0:
        return np.where(m, data, 0.0)
    sigma = fwhm_mm * FWHM_TO_SIGMA / np.asarray(voxel_mm, float)
    num = ndimage.gaussian_filter(np.where(m, data, 0.0).astype(np.float64), sigma)
    den = ndimage.gaussian_filter(m.astype(np.float64), sigma)
    return np.where(m, num / np.maximum(den, 1e-6), 0.0)


@dataclass(frozen=True)
class LinearMap:
    """Relative SPECT uptake = intercept + slope x relative (smoothed) PET uptake."""

    intercept: float
    slope: float
    r2: float
    n_voxels: int

    def apply(self, pet_rel: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return np.where(np.asarray(mask, bool), self.intercept + self.slope * pet_rel, 0.0)

    def as_dict(self) -> dict:
        return asdict(self)


def fit_linear_map(pet_rel: Sequence[np.ndarray], spect_rel: Sequence[np.ndarray]) -> LinearMap:
    """Least squares over the voxels of every training subject (already masked, flattened)."""
    x = np.concatenate([np.ravel(v) for v in pet_rel])
    y = np.concatenate([np.ravel(v) for v in spect_rel])
    if x.size < 2 or np.ptp(x) == 0:
        raise ValueError(f"cannot fit the PET -> SPECT map on {x.size} voxels without spread")
    design = np.column_stack([np.ones_like(x), x])
    (a, b), *_ = np.linalg.lstsq(design, y, rcond=None)
    resid = y - (a + b * x)
    r2 = 1.0 - float(resid @ resid) / float(((y - y.mean()) ** 2).sum())
    return LinearMap(float(a), float(b), r2, int(x.size))


def pet_relative(
    pet: np.ndarray, mri_mask: np.ndarray, fwhm_mm: float, voxel_mm: Sequence[float]
) -> np.ndarray:
    """A subject's PET at SPECT resolution over the MRI brain mask, relative to its mean there
    (the same for training subjects and scored ones: neither uses a SPECT mask). Smoothed where
    the skull-stripped PET has counts, then carried to the rest of the MRI mask from the nearest
    such voxel, so the two masks' disagreement at the edge makes no rim of zeros."""
    mri_mask = np.asarray(mri_mask, bool)
    has_pet = mri_mask & (np.asarray(pet) > 0)
    if not has_pet.any():
        raise ValueError("the PET has no counts inside the MRI brain mask")
    smooth = fill_outward(smooth_in_mask(pet, has_pet, fwhm_mm, voxel_mm), has_pet)
    return relative(smooth, mri_mask)
