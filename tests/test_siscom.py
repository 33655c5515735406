"""SISCOM on a tiny synthetic brain: a hyperperfused blob is found where it is; identical ictal
and interictal give no cluster; only the sampled slab and the mask from the ictal SPECT and MRI
count (never the interictal's); sparse slices are clustered as a stack; a flat interictal built
from other subjects misses a focus that real SISCOM finds; the figures are drawn."""

from __future__ import annotations

import gc
import json

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from tests.conftest import ellipsoid
from workflow_scripts.nifti_io import InputImageError
from workflow_scripts.simulation_truth import focus_from_truth
from workflow_scripts.siscom.analysis import run_subject, zmap_path
from workflow_scripts.siscom.figures import region_name_at, subject_figure, summary_plot
from workflow_scripts.siscom.maps import analysis_mask, siscom_map, slice_thickness
from workflow_scripts.siscom.sources import cohort_mean
from workflow_scripts.siscom.summary import summarise

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
        "t1w": write(tmp_path, "t1w", brain * (300.0 + 10 * np.indices(SHAPE)[0])),
    }
    return paths, world(blob_centre)


def run(tmp_path, paths, sources, slab=None, **kw):
    return run_subject(
        "01",
        paths["ictal"],
        paths["brain"],
        paths.get("ictalmask", paths["brain"]),
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


def test_mask_comes_from_the_ictal_and_mri_never_the_interictal(tmp_path):
    """The real interictal as stored (x its own, smaller SPECT mask) and changed outside the
    ictal mask: the analysis mask and every other source's SISCOM stay the same."""
    paths, _ = brain_images(tmp_path)
    brain = ellipsoid(SHAPE, (16, 18, 12))
    ictal_mask = ellipsoid(SHAPE, (15, 17, 11))
    paths["ictalmask"] = write(tmp_path, "ictalmask", ictal_mask)
    inter = nib.load(paths["inter"]).get_fdata()
    own_mask = ellipsoid(SHAPE, (12, 14, 9))  # the interictal's histogram mask, smaller
    paths["stored"] = write(tmp_path, "stored", inter * own_mask)
    changed = inter * own_mask
    changed[~ictal_mask] = 500.0  # anything at all outside the ictal mask
    paths["changed"] = write(tmp_path, "changed", changed)
    sources = {"real": paths["stored"], "mri/l1_bce": paths["inter"]}
    first = run(tmp_path, paths, sources)
    z_first = nib.load(zmap_path(tmp_path / "out", "01", "mri/l1_bce")).get_fdata()
    second = run(tmp_path, paths, {"real": paths["changed"], "mri/l1_bce": paths["inter"]})
    z_second = nib.load(zmap_path(tmp_path / "out", "01", "mri/l1_bce")).get_fdata()
    expected = int((ictal_mask & brain).sum())
    assert (first["mask_voxels"] == expected).all() and (second["mask_voxels"] == expected).all()
    assert expected > int((own_mask & brain).sum())  # the interictal's own mask would be smaller
    assert np.array_equal(z_first, z_second)
    pd.testing.assert_frame_equal(first, second)
    assert analysis_mask(ictal_mask, brain).sum() == expected


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
    table = run(
        tmp_path,
        paths,
        {"real": paths["inter"], "pet": paths["ictal"]},
        focus_mm=centre,
        focus_radius_mm=8.0,
        split="test",
    ).reset_index()
    summary = summarise(table, n_resamples=200).set_index(["split", "source"])
    for split in ("all", "test"):
        assert summary.loc[(split, "real"), "focus_found_fraction"] == 1.0
        assert summary.loc[(split, "pet"), "focus_found_fraction"] == 0.0
        assert not summary.loc[(split, "pet"), "finds_focus_as_often_as_real"]
        assert summary.loc[(split, "real"), "focus_in_any_cluster_fraction"] == 1.0
    summary_plot(table, tmp_path / "plot.png")
    maps = {s: zmap_path(tmp_path / "out", "01", s) for s in ("real", "pet")}
    peak = table.set_index("source").loc["real", ["peak_x_mm", "peak_y_mm", "peak_z_mm"]]
    peaks = {"real": peak.to_numpy(float), "pet": None}
    subject_figure(paths["t1w"], maps, peaks, tmp_path / "o.png", "sub-01", focus_mm=centre)
    assert (tmp_path / "plot.png").stat().st_size > 1000
    assert (tmp_path / "o.png").stat().st_size > 5000
    # the figure freezes the garbage collector per row (nilearn's gc.collect calls): it must
    # leave it as it found it, also when a row fails
    assert gc.get_freeze_count() == 0
    four_d = tmp_path / "4d.nii.gz"  # loads, but nilearn refuses to plot it (in the loop)
    nib.save(nib.Nifti1Image(np.zeros((*SHAPE, 2), np.float32), AFFINE), four_d)
    with pytest.raises(Exception, match="4D"):
        subject_figure(paths["t1w"], {**maps, "x": four_d}, peaks, tmp_path / "p.png", "bad")
    assert gc.get_freeze_count() == 0


def test_region_name_hook():
    """Without an atlas the region is blank; with one, the label under the peak is named."""
    assert region_name_at(np.zeros(3)) == ""
    labels = np.zeros(SHAPE, np.int16)
    labels[20:, :, :] = 7
    atlas = nib.Nifti1Image(labels, AFFINE)
    names = {7: "right hemisphere"}
    assert region_name_at(world((30, 20, 15)), atlas, names) == "right hemisphere"
    assert region_name_at(world((5, 20, 15)), atlas, names) == ""  # background, 60 mm away
    # 8 mm from the region (white matter next to cortex, say): its nearest region is named
    assert region_name_at(world((18, 20, 15)), atlas, names) == "right hemisphere"
    assert region_name_at(world((17, 20, 15)), atlas, names) == ""  # 12 mm: too far
    assert region_name_at(world((100, 20, 15)), atlas, names) == ""  # off the grid


def test_flat_interictal_misses_a_focus_that_real_siscom_finds(tmp_path):
    """The subject's own interictal has a high-perfusion region (its anatomy) that the ictal
    shares; the flat image, averaged from other subjects, lacks it: ictal minus flat shows that
    region as the top cluster, while real SISCOM shows only the focus."""
    rng = np.random.default_rng(5)
    brain = ellipsoid(SHAPE, (16, 18, 12))
    own = 70 * ellipsoid(SHAPE, (5, 5, 4), (12, 24, 15))  # this subject's own hot region
    inter = brain * (100 + rng.normal(0, 2, SHAPE)) + own
    blob = ellipsoid(SHAPE, (3, 3, 3), BLOB)
    ictal = brain * (100 + rng.normal(0, 2, SHAPE)) + own + 60 * blob
    training = [brain * (100 + rng.normal(0, 2, SHAPE)) * (1 + 0.1 * i) for i in range(3)]
    flat = cohort_mean(training, [brain] * 3)
    paths = {
        "ictal": write(tmp_path, "ictal", ictal),
        "brain": write(tmp_path, "brain", brain),
        "real": write(tmp_path, "real", inter),
        "flat": write(tmp_path, "flat", flat),
    }
    sources = {"real": paths["real"], "flat": paths["flat"]}
    table = run(tmp_path, paths, sources, focus_mm=world(BLOB), focus_radius_mm=8.0)
    assert table.loc["real", "top_cluster_contains_focus"]
    assert not table.loc["flat", "top_cluster_contains_focus"]
    assert table.loc["flat", "focus_distance_mm"] > 30


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


def test_subject_without_pet_gets_every_other_source(tmp_path):
    """The rule's job on a subject without PET: real, flat and synthetic sources, no PET ones;
    the table names the split and the figure is written."""
    from types import SimpleNamespace

    from snakemake.iocontainers import InputFiles

    from workflow_scripts.siscom.jobs import siscom_job

    paths, _ = brain_images(tmp_path)
    out = tmp_path / "siscom" / "sub-01"
    job = SimpleNamespace(
        wildcards=SimpleNamespace(subject="01"),
        input=InputFiles(
            fromdict={
                "ictal": str(paths["ictal"]),
                "brainmask": str(paths["brain"]),
                "ictalmask": str(paths["brain"]),
                "t1w": str(paths["t1w"]),
                "spect": str(paths["inter"]),
                "flat": str(write(tmp_path, "flat", ellipsoid(SHAPE, (16, 18, 12)) * 1.0)),
                "synth": [str(paths["inter"])],
            }
        ),
        output=SimpleNamespace(table=str(out / "sub-01_siscom.tsv"), png=out / "sub-01.png"),
        params=SimpleNamespace(
            settings={"z_threshold": 2.0, "min_cluster_mm3": 200.0},
            conditions=["mri/l1_bce"],
            split="test",
        ),
    )
    siscom_job(job)
    table = pd.read_csv(out / "sub-01_siscom.tsv", sep="\t")
    assert table["source"].tolist() == ["real", "flat", "mri/l1_bce"]
    assert set(table["split"]) == {"test"}
    assert (out / "sub-01.png").stat().st_size > 5000
