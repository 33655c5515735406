"""SISCOM on a tiny synthetic brain: a hyperperfused blob is found where it is; identical ictal
and interictal give no cluster; only the sampled slab and the common mask count; sparse slices
are clustered as a stack; the group summary answers "as good as real?"."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from tests.conftest import ellipsoid
from workflow_scripts.nifti_io import InputImageError
from workflow_scripts.siscom import (
    focus_from_truth,
    overlay_png,
    run_subject,
    siscom_map,
    slice_thickness,
    summarise,
    summary_plot,
)

SHAPE, VOXEL = (40, 40, 30), 4.0
AFFINE = np.diag([VOXEL, VOXEL, VOXEL, 1.0])
AFFINE[:3, 3] = [-80.0, -80.0, -60.0]  # world = 4 * ijk + origin
BLOB = (26, 14, 15)


def world(ijk) -> np.ndarray:
    return AFFINE[:3, :3] @ np.asarray(ijk, float) + AFFINE[:3, 3]


def write(tmp_path, name, data):
    path = tmp_path / f"{name}.nii.gz"
    nib.save(nib.Nifti1Image(np.asarray(data, np.float32), AFFINE), path)
    return path


def brain_images(tmp_path, blob_centre=BLOB, seed=0):
    """Brain, noisy interictal, ictal = interictal-like + a hot blob (radius 3 voxels)."""
    rng = np.random.default_rng(seed)
    brain = ellipsoid(SHAPE, (16, 18, 12))
    inter = brain * (100 + rng.normal(0, 3, SHAPE))
    blob = ellipsoid(SHAPE, (3, 3, 3), blob_centre)
    ictal = brain * (100 + rng.normal(0, 3, SHAPE)) + 60 * blob
    paths = {
        "ictal": write(tmp_path, "ictal", ictal),
        "inter": write(tmp_path, "inter", inter),
        "brain": write(tmp_path, "brain", brain),
        "t1w": write(tmp_path, "t1w", brain * 500.0),
    }
    return paths, world(blob_centre)


def run(tmp_path, paths, sources, slab=None, **kw):
    return run_subject(
        "01",
        paths["ictal"],
        paths["brain"],
        sources,
        np.arange(SHAPE[2]) if slab is None else slab,
        tmp_path / "out",
        z_threshold=2.0,
        min_cluster_mm3=200.0,
        **kw,
    ).set_index("source")


def test_hyperperfused_blob_is_found_at_its_place(tmp_path):
    paths, centre = brain_images(tmp_path)
    table = run(
        tmp_path,
        paths,
        {"real": paths["inter"], "pet": paths["ictal"]},
        focus_mm=centre,
        focus_radius_mm=8.0,
    )
    real = table.loc["real"]
    assert real["n_clusters"] >= 1 and real["top_cluster_contains_focus"]
    assert real["focus_distance_mm"] <= 3 * VOXEL  # the peak lies inside the blob
    assert real["top_cluster_mm3"] == pytest.approx(123 * VOXEL**3, rel=0.5)  # ball of r=3 vox
    assert real["peak_zscore"] > 4 and real["focus_cluster_rank"] == 1
    same = table.loc["pet"]  # the ictal image itself as "interictal": nothing to find
    assert same["n_clusters"] == 0 and not same["top_cluster_contains_focus"]
    assert real["dice_with_real"] == pytest.approx(1.0) and same["dice_with_real"] == 0.0
    assert real["concordant_with_real"] and not same["concordant_with_real"]
    z_map = nib.load(tmp_path / "out" / "sub-01_interictal-real_siscom.nii.gz")
    assert np.allclose(z_map.affine, AFFINE)
    zmax = np.unravel_index(np.argmax(z_map.get_fdata()), SHAPE)
    assert np.linalg.norm(np.subtract(zmax, BLOB)) <= 3
    assert (tmp_path / "out" / "sub-01_interictal-pet_siscom.nii.gz").exists()


def test_identical_images_give_no_cluster_and_no_division_by_zero():
    brain = ellipsoid(SHAPE, (16, 18, 12))
    img = brain * 100.0
    with np.errstate(all="raise"):  # a 0/0 would raise here
        m = siscom_map(img, img.copy(), brain, VOXEL**3)
    assert m.n_clusters == 0 and not np.isnan(m.z).any() and not m.z.any()
    # the same after a global scale change: normalisation to mean brain counts removes it
    assert siscom_map(3 * img, img, brain, VOXEL**3).n_clusters == 0


def test_small_clusters_are_dropped():
    rng = np.random.default_rng(3)
    brain = ellipsoid(SHAPE, (16, 18, 12))
    inter = brain * (100 + rng.normal(0, 3, SHAPE))
    ictal = inter.copy()
    ictal[20, 20, 15] += 200  # one hot voxel: 64 mm^3
    assert siscom_map(ictal, inter, brain, VOXEL**3, 2.0, 500.0).n_clusters == 0
    assert siscom_map(ictal, inter, brain, VOXEL**3, 2.0, 0.0).n_clusters >= 1


def test_only_the_slab_counts(tmp_path):
    """A synthetic interictal that is 0 off the sampled slices must give the same SISCOM as the
    real one there: off-slab voxels are neither normalised over nor clustered."""
    paths, centre = brain_images(tmp_path)
    slab = np.arange(8, 22)
    inter = nib.load(paths["inter"]).get_fdata()
    synth = np.zeros_like(inter)
    synth[:, :, slab] = inter[:, :, slab]
    paths["synth"] = write(tmp_path, "synth", synth)
    sources = {"real": paths["inter"], "mri/l1_bce": paths["synth"]}
    table = run(tmp_path, paths, sources, slab=slab, focus_mm=centre, focus_radius_mm=8.0)
    assert table.loc["mri/l1_bce", "focus_distance_mm"] <= 3 * VOXEL  # slab index -> volume z
    assert table.loc["mri/l1_bce", "focus_in_slab"]
    assert table.loc["mri/l1_bce", "dice_with_real"] == pytest.approx(1.0)
    assert table.loc["mri/l1_bce", "peak_distance_to_real_mm"] == pytest.approx(0.0)
    assert table.loc["real", "slab_first_z"] == 8 and table.loc["real", "slab_last_z"] == 21
    written = tmp_path / "out" / "sub-01_interictal-synth_input-mri_loss-l1_bce_siscom.nii.gz"
    off_slab = np.ones(SHAPE[2], bool)
    off_slab[slab] = False
    assert not nib.load(written).get_fdata()[:, :, off_slab].any()


def test_common_mask_normalises_sources_alike(tmp_path):
    """The real interictal is stored x its SPECT mask; with that mask given, an unmasked copy of
    the same image gives the same SISCOM."""
    paths, _ = brain_images(tmp_path)
    inter = nib.load(paths["inter"]).get_fdata()
    spectmask = ellipsoid(SHAPE, (14, 16, 11))
    paths["masked"] = write(tmp_path, "masked", inter * spectmask)
    paths["spectmask"] = write(tmp_path, "spectmask", spectmask)
    sources = {"real": paths["masked"], "mri/l1_bce": paths["inter"]}
    table = run(tmp_path, paths, sources, spectmask=paths["spectmask"])
    assert table.loc["real", "n_clusters"] >= 1
    assert table.loc["mri/l1_bce", "dice_with_real"] == pytest.approx(1.0)
    assert table.loc["real", "mask_voxels"] == int(
        (spectmask & ellipsoid(SHAPE, (16, 18, 12))).sum()
    )


def test_sparse_slices_are_clustered_as_a_stack():
    """Every other slice sampled: the blob's slices are not face-adjacent in the volume, but
    they are neighbours in the stack, and each stands for 2 slices of volume."""
    rng = np.random.default_rng(1)
    brain = ellipsoid(SHAPE, (16, 18, 12))
    inter = brain * (100 + rng.normal(0, 3, SHAPE))
    ictal = brain * (100 + rng.normal(0, 3, SHAPE)) + 60 * ellipsoid(SHAPE, (3, 3, 3), BLOB)
    zs = np.arange(0, SHAPE[2], 2)
    assert slice_thickness(zs).tolist() == [2.0] * len(zs)
    m = siscom_map(
        ictal[:, :, zs], inter[:, :, zs], brain[:, :, zs], VOXEL**3, 2.0, 0.0, slice_thickness(zs)
    )
    top = m.labels == 1
    assert len(np.unique(np.nonzero(top)[2])) >= 3  # one cluster across several sampled slices
    # the blob is a ball of ~123 voxels = ~7900 mm^3; its sampled half only counts as that much
    # when each sampled slice stands for two
    args = (ictal[:, :, zs], inter[:, :, zs], brain[:, :, zs], VOXEL**3, 2.0, 6000.0)
    assert siscom_map(*args, slice_thickness(zs)).n_clusters == 1
    assert siscom_map(*args).n_clusters == 0
    assert slice_thickness(np.array([0, 1, 2, 6])).tolist() == [1.0, 1.0, 2.5, 4.0]


def test_bad_input_names_subject_and_file(tmp_path):
    paths, _ = brain_images(tmp_path)
    other = tmp_path / "other_grid.nii.gz"
    nib.save(nib.Nifti1Image(np.ones((10, 10, 10), np.float32), AFFINE), other)
    with pytest.raises(ValueError, match=r"sub-01 .*other_grid\.nii\.gz.*grid"):
        run(tmp_path, paths, {"real": other})
    with pytest.raises(InputImageError, match=r"sub-01 .*missing\.nii\.gz"):
        run(tmp_path, paths, {"real": tmp_path / "missing.nii.gz"})


def test_truth_focus_in_t1w_world(tmp_path):
    w = np.eye(4)
    w[:3, 3] = [5.0, -2.0, 1.0]
    truth = {
        "images": {"T1w": {"world_from_anatomy": w.tolist()}},
        "focus_anatomy_mm": [10.0, 20.0, 30.0],
        "focus_radius_mm": 9.0,
    }
    path = tmp_path / "truth.json"
    path.write_text(json.dumps(truth))
    focus, radius = focus_from_truth(path)
    assert focus.tolist() == [15.0, 18.0, 31.0] and radius == 9.0


def test_summary_and_figures(tmp_path):
    paths, centre = brain_images(tmp_path)
    rows = [
        run(
            tmp_path,
            paths,
            {"real": paths["inter"], "pet": paths["ictal"]},
            focus_mm=centre,
            focus_radius_mm=8.0,
        ).reset_index()
    ]
    table = pd.concat(rows, ignore_index=True)
    summary = summarise(table).set_index("source")
    assert summary.loc["real", "focus_found_fraction"] == 1.0
    assert summary.loc["pet", "focus_found_fraction"] == 0.0
    assert not summary.loc["pet", "finds_focus_as_often_as_real"]
    assert summary.loc["real", "focus_in_any_cluster_fraction"] == 1.0
    summary_plot(table, tmp_path / "plot.png")
    maps = {s: tmp_path / "out" / f"sub-01_interictal-{s}_siscom.nii.gz" for s in ("real", "pet")}
    overlay_png(paths["t1w"], maps, np.arange(SHAPE[2]), centre, tmp_path / "o.png", "sub-01")
    assert (tmp_path / "plot.png").stat().st_size > 1000 and (tmp_path / "o.png").exists()


def test_a_second_cluster_at_the_focus_is_ranked(tmp_path):
    """A bigger hot spot elsewhere becomes the top cluster; the focus is then found at rank 2."""
    paths, centre = brain_images(tmp_path)
    ictal = nib.load(paths["ictal"]).get_fdata()
    decoy = ellipsoid(SHAPE, (4, 4, 4), (12, 24, 15)) & (ictal > 0)
    paths["ictal"] = write(tmp_path, "ictal2", ictal + 80 * decoy)
    table = run(tmp_path, paths, {"real": paths["inter"]}, focus_mm=centre, focus_radius_mm=8.0)
    assert not table.loc["real", "top_cluster_contains_focus"]
    assert table.loc["real", "focus_cluster_rank"] == 2
    assert table.loc["real", "focus_distance_mm"] > 40
