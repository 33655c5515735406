"""A cohort that does not look like the demo, end to end: hospital labels (sub-P001), sessions
(ictal and interictal SPECT in different ones), roles chosen by entity filters, a patient without
SPECT to predict, and two bad inputs. Every good subject gets its synthetic SPECT as a BIDS
derivative; the bad ones are named in the excluded table; the derivatives name sessions."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import nibabel as nib
import pandas as pd
import pytest

from tests.conftest import ROOT, SNAKEMAKE, run_workflow
from workflow_scripts.simulate import bids_paths, simulate_subject, write_dataset

CONFIG = [
    "simulate={enabled: false}",
    # roles by session, no acq entity: the sessions tell ictal from interictal
    "inputs={participants: participants.tsv, t1w: {datatype: anat, suffix: T1w},"
    # (config files merge key by key: "*" lifts the default `acquisition` filter)
    " pet: {datatype: pet, suffix: pet}, spect: {suffix: spect, session: interictal, acquisition: '*'},"
    " ictal: {suffix: spect, session: ictal, acquisition: '*'}}",
    "exclude_participant_label=[P009]",
    "preprocess={grid: {shape: [32, 32, 24], voxel_mm: 6.0}}",
    "slices={n_slices: 8, size: 32}",
    "train={spaces: [native], inputs: [pet], losses: [l1_bce], epochs: 1, batch_size: 4, ngf: 8, ndf: 8}",
    "evaluate={montage_subjects: 1}",
]
# label -> split; P005 is a new patient without SPECT; P006 has a corrupt T1w; P007 has two T1w
# runs (ambiguous for the t1w filters); P009 is excluded by exclude_participant_label.
SPLITS = {
    "P001": "train",
    "P002": "train",
    "P003": "test",
    "P004": "validation",
    "P005": "predict",
    "P006": "train",
    "P007": "test",
    "P009": "train",
}


def hospital_bids(root: Path) -> Path:
    """Simulate subjects, then file them as a hospital would: MRI and PET in the interictal
    session, the ictal SPECT in its own session, no acq entities."""
    sim, bids = root / "sim", root / "bids"
    for k, (label, split) in enumerate(SPLITS.items()):
        simulate_subject(str(k + 1), split, 300 + k, sim, ictal=True, voxel_scale=3.0)
        src = bids_paths(sim, str(k + 1))
        s = f"sub-{label}"
        files = {
            "T1w": bids / s / "ses-interictal" / "anat" / f"{s}_ses-interictal_T1w.nii.gz",
            "pet": bids / s / "ses-interictal" / "pet" / f"{s}_ses-interictal_trc-FDG_pet.nii.gz",
            "spect": bids / s / "ses-interictal" / "spect" / f"{s}_ses-interictal_spect.nii.gz",
            "ictal": bids / s / "ses-ictal" / "spect" / f"{s}_ses-ictal_spect.nii.gz",
        }
        for key, dest in files.items():
            if label == "P005" and key == "spect":
                continue  # the patient to predict has no interictal SPECT
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(src[key], dest)
    write_dataset(bids, [(f"sub-{lb}", sp) for lb, sp in SPLITS.items()], seed=0)
    t1 = bids / "sub-P006/ses-interictal/anat/sub-P006_ses-interictal_T1w.nii.gz"
    t1.write_bytes(t1.read_bytes()[:3000])  # truncated
    anat = bids / "sub-P007/ses-interictal/anat"
    (anat / "sub-P007_ses-interictal_T1w.nii.gz").rename(
        anat / "sub-P007_ses-interictal_run-1_T1w.nii.gz"
    )
    shutil.copy(
        anat / "sub-P007_ses-interictal_run-1_T1w.nii.gz",
        anat / "sub-P007_ses-interictal_run-2_T1w.nii.gz",
    )
    return bids


@pytest.fixture(scope="module")
def hospital_run(tmp_path_factory):
    work = tmp_path_factory.mktemp("hospital")
    bids = hospital_bids(work)
    return work, run_workflow(work, bids, CONFIG)


@pytest.mark.slow
def test_every_good_subject_gets_its_synthetic_spect(hospital_run):
    work, run = hospital_run
    assert run.returncode == 0, (run.stdout + run.stderr)[-4000:]
    out = work / "out"
    for label in ("P003", "P004", "P005"):
        synth = (
            out
            / f"sub-{label}"
            / "spect"
            / f"sub-{label}_acq-interictal_space-T1w_desc-synthPetL1Bce_spect.nii.gz"
        )
        img = nib.load(synth)
        assert img.get_fdata().max() > 0
        assert int(img.header["sform_code"]) == 1
        side = json.loads(synth.with_name(synth.name.replace(".nii.gz", ".json")).read_text())
        assert side["Model"]["Condition"] == {
            "space": "native",
            "input": "pet",
            "loss": "l1_bce",
            "context": 1,  # the model's 2.5D context (slices.context)
        }
        assert any("ses-interictal/pet/" in s for s in side["Sources"])
    metrics = pd.read_csv(out / "tables" / "metrics.csv")
    assert set(metrics["subject"]) == {"sub-P003", "sub-P004"}
    trained = json.loads((out / "models/space-T1w/desc-synthPetL1Bce/subjects.json").read_text())
    assert trained["train"] == ["P001", "P002"]


@pytest.mark.slow
def test_bad_inputs_are_named_and_left_out(hospital_run):
    work, _ = hospital_run
    excluded = pd.read_csv(work / "out" / "tables" / "excluded_subjects.tsv", sep="\t").fillna("")
    reasons = {(r.subject, r.modality): r.reason for r in excluded.itertuples()}
    p006 = reasons[("sub-P006", "t1w")]
    assert "sub-P006_ses-interictal_T1w.nii.gz" in p006
    p007 = next(r for (s, _), r in reasons.items() if s == "sub-P007")
    assert "run-1_T1w" in p007 and "run-2_T1w" in p007
    assert not any(s == "sub-P009" for s, _ in reasons)  # left out on request, not an error
    assert not (work / "out" / "sub-P009").exists() and not (work / "out" / "sub-P007").exists()


@pytest.mark.slow
def test_derivatives_carry_sessions_and_spaces(hospital_run):
    out = hospital_run[0] / "out"
    desc = json.loads((out / "dataset_description.json").read_text())
    assert desc["DatasetType"] == "derivative" and desc["GeneratedBy"][0]["Name"] == "spectsynth"
    anat = out / "sub-P001" / "ses-interictal" / "anat"
    t1 = anat / "sub-P001_ses-interictal_space-T1w_desc-brain_T1w.nii.gz"
    assert int(nib.load(t1).header["sform_code"]) == 1
    assert (anat / "sub-P001_ses-interictal_space-T1w_desc-brain_mask.nii.gz").exists()
    # the tool adds acq-ictal / acq-interictal to SPECT derivatives: they name the role
    spect = out / "sub-P003/ses-ictal/spect"
    ictal = spect / "sub-P003_ses-ictal_acq-ictal_space-T1w_desc-preproc_spect.nii.gz"
    side = json.loads(ictal.with_name(ictal.name.replace(".nii.gz", ".json")).read_text())
    assert side["SkullStripped"] is False
    assert side["SpatialReference"] == f"bids::{t1.relative_to(out).as_posix()}".replace(
        "P001", "P003"
    )
    # Sources chain back to the raw file: the resampled image names the reoriented one, which
    # names the raw input (BIDS URI into the raw dataset)
    reoriented = "sub-P003_ses-ictal_acq-ictal_desc-reoriented_spect"
    assert f"bids::sub-P003/ses-ictal/spect/{reoriented}.nii.gz" in side["Sources"]
    first = json.loads((spect / f"{reoriented}.json").read_text())
    assert first["Sources"] == ["bids:raw:sub-P003/ses-ictal/spect/sub-P003_ses-ictal_spect.nii.gz"]
    assert (spect / "sub-P003_ses-ictal_acq-ictal_from-orig_to-T1w_mode-image_xfm.mat").exists()


@pytest.mark.slow
def test_hospital_derivatives_pass_the_bids_validator(hospital_run):
    from workflow_scripts.inputs.bids_validator import run_validator

    result = run_validator(hospital_run[0] / "out", derivative=True)
    assert not result.errors, result.report()


def test_simulation_rules_exist_only_when_simulating(tmp_path):
    """No simulator rule is even defined on real data."""
    bids = tmp_path / "bids"
    bids.mkdir()
    (bids / "dataset_description.json").write_text('{"Name": "x", "BIDSVersion": "1.10.0"}')
    (bids / "participants.tsv").write_text("participant_id\tsplit\nsub-A1\ttrain\nsub-B2\ttest\n")
    for s in ("A1", "B2"):
        for rel in (f"anat/sub-{s}_T1w.nii.gz", f"spect/sub-{s}_acq-interictal_spect.nii.gz"):
            (bids / f"sub-{s}" / rel).parent.mkdir(parents=True, exist_ok=True)
            (bids / f"sub-{s}" / rel).write_bytes(b"")
    base = [SNAKEMAKE, "-s", str(ROOT / "Snakefile"), "--directory", str(tmp_path)]
    cfg = ["--config", f"bids_dir={bids}", f"out_dir={tmp_path / 'out'}"]
    real = subprocess.run(
        [*base, "--list-rules", *cfg, "simulate={enabled: false}", "evaluate={splits: [test]}"],
        capture_output=True,
        text=True,
    )
    assert real.returncode == 0, real.stderr[-3000:]
    assert "reorient" in real.stdout and "simulate" not in real.stdout
    demo = subprocess.run([*base, "--list-rules", *cfg], capture_output=True, text=True)
    assert "simulate_subject" in demo.stdout
