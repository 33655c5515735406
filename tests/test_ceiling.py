"""The Monte Carlo ceiling (ceiling.py) on small synthetic expected images with Poisson noise."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from workflow_scripts.evaluate.ceiling import (
    monte_carlo_mean,
    redraw,
    scaled_target,
    scan_preprocessing,
    subject_rng,
)
from workflow_scripts.evaluate.metrics import score_slices
from workflow_scripts.evaluate.volume_metrics import volume_scores
from workflow_scripts.slices.extract import cut, extract, scale_to_unit
from workflow_scripts.slices.files import SubjectSlices

MODES = ("per_slice", "per_volume")
SHAPE = (40, 40, 12)


def expected_image(shape=SHAPE) -> tuple[np.ndarray, np.ndarray]:
    """Expected counts ~15-60 in an elliptic 'brain' (0 outside), and that brain mask."""
    x, y, z = np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij")
    brain = x**2 / 0.8 + y**2 / 0.6 < 1
    counts = 35 * (1 + 0.6 * np.cos(4 * x) * np.sin(3 * y) + 0.1 * z)
    return np.where(brain, counts, 0.0), brain


def slices_of(brain: np.ndarray, mode: str) -> SubjectSlices:
    n = brain.shape[2]
    return SubjectSlices(
        subject="09",
        split="test",
        space="native",
        images={},
        mask=np.moveaxis(brain, 2, 0),
        z=np.arange(n),
        corner=(0, 0),
        target_scaling=mode,
    )


def identity(counts: np.ndarray) -> np.ndarray:
    return counts.astype(np.float64)


def mean_psnr(pred: np.ndarray, real: np.ndarray) -> float:
    return float(np.mean([r["PSNR"] for r in score_slices(pred, real)]))


@pytest.mark.parametrize("mode", MODES)
def test_scaled_target_is_the_slice_extractions_target(mode, tmp_path):
    """A draw cut and scaled by the ceiling equals the real pipeline's target (slices.extract)."""
    e, brain = expected_image()
    data = redraw(e, np.random.default_rng(0)).astype(np.float32)
    nib.save(nib.Nifti1Image(data, np.eye(4)), tmp_path / "spect.nii.gz")
    nib.save(nib.Nifti1Image(brain.astype(np.uint8), np.eye(4)), tmp_path / "mask.nii.gz")
    ss = extract(
        {"spect": tmp_path / "spect.nii.gz"},
        tmp_path / "mask.nii.gz",
        subject="09",
        split="test",
        space="native",
        n_slices=None,
        size=36,
        min_brain_fraction=0.0,
        scaling="per_slice",
        target_scaling=mode,
    )
    np.testing.assert_allclose(scaled_target(data, brain, ss), ss.images["spect"], atol=1e-6)


@pytest.mark.parametrize("mode", MODES)
def test_mean_of_draws_approaches_the_expectation_as_draws_grow(mode):
    e, brain = expected_image()
    ss = slices_of(brain, mode)
    ref = monte_carlo_mean(e, identity, brain, ss, 400, np.random.default_rng(99)).slices
    err = []
    for k, seed in ((1, 1), (4, 2), (16, 3), (64, 4)):
        est = monte_carlo_mean(e, identity, brain, ss, k, np.random.default_rng(seed))
        err.append(float(np.mean((est.slices - ref) ** 2)))
    assert err[0] > err[1] > err[2] > err[3]
    assert err[3] < err[0] / 20  # 1/64 of a draw's variance, plus the reference's 1/400


@pytest.mark.parametrize("mode", MODES)
def test_mean_of_draws_beats_a_single_draw_against_the_real_target(mode):
    e, brain = expected_image()
    ss = slices_of(brain, mode)
    real_counts = redraw(e, np.random.default_rng(1)).astype(np.float64)
    real = scaled_target(real_counts, brain, ss)
    est = monte_carlo_mean(e, identity, brain, ss, 16, np.random.default_rng(2))
    other = redraw(e, np.random.default_rng(3)).astype(np.float64)
    single = scaled_target(other, brain, ss)
    # MSE ratio 2 / (1 + 1/16): about 2.7 dB
    assert mean_psnr(est.slices, real) > mean_psnr(single, real) + 1.5
    sd = np.ones_like(real_counts)
    ceiling = volume_scores(est.volume, real_counts, est.sd, brain)
    one = volume_scores(other, real_counts, sd, brain)
    assert ceiling["PSNR_rel_dB"] > one["PSNR_rel_dB"] + 1.5
    assert ceiling["MAE_rel"] < one["MAE_rel"] and ceiling["SSIM_rel"] > one["SSIM_rel"]


def test_per_slice_ceiling_beats_the_noiseless_image_scaled_by_its_own_min_max():
    """The old 'noiseless ceiling' scaled the expectation by its own per-slice min/max; the real
    target's max includes its noise, so the Monte Carlo mean (which scales every draw like the
    target) scores higher against each real draw."""
    e, brain = expected_image()
    ss = slices_of(brain, "per_slice")
    old = scale_to_unit(cut(e, ss.z, ss.corner, ss.size), "per_slice")[0]
    est = monte_carlo_mean(e, identity, brain, ss, 16, np.random.default_rng(2))
    for seed in range(10, 15):
        real = scaled_target(redraw(e, np.random.default_rng(seed)).astype(float), brain, ss)
        assert mean_psnr(est.slices, real) > mean_psnr(old, real) + 0.5, seed


def test_draws_are_seeded_per_subject_and_at_least_one():
    e, brain = expected_image()
    a = redraw(e, subject_rng(0, "09"))
    assert np.array_equal(a, redraw(e, subject_rng(0, "09")))
    assert not np.array_equal(a, redraw(e, subject_rng(0, "10")))
    assert a.dtype == np.int16 and redraw(-e, subject_rng(0, "09")).max() == 0
    with pytest.raises(ValueError, match="sub-09"):
        monte_carlo_mean(e, identity, brain, slices_of(brain, "per_slice"), 0, subject_rng(0, "09"))


def test_scan_preprocessing_reorients_masks_and_resamples_like_the_real_scan(tmp_path):
    """Raw counts stored LPI at 4 mm: reoriented to RAS, masked by the SPECT histogram mask,
    resampled onto the (here identical) RAS grid with no transform: the masked counts back."""
    from workflow_scripts.preprocess.spect_mask import spect_brain_mask

    e, _ = expected_image((48, 48, 24))
    raw_affine = np.diag([-4.0, -4.0, -4.0, 1.0])
    raw_affine[:3, 3] = [94.0, 94.0, 46.0]
    counts = redraw(e, np.random.default_rng(5))
    canonical = nib.as_closest_canonical(nib.Nifti1Image(counts, raw_affine))
    mask, _ = spect_brain_mask(canonical, subject="09")
    grid = nib.Nifti1Image(np.zeros(canonical.shape, np.float32), canonical.affine)
    run = scan_preprocessing(
        raw_affine,
        subject="09",
        mask_cfg={"method": "otsu", "fraction": 0.35},
        grid=grid,
        transforms=[],
        workdir=tmp_path,
    )
    out = run(counts)
    want = np.asarray(canonical.dataobj, dtype=np.float64) * mask
    np.testing.assert_allclose(out, want, atol=1e-3)
    assert not np.allclose(out, counts * (counts > 0))  # the raw voxel order is not RAS
