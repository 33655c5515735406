"""Slice selection, scaling round trips, storage and volume rebuild (workflow_scripts/slices/)."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from tests.conftest import write_subject_volumes
from workflow_scripts.slices.extract import cut, extract, scale_to_unit, select_slices
from workflow_scripts.slices.files import (
    load_slices,
    load_subjects,
    rebuild_volume,
    save_slices,
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
    paths = [save_slices(ss, tmp_path / f"sub-07_mod-{m}_slices.npz", m) for m in ss.images]
    back = load_slices(*paths)
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


CUT = {"n_slices": 10, "size": 32, "min_brain_fraction": 0.02}


@pytest.mark.parametrize(
    ("scaling", "target_scaling", "context"),
    [
        ("per_slice", "per_slice", 0),
        ("per_volume", "per_volume", 2),
    ],
)
def test_each_modality_cut_on_its_own_is_the_joint_cut_bit_for_bit(
    tmp_path, scaling, target_scaling, context
):
    """One job per modality (rules slices, target_slices) must give exactly the arrays that one
    job cutting every modality gives: the slices and window come from the brain mask alone."""
    vols = write_subject_volumes(tmp_path, "07", 3)
    sources = {"mri": vols["T1w"], "pet": vols["pet"], "spect": vols["spect"]}
    who = {"subject": "07", "split": "train", "space": "native", **CUT}
    joint = extract(
        sources,
        vols["brainmask"],
        scaling=scaling,
        target_scaling=target_scaling,
        context=context,
        **who,
    )
    paths = []
    for m, path in sources.items():
        # each job is given only the settings it uses
        kw = {"target_scaling": target_scaling} if m == "spect" else {"scaling": scaling}
        kw |= {} if m == "spect" else {"context": context}
        alone = extract({m: path}, vols["brainmask"], **kw, **who)
        paths.append(save_slices(alone, tmp_path / f"sub-07_mod-{m}_slices.npz", m))
    back = load_slices(*reversed(paths), mmap=False)  # any order
    assert sorted(back.images) == sorted(joint.images)
    for m in joint.images:
        for mine, theirs in ((back.images, joint.images), (back.scale, joint.scale)):
            assert mine[m].dtype == theirs[m].dtype and np.array_equal(mine[m], theirs[m]), m
        assert np.array_equal(back.offset[m], joint.offset[m]), m
    assert (
        back.neighbours.keys() == joint.neighbours.keys() == ({"mri", "pet"} if context else set())
    )
    for m in joint.neighbours:
        assert np.array_equal(back.neighbours[m], joint.neighbours[m])
    assert np.array_equal(back.mask, joint.mask) and np.array_equal(back.z, joint.z)
    assert back.corner == joint.corner and back.volume_shape == joint.volume_shape
    assert (back.context, back.target_scaling) == (context, target_scaling)


def test_a_reader_takes_only_the_modalities_it_needs(make_slices):
    files = make_slices({"01": "train"}, context=1, target_scaling="per_volume")
    mri, pet, spect = files["01"]
    only_mri = load_slices(mri)
    assert list(only_mri.images) == ["mri"] and only_mri.context == 1
    assert only_mri.target_scaling is None  # no target read: no claim about its scaling
    target = load_slices(spect)
    assert list(target.images) == ["spect"] and target.target_scaling == "per_volume"
    assert (target.subject, target.split) == ("01", "train") and target.mask.any()


def test_files_cut_differently_or_of_other_subjects_are_refused(tmp_path):
    vols = write_subject_volumes(tmp_path, "07", 3)
    who = {"split": "train", "space": "native", "size": 32, "min_brain_fraction": 0.02}

    def cut_file(subject, modality, n, name):
        ss = extract(
            {modality: vols["T1w" if modality == "mri" else modality]},
            vols["brainmask"],
            subject=subject,
            n_slices=n,
            scaling="per_slice",
            **who,
        )
        return save_slices(ss, tmp_path / name, modality)

    mri = cut_file("07", "mri", 10, "mri.npz")
    spect = cut_file("07", "spect", 10, "spect.npz")
    stale = cut_file("07", "spect", 8, "stale.npz")  # e.g. left from another n_slices
    other = cut_file("08", "spect", 10, "other.npz")
    assert sorted(load_slices(mri, spect).images) == ["mri", "spect"]
    with pytest.raises(ValueError, match="sub-07.*cut differently \\(z\\)"):
        load_slices(mri, stale)
    with pytest.raises(ValueError, match="not one subject's slices"):
        load_slices(mri, other)
    with pytest.raises(ValueError, match="two spect slice files"):
        load_slices(mri, spect, stale)
    with pytest.raises(ValueError, match="no slice files"):
        load_slices()
    # a rule's flat list of files: one SubjectSlices per subject, in the list's order
    both = load_subjects([other, mri, spect])
    assert [(ss.subject, sorted(ss.images)) for ss in both] == [
        ("08", ["spect"]),
        ("07", ["mri", "spect"]),
    ]
