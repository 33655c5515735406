"""The simulated cohort (workflow_scripts/simulate): geometry, contrast, truth, determinism.

Subjects are simulated at voxel_scale=3 (3 mm anatomy) so each takes about 2 s.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from workflow_scripts.inputs.cohort import SPLITS
from workflow_scripts.layout import Layout
from workflow_scripts.simulate import bids_paths, simulate_subject, truth_dir, write_dataset
from workflow_scripts.simulate.effects import EffectSettings
from workflow_scripts.simulate.modalities import (
    activity_maps,
    draw_subject,
    sample_on_grid,
    subject_tissues,
)
from workflow_scripts.simulate.subject import frame_decay_correction_factor
from workflow_scripts.simulation_truth import read_truth

SCALE = 3.0


@pytest.fixture(scope="module")
def cohort(tmp_path_factory) -> Path:
    bids = tmp_path_factory.mktemp("bids")
    simulate_subject("01", "train", 11, bids, ictal=True, voxel_scale=SCALE)
    simulate_subject(
        "02", "validation", 12, bids, ictal=False, voxel_scale=SCALE, qc_png=bids / "qc.png"
    )
    write_dataset(bids, [("sub-01", "train"), ("sub-02", "validation")], seed=0)
    return bids


def truth(bids: Path, s: str) -> dict:
    return read_truth(Layout(Path(), bids).simulation_truth(s))


def test_deterministic_for_a_seed(cohort, tmp_path):
    simulate_subject("01", "train", 11, tmp_path, ictal=True, voxel_scale=SCALE)
    simulate_subject("01", "train", 99, tmp_path / "other", ictal=True, voxel_scale=SCALE)
    for name, path in bids_paths(cohort, "01").items():
        again = bids_paths(tmp_path, "01")[name]
        np.testing.assert_array_equal(nib.load(path).get_fdata(), nib.load(again).get_fdata())
    a = nib.load(bids_paths(cohort, "01")["spect"]).get_fdata()
    b = nib.load(bids_paths(tmp_path / "other", "01")["spect"]).get_fdata()
    assert a.shape != b.shape or not np.array_equal(a, b)


def test_orientation_voxel_size_and_matrix(cohort):
    paths = bids_paths(cohort, "01")
    t1, pet, spect = (nib.load(paths[m]) for m in ("T1w", "pet", "spect"))
    # T1w stored sagittally: slices (3rd axis) along left-right.
    assert nib.aff2axcodes(t1.affine)[2] in ("R", "L")
    assert nib.aff2axcodes(pet.affine) == ("R", "A", "S")
    assert nib.aff2axcodes(spect.affine) == ("L", "P", "S")
    np.testing.assert_allclose(t1.header.get_zooms(), [SCALE] * 3, atol=1e-4)
    assert all(1.95 * SCALE <= z <= 2.45 * SCALE for z in pet.header.get_zooms())
    assert all(3.5 <= z <= 4.5 for z in spect.header.get_zooms())
    assert spect.shape[0] in (64, 128) and spect.shape[0] == spect.shape[1]
    assert spect.get_data_dtype() == np.int16 and pet.get_data_dtype() == np.float32
    for img in (t1, pet, spect):
        sform, scode = img.header.get_sform(coded=True)
        qform, qcode = img.header.get_qform(coded=True)
        assert scode == 1 and qcode == 1 and np.allclose(sform, qform, atol=1e-4)
        assert img.header.get_xyzt_units() == ("mm", "sec")
    assert len({tuple(np.round(img.affine, 3).ravel()) for img in (t1, pet, spect)}) == 3


def test_default_t1_is_1mm_sagittal():
    model, _ = draw_subject("03", "train", 3, voxel_scale=1.0, ictal=False)
    grid = model.grids["T1w"]
    assert grid.shape == (256, 256, 176)
    np.testing.assert_allclose(np.linalg.norm(grid.affine[:3, :3], axis=0), 1.0)
    assert nib.aff2axcodes(grid.affine)[2] in ("R", "L")


def _pure_tissue_means(model, head, name):
    tissues, brain = subject_tissues(model, head)
    maps = activity_maps(model, head, tissues)
    grid = model.grids[name]
    sig, gm, wm = sample_on_grid([maps[name], tissues["gm"], tissues["wm"]], head, model, grid)
    return sig[gm > 0.9].mean(), sig[wm > 0.9].mean()


def test_grey_white_contrast_in_stated_ranges():
    model, head = draw_subject("04", "train", 4, voxel_scale=2.0, ictal=False)
    # the tissue model itself
    tissues, _ = subject_tissues(model, head)
    from workflow_scripts.simulate.modalities import PET_UPTAKE, SPECT_UPTAKE

    assert PET_UPTAKE["gm"] / PET_UPTAKE["wm"] == pytest.approx(4.0)
    assert SPECT_UPTAKE["gm"] / SPECT_UPTAKE["wm"] == pytest.approx(2.5)
    # and in the images, after each scanner's blur (partial volume lowers it)
    gm, wm = _pure_tissue_means(model, head, "pet")
    assert 2.5 <= gm / wm <= 4.5, gm / wm
    gm, wm = _pure_tissue_means(model, head, "spect")
    assert 1.4 <= gm / wm <= 2.8, gm / wm


def test_truth_transforms_map_anatomy_between_images(cohort):
    """The brain-mask centroid of T1w, mapped through the recorded poses, lands on PET's/SPECT's."""
    t = truth(cohort, "01")
    tdir = truth_dir(cohort, "01")

    def centroid(space):
        img = nib.load(tdir / f"sub-01_space-{space}_desc-brain_mask.nii.gz")
        ijk = np.argwhere(img.get_fdata() > 0.5).mean(axis=0)
        return img.affine[:3, :3] @ ijk + img.affine[:3, 3]

    w = {k: np.array(v["world_from_anatomy"]) for k, v in t["images"].items()}
    c_t1 = centroid("T1w")
    for other in ("pet", "spect"):
        mapped = (w[other] @ np.linalg.inv(w["T1w"]) @ np.append(c_t1, 1))[:3]
        assert np.linalg.norm(mapped - centroid(other)) < 1.0
        # without the transform the images would disagree by several mm
        assert np.linalg.norm(c_t1 - centroid(other)) > 2.0


def test_focus_lies_in_grey_matter_and_is_recorded(cohort):
    model, head = draw_subject("01", "train", 11, voxel_scale=SCALE, ictal=True)
    idx = np.linalg.inv(head.affine) @ np.append(model.focus_template_mm, 1)
    i, j, k = np.round(idx[:3]).astype(int)
    assert head.tissues["gm"][i, j, k] > 0.5
    t = truth(cohort, "01")
    side = json.loads(
        bids_paths(cohort, "01")["T1w"].with_suffix("").with_suffix(".json").read_text()
    )
    w_t1 = np.array(t["images"]["T1w"]["world_from_anatomy"])
    expected = w_t1[:3, :3] @ np.array(t["focus_anatomy_mm"]) + w_t1[:3, 3]
    np.testing.assert_allclose(side["FocusCentreWorldMM"], expected, atol=0.01)
    # the recorded anatomy point maps back onto the template focus through the warp
    np.testing.assert_allclose(
        model.deformation(np.array(t["focus_anatomy_mm"])[:, None]).ravel(),
        model.focus_template_mm,
        atol=0.05,
    )


def test_focus_changes_uptake_in_the_stated_directions():
    """After each scanner's blur: ictal up, PET and interictal SPECT down at the focus (the
    former fixed sizes, +60 % / -30 % / -12 %; test_simulate_effects.py checks drawn sizes)."""
    sizes = EffectSettings(
        ictal_increase=(0.6, 0.6),
        interictal_hypoperfusion=(0.12, 0.12),
        pet_hypometabolism=(0.3, 0.3),
        pet_focus_offset_mm=(0.0, 0.0),
        day_to_day_regional=0.0,
    )
    model, head = draw_subject("05", "train", 5, voxel_scale=SCALE, ictal=True, effects=sizes)
    tissues, _ = subject_tissues(model, head)
    maps = activity_maps(model, head, tissues)
    idx = np.round(np.linalg.inv(head.affine) @ np.append(model.focus_template_mm, 1))[:3]
    i, j, k = idx.astype(int)
    ratio = maps["ictal"][i, j, k] / maps["spect"][i, j, k]
    assert ratio > 1.15  # ictal hyperperfusion
    model.effects = dataclasses.replace(  # no focus effects at all
        model.effects, ictal_increase=0.0, interictal_hypoperfusion=0.0, pet_hypometabolism=0.0
    )
    no_focus = activity_maps(model, head, tissues)
    assert maps["pet"][i, j, k] < 0.9 * no_focus["pet"][i, j, k]  # hypometabolism
    assert maps["spect"][i, j, k] < no_focus["spect"][i, j, k]  # mild hypoperfusion


def test_validation_subject_has_a_cavity_without_uptake(cohort):
    t = truth(cohort, "02")
    assert t["cavity_radius_mm"] >= 14
    spect = nib.load(truth_dir(cohort, "02") / "sub-02_acq-interictal_desc-noiseless_spect.nii.gz")
    w = np.array(t["images"]["spect"]["world_from_anatomy"])
    centre = w[:3, :3] @ np.array(t["cavity_anatomy_mm"]) + w[:3, 3]
    ijk = np.round(np.linalg.inv(spect.affine) @ np.append(centre, 1))[:3].astype(int)
    data = spect.get_fdata()
    brain = nib.load(truth_dir(cohort, "02") / "sub-02_space-spect_desc-brain_mask.nii.gz")
    assert brain.get_fdata()[tuple(ijk)] == 0  # the cavity is not brain
    assert data[tuple(ijk)] < 0.5 * np.percentile(data[brain.get_fdata() > 0], 50)
    assert "ictal" not in t["images"] and not bids_paths(cohort, "02")["ictal"].exists()


def test_bids_metadata(cohort):
    rows = (cohort / "participants.tsv").read_text().splitlines()
    assert rows[0].split("\t")[:2] == ["participant_id", "split"]
    assert rows[1].startswith("sub-01\ttrain")
    desc = json.loads((cohort / "dataset_description.json").read_text())
    assert desc["BIDSVersion"] and desc["Name"]
    side = json.loads(
        (cohort / "sub-01" / "spect" / "sub-01_acq-interictal_spect.json").read_text()
    )
    assert side["TracerName"] == "HMPAO" and side["Units"] == "counts"
    pet = json.loads((cohort / "sub-01" / "pet" / "sub-01_trc-FDG_pet.json").read_text())
    assert (pet["TracerName"], pet["TracerRadionuclide"], pet["Units"]) == ("FDG", "F18", "kBq/mL")
    # one static frame: as many frame times as volumes in the 3D image
    assert len(pet["FrameTimesStart"]) == len(pet["FrameDuration"]) == 1
    assert pet["ScanStart"] == pet["FrameTimesStart"][0] > pet["InjectionStart"] == 0
    levels = json.loads((cohort / "participants.json").read_text())["split"]["Levels"]
    assert tuple(levels) == SPLITS
    assert "**/spect" in (cohort / ".bidsignore").read_text().splitlines()
    assert (cohort / "README").read_text().startswith("# spectsynth")
    assert desc["Authors"] and desc["DatasetType"] == "raw"
    deriv = json.loads(
        (cohort / "derivatives" / "simulation" / "dataset_description.json").read_text()
    )
    assert deriv["DatasetType"] == "derivative" and deriv["GeneratedBy"][0]["Name"] == "spectsynth"


def test_decay_correction_factor_of_a_frame():
    half_life = 100.0
    assert frame_decay_correction_factor(0.0, 1e-6, half_life) == pytest.approx(1.0)
    assert frame_decay_correction_factor(half_life, 1e-6, half_life) == pytest.approx(2.0)
    # a long frame: its mean lies between the decay at its start and at its end
    assert 2.0 < frame_decay_correction_factor(half_life, half_life, half_life) < 4.0


def test_qc_png_is_written(cohort):
    png = cohort / "qc.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert png.stat().st_size > 20_000  # 3 modalities x 4 rows of pictures, not an empty canvas
    assert not list(cohort.glob("*.tmp.png"))


def test_focus_is_cerebral_for_many_seeds():
    for seed in range(6):
        model, _ = draw_subject("06", "validation", seed, voxel_scale=SCALE, ictal=False)
        for centre in (model.focus_template_mm, model.cavity_template_mm):
            _, y, z = centre
            assert z > -40 and not (y < -38 and z < -8), centre  # not cerebellum or brainstem
        assert np.linalg.norm(model.focus_template_mm - model.cavity_template_mm) > 40


def test_bad_arguments_name_the_subject(tmp_path):
    with pytest.raises(ValueError, match="sub-07.*split 'training'"):
        simulate_subject("07", "training", 1, tmp_path, voxel_scale=SCALE)
    with pytest.raises(ValueError, match="sub-07.*voxel_scale"):
        simulate_subject("07", "train", 1, tmp_path, voxel_scale=0)
