"""The SISCOM sources built from other subjects: the flat interictal averages the relative
uptake of training subjects only; PET smoothed to SPECT resolution and mapped linearly recovers
a known relation."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import ellipsoid
from workflow_scripts.siscom.sources import (
    cohort_mean,
    fill_outward,
    fill_to_mask,
    fit_linear_map,
    pet_relative,
    relative,
    require_training,
    smooth_in_mask,
    source_slug,
)

SHAPE = (20, 20, 16)


def test_flat_is_the_mean_relative_uptake_of_the_subjects_given():
    """Three training subjects at different global scales: each is divided by its own mean, so
    the flat image is the mean pattern, whatever the counts; a voxel only one mask covers takes
    that subject's value."""
    brain = ellipsoid(SHAPE, (7, 8, 6))
    pattern = np.where(ellipsoid(SHAPE, (4, 4, 3)), 2.0, 1.0) * brain
    vols = [pattern * 10, pattern * 500, pattern * 3]
    flat = cohort_mean(vols, [brain] * 3)
    assert np.allclose(flat[brain], relative(pattern, brain)[brain])
    assert not flat[~brain].any()
    wider = ellipsoid(SHAPE, (8, 9, 7))
    only_one = cohort_mean([pattern, wider * 1.0], [brain, wider])
    edge = wider & ~brain
    assert np.allclose(only_one[edge], relative(wider * 1.0, wider)[edge])
    with pytest.raises(ValueError, match="no training subject"):
        cohort_mean([], [])


def test_cohort_sources_refuse_a_subject_that_is_not_training():
    require_training(["01", "02"], ["train", "train"])
    with pytest.raises(ValueError, match=r"sub-03 \(test\)"):
        require_training(["01", "03"], ["train", "test"])


def test_linear_map_recovers_a_known_relation():
    """SPECT = 0.4 + 0.6 x PET (relative units) in two training subjects, plus noise."""
    rng = np.random.default_rng(0)
    brain = ellipsoid(SHAPE, (7, 8, 6))
    xs, ys = [], []
    for scale in (1.0, 7.0):
        pet = (1 + rng.gamma(2.0, 0.3, SHAPE)) * brain * scale
        pet_rel = pet_relative(pet, brain, 0.0, (2.0, 2.0, 2.0))
        spect = 0.4 + 0.6 * pet_rel + rng.normal(0, 0.01, SHAPE)
        xs.append(pet_rel[brain])
        ys.append(spect[brain])
    m = fit_linear_map(xs, ys)
    assert m.intercept == pytest.approx(0.4, abs=0.01)
    assert m.slope == pytest.approx(0.6, abs=0.01)
    assert m.r2 > 0.95 and m.n_voxels == 2 * int(brain.sum())
    applied = m.apply(xs[0], np.ones(xs[0].shape, bool))
    assert np.allclose(applied, 0.4 + 0.6 * xs[0], atol=0.02)
    with pytest.raises(ValueError, match="without spread"):
        fit_linear_map([np.ones(5)], [np.ones(5)])


def test_smoothing_reaches_the_stated_fwhm_and_keeps_the_edge():
    mask = np.ones((41, 41, 41), bool)
    delta = np.zeros(mask.shape)
    delta[20, 20, 20] = 1.0
    fwhm, voxel = 8.0, 2.0
    out = smooth_in_mask(delta, mask, fwhm, (voxel,) * 3)
    profile = out[:, 20, 20] / out[:, 20, 20].sum()
    x = (np.arange(41) - 20) * voxel
    sd = np.sqrt((profile * x**2).sum())
    assert sd * 2 * np.sqrt(2 * np.log(2)) == pytest.approx(fwhm, rel=0.02)
    brain = ellipsoid(SHAPE, (7, 8, 6))
    flat = smooth_in_mask(brain * 5.0, brain, 10.0, (2.0, 2.0, 2.0))
    assert np.allclose(flat[brain], 5.0)  # no dark rim from the zeros outside
    assert not flat[~brain].any()


def test_source_slugs():
    assert source_slug("flat") == "flat" and source_slug("pet_linear") == "pet_linear"
    assert source_slug("mri_pet/l1_bce") == "synth_input-mri_pet_loss-l1_bce"


def test_fill_outward_takes_the_nearest_valid_value():
    img = np.zeros((5, 1, 1))
    img[1:3, 0, 0] = [2.0, 3.0]
    valid = img > 0
    filled = fill_outward(img, valid)
    assert filled[:, 0, 0].tolist() == [2.0, 2.0, 3.0, 3.0, 3.0]
    mask = np.array([0, 1, 1, 1, 0], bool).reshape(5, 1, 1)
    assert fill_to_mask(img, mask)[:, 0, 0].tolist() == [0.0, 2.0, 3.0, 3.0, 0.0]


def test_pet_without_counts_at_the_brain_edge_leaves_no_rim():
    """The PET's own (BET) mask is smaller than the MRI's: the relative PET has no zeros inside
    the MRI mask, which SISCOM would read as a rim of hyperperfusion."""
    mri = ellipsoid(SHAPE, (7, 8, 6))
    pet = 3.0 * ellipsoid(SHAPE, (6, 7, 5))
    rel = pet_relative(pet, mri, 6.0, (2.0, 2.0, 2.0))
    assert rel[mri].min() == pytest.approx(1.0) and rel[mri].max() == pytest.approx(1.0)
    assert not rel[~mri].any()
