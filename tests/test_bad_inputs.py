"""A messy archive end to end: broken images are named and left out, every other subject
finishes, and the group outputs are built from what succeeded (tables say who was excluded)."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from tests.conftest import run_workflow
from workflow_scripts.simulate import bids_paths, simulate_subject, write_dataset

CONFIG = [
    "simulate={enabled: false}",
    "preprocess={grid: {shape: [32, 32, 24], voxel_mm: 6.0}}",
    "slices={n_slices: 8, size: 32}",
    "train={spaces: [native], inputs: [mri, pet], losses: [l1_bce], epochs: 1, batch_size: 4, ngf: 8, ndf: 8}",
    "evaluate={montage_subjects: 1}",
    "siscom={enabled: false}",
]


@pytest.fixture(scope="module")
def messy_run(tmp_path_factory):
    work = tmp_path_factory.mktemp("messy")
    bids = work / "bids"
    splits = {
        "01": "train",
        "02": "train",
        "03": "train",
        "04": "train",
        "05": "test",
        "06": "test",
        "07": "validation",
    }
    for i, (s, split) in enumerate(splits.items()):
        simulate_subject(s, split, 50 + i, bids, ictal=False, voxel_scale=3.0)
    write_dataset(
        bids, [(f"sub-{s}", sp) for s, sp in splits.items()] + [("sub-08", "test")], seed=0
    )
    # sub-02: truncated PET; sub-03: NaNs in its SPECT; sub-06: all-zero T1w;
    # sub-04: a dynamic (4D) PET, which is averaged, not refused; sub-08: listed, not on disk;
    # sub-09: on disk, not listed
    pet = bids_paths(bids, "02")["pet"]
    pet.write_bytes(pet.read_bytes()[:2000])
    spect = bids_paths(bids, "03")["spect"]
    img = nib.load(spect)
    data = img.get_fdata().astype(np.float32)
    data[10, 10, 10] = np.nan
    nib.save(nib.Nifti1Image(data, img.affine), spect)
    t1 = bids_paths(bids, "06")["T1w"]
    img = nib.load(t1)
    nib.save(nib.Nifti1Image(np.zeros(img.shape, np.int16), img.affine), t1)
    pet4 = bids_paths(bids, "04")["pet"]
    img = nib.load(pet4)
    frames = np.stack([img.get_fdata() * f for f in (0.8, 1.0, 1.2)], axis=-1).astype(np.float32)
    nib.save(nib.Nifti1Image(frames, img.affine), pet4)
    simulate_subject("09", "train", 90, bids, ictal=False, voxel_scale=3.0)
    return work, run_workflow(work, bids, CONFIG)


@pytest.mark.slow
def test_broken_images_are_named_and_left_out(messy_run):
    work, run = messy_run
    assert run.returncode == 0, (run.stdout + run.stderr)[-4000:]
    excluded = pd.read_csv(work / "out" / "tables" / "excluded_subjects.tsv", sep="\t")
    reasons = {(r.subject, r.modality or ""): r.reason for r in excluded.fillna("").itertuples()}
    assert (
        "truncated or corrupt" in reasons[("sub-02", "pet")]
        or "not a readable" in reasons[("sub-02", "pet")]
    )
    assert (
        "NaN/Inf" in reasons[("sub-03", "spect")]
        and "sub-03_acq-interictal_spect.nii.gz" in reasons[("sub-03", "spect")]
    )
    assert "all zeros" in reasons[("sub-06", "t1w")]
    assert any("sub-08" in r for r in reasons.values())  # listed, not on disk
    assert any("sub-09" in r and "not listed" in r for r in reasons.values())
    assert not any(s == "sub-04" for s, _ in reasons)  # 4D PET: averaged, logged, kept
    log = (work / "out" / "logs" / "check_inputs" / "sub-04.log").read_text()
    assert "3 frames, averaged" in log


@pytest.mark.slow
def test_group_outputs_come_from_the_subjects_that_succeeded(messy_run):
    work, _ = messy_run
    out = work / "out"
    models = out / "models" / "space-T1w"
    mri = json.loads((models / "desc-synthMriL1Bce" / "subjects.json").read_text())["train"]
    pet = json.loads((models / "desc-synthPetL1Bce" / "subjects.json").read_text())["train"]
    assert mri == ["01", "02", "04"]  # sub-03 has no usable SPECT
    assert pet == ["01", "04"]  # sub-02's PET is broken too
    metrics = pd.read_csv(out / "tables" / "metrics.csv")
    assert set(metrics["subject"]) == {"sub-05", "sub-07"}  # sub-06's MRI is empty
    assert (out / "results_summary.md").exists()
    assert not (out / "sub-06").exists()
