"""The simulated demo cohort passes the official BIDS validator (bids-validator-deno), and the
validator wrapper (workflow_scripts/inputs/bids_validator.py) reports what breaks it.

Subjects are simulated at voxel_scale=3 through the Python functions (about 2 s each); each
validator run takes about a second. Tests that need the validator skip when it is not installed
(CI installs it from requirements.lock).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from workflow_scripts.inputs import bids_validator
from workflow_scripts.inputs.bids_validator import (
    ValidatorNotFoundError,
    find_validator,
    run_validator,
)
from workflow_scripts.simulate import simulate_subject, write_dataset

try:
    find_validator()
    HAVE_VALIDATOR = True
except ValidatorNotFoundError:
    HAVE_VALIDATOR = False

needs_validator = pytest.mark.skipif(
    not HAVE_VALIDATOR,
    reason="bids-validator-deno is not installed (pip install -r requirements.lock)",
)

# Warnings the demo cohort is known to keep, with the reason (see write_dataset's README):
# PET keys that cannot apply to a simulated static bolus FDG scan, and a single collective author.
KNOWN_PET_WARNINGS = {
    "InfusionRadioactivity",  # bolus injection: no infusion
    "InfusionStart",
    "InfusionSpeed",
    "InfusionSpeedUnits",
    "InjectedMassPerWeight",  # FDG: injected mass not available ("n/a")
    "InjectedMassPerWeightUnits",
    "SpecificRadioactivityMeasTime",  # FDG: specific radioactivity "n/a"
    "MolarActivity",  # FDG: not available
    "MolarActivityUnits",
    "MolarActivityMeasTime",
    "PharmaceuticalName",  # no pharmaceutical given with the tracer
    "PharmaceuticalDoseAmount",
    "PharmaceuticalDoseUnits",
    "PharmaceuticalDoseRegimen",
    "PharmaceuticalDoseTime",
    "PromptRate",  # no detector simulated
    "SinglesRate",
    "TracerRadLex",  # no verified ontology code at hand
    "TracerSNOMED",
}
KNOWN_WARNINGS = {("SIDECAR_KEY_RECOMMENDED", k) for k in KNOWN_PET_WARNINGS} | {
    ("TOO_FEW_AUTHORS", None)
}


@pytest.fixture(scope="module")
def cohort(tmp_path_factory) -> Path:
    bids = tmp_path_factory.mktemp("bids") / "demo"
    simulate_subject("01", "train", 21, bids, ictal=True, voxel_scale=3.0)
    simulate_subject("02", "validation", 22, bids, ictal=False, voxel_scale=3.0)
    simulate_subject("03", "predict", 23, bids, ictal=True, voxel_scale=3.0)
    write_dataset(
        bids, [("sub-01", "train"), ("sub-02", "validation"), ("sub-03", "predict")], seed=2
    )
    return bids


@pytest.fixture
def copy_of(cohort, tmp_path) -> Path:
    return Path(shutil.copytree(cohort, tmp_path / "demo"))


def _edit_json(path: Path, edit) -> None:
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


@needs_validator
def test_demo_cohort_passes_the_bids_validator(cohort):
    result = run_validator(cohort)
    print(result.report(limit=100))
    assert result.errors == [], result.report()
    assert result.valid
    assert set(result.counts("warning")) <= KNOWN_WARNINGS, result.report(limit=100)
    # 19 inapplicable PET keys x 3 subjects, and one author
    assert len(result.warnings) == len(KNOWN_PET_WARNINGS) * 3 + 1
    assert set(result.summary["subjects"]) == {"01", "02", "03"}
    assert {"PET", "MRI"} <= set(result.summary["modalities"])


@needs_validator
def test_simulation_ground_truth_is_a_valid_derivative_dataset(cohort):
    result = run_validator(cohort / "derivatives" / "simulation", derivative=True)
    assert result.errors == [], result.report()
    assert result.summary["dataProcessed"] is True  # the validator saw a derivative dataset


@needs_validator
def test_derivative_flag_rejects_a_raw_dataset(cohort):
    result = run_validator(cohort, derivative=True)
    assert [e.code for e in result.errors] == ["NOT_A_DERIVATIVE_DATASET"]


def _drop_pet_key(bids: Path, key: str) -> None:
    for side in bids.glob("sub-*/pet/*_pet.json"):
        _edit_json(side, lambda d: d.pop(key))


BREAKAGES = {
    # what the simulator writes -> (how to break it, the issue that must appear)
    "pet_required_key": (
        lambda b: _drop_pet_key(b, "TracerRadionuclide"),
        ("error", "SIDECAR_KEY_REQUIRED", "TracerRadionuclide"),
    ),
    "pet_time_zero": (
        lambda b: _drop_pet_key(b, "TimeZero"),
        ("error", "SIDECAR_KEY_REQUIRED", "TimeZero"),
    ),
    "pet_frames_match_the_image": (
        lambda b: [
            _edit_json(s, lambda d: d.update(FrameDuration=[300.0, 300.0]))
            for s in b.glob("sub-*/pet/*_pet.json")
        ],
        ("error", "PET_FRAME_CONSISTENCY", None),
    ),
    "bidsignore": (
        lambda b: (b / ".bidsignore").unlink(),
        ("error", "NOT_INCLUDED", None),
    ),
    "dataset_description": (
        lambda b: (b / "dataset_description.json").unlink(),
        ("error", "MISSING_DATASET_DESCRIPTION", None),
    ),
    "participants_json_split": (
        lambda b: _edit_json(b / "participants.json", lambda d: d.pop("split")),
        ("warning", "TSV_ADDITIONAL_COLUMNS_UNDEFINED", "split"),
    ),
    "readme": (
        lambda b: (b / "README").unlink(),
        ("warning", "README_FILE_MISSING", None),
    ),
    "t1w_recommended_key": (
        lambda b: [
            _edit_json(s, lambda d: d.pop("MagneticFieldStrength"))
            for s in b.glob("sub-*/anat/*_T1w.json")
        ],
        ("warning", "SIDECAR_KEY_RECOMMENDED", "MagneticFieldStrength"),
    ),
}


@needs_validator
@pytest.mark.parametrize("name", sorted(BREAKAGES))
def test_validator_catches_a_broken_cohort(copy_of, name):
    """Each guarded file or key, broken on a copy of the valid cohort, gives its issue."""
    breaks, (severity, code, sub_code) = BREAKAGES[name]
    breaks(copy_of)
    result = run_validator(copy_of)
    found = [
        i
        for i in result.issues
        if i.severity == severity
        and i.code.startswith(code)
        and (sub_code is None or i.sub_code == sub_code)
    ]
    assert found, result.report(limit=100)
    assert result.valid == (severity != "error")


@needs_validator
def test_recursive_validation_reports_derivatives_separately(cohort):
    result = run_validator(cohort, recursive=True)
    assert set(result.derivatives) == {"derivatives/simulation"}
    assert result.errors == []
    # bids-validator-deno 3.0.2 ignores a nested dataset's own .bidsignore under --recursive,
    # so the simulation's ground-truth files show up there; validated directly they do not.
    nested = result.derivatives["derivatives/simulation"]
    assert {e.code for e in nested.errors} <= {"NOT_INCLUDED", "SIDECAR_WITHOUT_DATAFILE"}


def test_missing_validator_gives_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setattr(bids_validator.sys, "executable", str(tmp_path / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ValidatorNotFoundError, match="bids-validator-deno is not installed"):
        run_validator(tmp_path)


def test_not_a_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a folder"):
        run_validator(tmp_path / "nothing")
