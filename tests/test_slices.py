"""Slice selection, scaling round trips, storage and volume rebuild (workflow_scripts/slices.py)."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from tests.conftest import write_subject_volumes
from workflow_scripts.slices import (
    cut,
    extract,
    load_slices,
    rebuild_volume,
    save_slices,
    scale_to_unit,
    select_slices,
    to_image_units,
)


def test_selection_covers_the_brain_evenly():
    brain = np.zeros((10, 10, 100), bool)
    brain[3:7, 3:7, 20:80] = True
    z = select_slices(brain, 10, 0.05)
    assert len(z) == 10 and z[0] == 20 and z[-1] == 79
    assert np.all(np.diff(z) > 0)
    assert select_slices(brain, 100, 0.05).tolist() == list(range(20, 80))  # fewer than asked
    with pytest.raises(ValueError, match="empty brain"):
        select_slices(np.zeros((4, 4, 4), bool), 2, 0.1)


@pytest.mark.parametrize("mode", ["per_slice", "per_volume"])
def test_scaling_round_trips(mode):
    rng = np.random.default_rng(0)
    stack = rng.gamma(2.0, 50.0, (6, 16, 16)).astype(np.float32)
    stack[2] = 0  # an all-zero slice must not divide by zero
    scaled, scale, offset = scale_to_unit(stack, mode)
    assert scaled.min() >= -1 - 1e-6 and scaled.max() <= 1 + 1e-6
    if mode == "per_slice":
        assert np.allclose(scaled[[0, 1, 3]].max(axis=(1, 2)), 1) and np.all(scaled[2] == -1)
    back = (scaled.astype(np.float64) + 1) / 2 * scale[:, None, None] + offset[:, None, None]
    np.testing.assert_allclose(back, stack, rtol=1e-5, atol=1e-3)


def test_crop_and_pad_keep_the_brain_centred():
    vol = np.zeros((20, 30, 3), np.float32)
    vol[5:15, 10:20, :] = 1
    out = cut(vol, np.array([1]), (-6, 5), 32)  # window larger than the volume: zero padded
    assert out.shape == (1, 32, 32) and out.sum() == 100


def test_extract_save_load_and_rebuild_round_trip(tmp_path):
    vols = write_subject_volumes(tmp_path, "07", 3)
    ss = extract(
        {"mri": vols["T1w"], "pet": vols["pet"], "spect": vols["spect"]},
        vols["brainmask"],
        subject="07",
        split="test",
        space="native",
        n_slices=12,
        size=32,
        min_brain_fraction=0.02,
        scaling="per_slice",
    )
    path = save_slices(ss, tmp_path / "sub-07_slices.npz")
    back = load_slices(path)
    assert isinstance(back.images["spect"], np.memmap)  # memory-mapped, not read
    assert (back.subject, back.split, back.space) == ("07", "test", "native")
    np.testing.assert_array_equal(back.z, ss.z)
    # rebuilding the real SPECT slices gives the original volume on the sampled slices
    spect = nib.load(vols["spect"]).get_fdata()
    rebuilt = rebuild_volume(np.asarray(back.images["spect"]), back)
    assert rebuilt.shape == spect.shape and np.allclose(
        rebuilt.affine, nib.load(vols["spect"]).affine
    )
    np.testing.assert_allclose(rebuilt.get_fdata()[:, :, back.z], spect[:, :, back.z], atol=1e-3)
    untouched = np.setdiff1d(np.arange(spect.shape[2]), back.z)
    assert not rebuilt.get_fdata()[:, :, untouched].any()
    units = to_image_units(back, "pet", back.images["pet"])
    pet = nib.load(vols["pet"]).get_fdata()
    np.testing.assert_allclose(
        units.max(axis=(1, 2)), pet[:, :, back.z].max(axis=(0, 1)), rtol=1e-5
    )


def test_modalities_must_share_the_mask_grid(tmp_path):
    vols = write_subject_volumes(tmp_path, "08", 1)
    other = nib.load(vols["pet"])
    moved = tmp_path / "moved.nii.gz"
    nib.save(nib.Nifti1Image(other.get_fdata(), other.affine @ np.diag([2, 1, 1, 1])), moved)
    with pytest.raises(ValueError, match="sub-08.*not on the brain mask's grid"):
        extract(
            {"pet": moved},
            vols["brainmask"],
            subject="08",
            split="train",
            space="native",
            n_slices=4,
            size=32,
            min_brain_fraction=0.02,
            scaling="per_slice",
        )
