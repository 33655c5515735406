"""Monte Carlo ceiling (approximate) of the scores, simulated cohort only.

What is the best score a predictor could reach against a real target that is one Poisson draw
of the simulator's expected SPECT? Not the expected image scaled by its own per-slice min/max
(the old "noiseless ceiling"): the target's scaling includes its noise (its maximum is a few
percent above the expectation's), so a predictor of the scaled noisy target beats it.

The estimate here: redraw the counts K times from the expected image exactly as the simulator
drew the real scan (Poisson of the clipped expectation, int16; simulate/subject.py), push each
draw through the real scan's preprocessing (reorient, SPECT histogram mask, its stored rigid
transform to the MRI (and the MRI's to MNI), linear resampling onto the space's grid) and the
same slice cut and target scaling as the real target (slices.target_scaling, per_slice or
per_volume), and for the volume metrics the same relative-uptake scaling; the mean of the
scaled draws estimates E[scaled target | expected image], the best predictor in mean square,
and it is scored against the subject's real target like any model. Approximate: K is finite
(the mean keeps 1/K of a draw's variance), the registration is not redone per draw, and the
mean-square-optimal predictor is not the optimum of SSIM or MAE. It is an estimate, not a bound.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np

from workflow_scripts.evaluate.volume_metrics import relative
from workflow_scripts.nifti_io import save_nifti
from workflow_scripts.preprocess import registration as reg
from workflow_scripts.preprocess.spect_mask import spect_brain_mask
from workflow_scripts.slices.extract import cut, relative_target, scale_to_unit
from workflow_scripts.slices.files import SubjectSlices

log = logging.getLogger(__name__)

# How the ceiling appears in tables (input, loss/method columns).


def redraw(expected: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One scan's counts from the expected image, as simulate/subject.py draws the real one."""
    return rng.poisson(np.clip(expected, 0, None)).astype(np.int16)


def scaled_target(data: np.ndarray, brain: np.ndarray, ss: SubjectSlices) -> np.ndarray:
    """A SPECT volume on the space grid cut and scaled as slices.extract scales the target of
    `ss`: its slices, window and mode (per_volume: relative to the mean over the MRI brain
    mask `brain`, on the fixed line; per_slice: each slice by its own min/max)."""
    if ss.target_scaling == "per_volume":
        return relative_target(data, brain, ss.z, ss.corner, ss.size)[0]
    return scale_to_unit(cut(data, ss.z, ss.corner, ss.size), ss.target_scaling)[0]


@dataclass
class CeilingEstimate:
    slices: np.ndarray  # (N, S, S) mean of the scaled draws: the predicted target slices
    volume: np.ndarray  # mean of the draws in relative uptake (brain mean 1)
    sd: np.ndarray  # SD over the draws of the relative volume (the ceiling's "uncertainty")
    draws: int


def monte_carlo_mean(
    expected: np.ndarray,
    preprocess: Callable[[np.ndarray], np.ndarray],
    brain: np.ndarray,
    ss: SubjectSlices,
    draws: int,
    rng: np.random.Generator,
) -> CeilingEstimate:
    """Average of `draws` scaled redraws. `preprocess` maps raw counts to the space grid (the
    real scan's preprocessing); `brain` is the MRI brain mask on that grid."""
    if draws < 1:
        raise ValueError(f"sub-{ss.subject}: the Monte Carlo ceiling needs >= 1 draw, got {draws}")
    total_slices = total = total_sq = None
    for _ in range(draws):
        data = np.asarray(preprocess(redraw(expected, rng)), dtype=np.float64)
        s = scaled_target(data, brain, ss).astype(np.float64)
        rel = relative(data, brain)
        if total is None:
            total_slices, total, total_sq = s, rel, rel**2
        else:
            total_slices, total, total_sq = total_slices + s, total + rel, total_sq + rel**2
    mean = total / draws
    sd = np.sqrt(np.clip(total_sq / draws - mean**2, 0, None))
    return CeilingEstimate((total_slices / draws).astype(np.float32), mean, sd, draws)


def subject_rng(seed: int, subject: str) -> np.random.Generator:
    """A stream per subject, the same in every space (the spaces see the same draws)."""
    return np.random.default_rng([int(seed), zlib.crc32(subject.encode())])


def scan_preprocessing(
    raw_affine: np.ndarray,
    *,
    subject: str,
    mask_cfg: dict,
    grid: nib.Nifti1Image,
    transforms: list[str],
    workdir: Path,
) -> Callable[[np.ndarray], np.ndarray]:
    """The real SPECT's preprocessing (preprocess.reorient_job, spectmask_job, space_job) as a
    function of raw counts: RAS reorientation, histogram brain mask, masked image resampled
    linearly onto `grid` through the stored `transforms` (registration is not redone)."""

    def run(counts: np.ndarray) -> np.ndarray:
        img = nib.as_closest_canonical(nib.Nifti1Image(counts, raw_affine))
        mask, _ = spect_brain_mask(
            img, subject=subject, method=mask_cfg["method"], fraction=mask_cfg["fraction"]
        )
        data = np.asarray(img.dataobj, dtype=np.float32)
        brain_file = workdir / "draw_brain.nii.gz"
        save_nifti((data * mask).astype(np.float32), brain_file, affine=img.affine)
        out = reg.resample(brain_file, grid, transforms, workdir / "draw_space.nii.gz")
        return np.asarray(out.dataobj, dtype=np.float64)

    return run
