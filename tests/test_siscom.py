"""SISCOM on a tiny synthetic brain: a hyperperfused blob is found where it is; identical ictal
and interictal give no cluster; synthetic sources are compared with the real one."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from tests.conftest import ellipsoid
from workflow_scripts.siscom import run_subject, siscom_map

SHAPE, VOXEL = (40, 40, 30), 4.0
AFFINE = np.diag([VOXEL, VOXEL, VOXEL, 1.0])


def brain_images(tmp_path, blob_centre=(26, 14, 15), seed=0):
    rng = np.random.default_rng(seed)
    brain = ellipsoid(SHAPE, (16, 18, 12))
    inter = brain * (100 + rng.normal(0, 3, SHAPE))
    blob = ellipsoid(SHAPE, (3, 3, 3), blob_centre)
    ictal = brain * (100 + rng.normal(0, 3, SHAPE)) + 60 * blob
    paths = {}
    for name, data in (("ictal", ictal), ("inter", inter), ("brain", brain.astype(np.uint8))):
        paths[name] = tmp_path / f"{name}.nii.gz"
        nib.save(nib.Nifti1Image(data.astype(np.float32), AFFINE), paths[name])
    return paths, np.array(blob_centre, float) * VOXEL


def test_hyperperfused_blob_is_found_at_its_place(tmp_path):
    paths, centre = brain_images(tmp_path)
    table = run_subject(
        "01",
        paths["ictal"],
        paths["brain"],
        {"real": paths["inter"], "same": paths["ictal"]},
        np.arange(SHAPE[2]),
        tmp_path,
        z_threshold=2.0,
        min_cluster_mm3=200.0,
        focus_mm=centre,
        focus_radius_mm=8.0,
    )
    real = table[table["source"] == "real"].iloc[0]
    assert real["n_clusters"] >= 1 and real["top_cluster_contains_focus"]
    assert real["focus_distance_mm"] <= 3 * VOXEL  # the peak lies inside the blob (radius 3 voxels)
    same = table[table["source"] == "same"].iloc[0]
    assert same["n_clusters"] == 0 and not same["top_cluster_contains_focus"]
    assert real["dice_with_real"] == pytest.approx(1.0) and same["dice_with_real"] == 0.0
    assert (tmp_path / "sub-01_interictal-real_siscom.nii.gz").exists()


def test_identical_images_give_no_cluster_and_no_division_by_zero():
    brain = ellipsoid(SHAPE, (16, 18, 12))
    img = brain * 100.0
    z, labels = siscom_map(img, img.copy(), brain, VOXEL**3)
    assert labels.max() == 0 and not np.isnan(z).any()


def test_small_clusters_are_dropped():
    rng = np.random.default_rng(3)
    brain = ellipsoid(SHAPE, (16, 18, 12))
    inter = brain * (100 + rng.normal(0, 3, SHAPE))
    ictal = inter.copy()
    ictal[20, 20, 15] += 200  # one hot voxel: 64 mm^3
    _, kept = siscom_map(ictal, inter, brain, VOXEL**3, 2.0, 500.0)
    _, all_ = siscom_map(ictal, inter, brain, VOXEL**3, 2.0, 0.0)
    assert kept.max() == 0 and all_.max() >= 1
