"""Subject discovery and subject-level splits (workflow_scripts/inputs/cohort.py)."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from workflow_scripts.inputs.cohort import (
    CohortError,
    assign_missing_splits,
    build_cohort,
    demo_participants,
    read_participants,
)

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def config() -> dict:
    return yaml.safe_load((ROOT / "config.yaml").read_text())


def make_bids(root: Path, rows: list[tuple[str, str]], modalities: dict[str, tuple[str, ...]]):
    """A BIDS folder with empty placeholder files (the cohort only checks existence)."""
    lines = ["participant_id\tsplit"] + [f"{pid}\t{split}" for pid, split in rows]
    (root / "participants.tsv").write_text("\n".join(lines) + "\n")
    (root / "dataset_description.json").write_text('{"Name": "t", "BIDSVersion": "1.10.0"}')
    patterns = {
        "t1w": "sub-{s}/anat/sub-{s}_T1w.nii.gz",
        "pet": "sub-{s}/pet/sub-{s}_trc-FDG_pet.nii.gz",
        "spect": "sub-{s}/spect/sub-{s}_acq-interictal_spect.nii.gz",
    }
    for pid, mods in modalities.items():
        for mod in mods:
            path = root / patterns[mod].format(s=pid.removeprefix("sub-"))
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"")


def real_config(config: dict, bids: Path) -> dict:
    cfg = copy.deepcopy(config)
    cfg["bids_dir"] = str(bids)
    cfg["simulate"]["enabled"] = False
    return cfg


def test_demo_participants_follow_counts(config):
    table = demo_participants(config["simulate"])
    assert list(table["participant_id"][:2]) == ["sub-01", "sub-02"]
    counts = table["split"].value_counts().to_dict()
    sim = config["simulate"]
    assert counts == {
        "train": sim["n_train"],
        "test": sim["n_test"],
        "validation": sim["n_validation"],
    }


def test_demo_cohort_needs_no_files(config, tmp_path):
    config["bids_dir"] = str(tmp_path / "not-yet-simulated")
    cohort = build_cohort(config)
    assert len(cohort.subjects()) == 12
    assert cohort.subjects("test") == ["09", "10"]
    assert cohort.has("01", "ictal") is True
    assert cohort.path("03", "pet").name == "sub-03_trc-FDG_pet.nii.gz"


def test_duplicate_subject_is_refused_with_its_name(tmp_path):
    (tmp_path / "participants.tsv").write_text(
        "participant_id\tsplit\nsub-01\ttrain\nsub-02\ttest\nsub-01\ttest\n"
    )
    with pytest.raises(CohortError, match=r"sub-01 \(train\); sub-01 \(test\)"):
        read_participants(tmp_path / "participants.tsv")


def test_unknown_split_is_refused(tmp_path):
    (tmp_path / "participants.tsv").write_text("participant_id\tsplit\nsub-01\ttraining\n")
    with pytest.raises(CohortError, match="training"):
        read_participants(tmp_path / "participants.tsv")


def test_missing_splits_are_seeded_and_subject_level():
    import pandas as pd

    ids = [f"sub-{i:02d}" for i in range(1, 21)]
    table = pd.DataFrame({"participant_id": ids, "split": [""] * 20})
    table.loc[0, "split"] = "train"
    has_spect = dict.fromkeys(ids, True)
    has_spect["sub-20"] = False
    fractions = {"train": 0.7, "test": 0.15, "validation": 0.15}
    a = assign_missing_splits(table, has_spect, fractions, seed=3)
    b = assign_missing_splits(table, has_spect, fractions, seed=3)
    c = assign_missing_splits(table, has_spect, fractions, seed=4)
    assert a.equals(b)
    assert not a.equals(c)
    assert a.loc[a["participant_id"] == "sub-20", "split"].item() == "predict"
    assert a.loc[0, "split"] == "train"  # labelled subjects keep their split
    counts = a.iloc[1:19]["split"].value_counts().to_dict()  # the 18 seeded ones
    # 18 x (0.7, 0.15, 0.15) = 12.6, 2.7, 2.7: floors 12, 2, 2, then largest remainders.
    assert counts == {"train": 12, "test": 3, "validation": 3}
    assert a["participant_id"].is_unique


def test_real_cohort_excludes_unusable_subjects_and_names_them(config, tmp_path):
    rows = [
        ("sub-01", "train"),
        ("sub-02", "train"),
        ("sub-03", "test"),
        ("sub-04", "validation"),
        ("sub-05", "predict"),
        ("sub-06", "test"),
    ]
    full = ("t1w", "pet", "spect")
    make_bids(
        tmp_path,
        rows,
        {
            "sub-01": full,
            "sub-02": full,
            "sub-03": full,
            "sub-04": ("t1w", "spect"),  # no PET: kept for the mri input only
            "sub-05": ("t1w", "pet"),  # predict: no SPECT needed
            "sub-06": ("t1w", "pet"),  # test without SPECT: excluded
            "sub-07": full,  # on disk but not listed
        },
    )
    cohort = build_cohort(real_config(config, tmp_path))
    assert cohort.subjects() == ["01", "02", "03", "04", "05"]
    reasons = dict(cohort.excluded)
    assert "needs an interictal SPECT" in reasons["06"] and "sub-06" in reasons["06"]
    assert "not listed" in reasons["07"]
    assert cohort.subjects_for_input("pet", ["test", "validation"]) == ["03"]
    assert cohort.subjects_for_input("mri", ["test", "validation"]) == ["03", "04"]
    assert cohort.subjects_for_input("mri", "predict", need_spect=False) == ["05"]


def test_empty_split_is_a_config_error(config, tmp_path):
    make_bids(
        tmp_path,
        [("sub-01", "train"), ("sub-02", "test")],
        {"sub-01": ("t1w", "pet", "spect"), "sub-02": ("t1w", "pet", "spect")},
    )
    with pytest.raises(CohortError, match="split 'validation' has no subject"):
        build_cohort(real_config(config, tmp_path))


def test_unknown_subject_lookup_names_it(config, tmp_path):
    config["bids_dir"] = str(tmp_path)
    with pytest.raises(CohortError, match="unknown subject '99'"):
        build_cohort(config).split_of("99")


def touch(root: Path, *relpaths: str) -> None:
    for rel in relpaths:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")


def session_bids(root: Path) -> None:
    """Hospital layout: MRI/PET in ses-pre, SPECT in ses-inter / ses-ictal, no acq entities."""
    make_bids(root, [("sub-P001", "train"), ("sub-P002", "test"), ("sub-P003", "validation")], {})
    for s in ("P001", "P002", "P003"):
        touch(
            root,
            f"sub-{s}/ses-pre/anat/sub-{s}_ses-pre_T1w.nii.gz",
            f"sub-{s}/ses-pre/pet/sub-{s}_ses-pre_trc-FDG_pet.nii.gz",
            f"sub-{s}/ses-inter/spect/sub-{s}_ses-inter_spect.nii.gz",
            f"sub-{s}/ses-ictal/spect/sub-{s}_ses-ictal_spect.nii.gz",
        )


def session_config(config: dict, bids: Path) -> dict:
    """The demo defaults, with the SPECT roles chosen by session: "*" lifts the default
    acquisition filter (config files and --config merge into the defaults key by key)."""
    cfg = real_config(config, bids)
    cfg["inputs"]["spect"].update(session="inter", acquisition="*")
    cfg["inputs"]["ictal"].update(session="ictal", acquisition="*")
    return cfg


def test_a_default_filter_left_in_place_matches_nothing(config, tmp_path):
    session_bids(tmp_path)
    cfg = real_config(config, tmp_path)
    cfg["inputs"]["spect"].update(session="inter")  # acquisition: interictal still required
    with pytest.raises(CohortError, match="split 'train' has no subject"):
        build_cohort(cfg)


def test_sessions_and_entity_filters_pick_each_role(config, tmp_path):
    session_bids(tmp_path)
    cohort = build_cohort(session_config(config, tmp_path))
    assert cohort.subjects() == ["P001", "P002", "P003"]
    assert cohort.path("P002", "ictal").name == "sub-P002_ses-ictal_spect.nii.gz"
    assert cohort.session("P002", "spect") == "inter"
    assert (
        cohort.prefix("P002", "spect")
        == "sub-P002/ses-inter/spect/sub-P002_ses-inter_acq-interictal"
    )
    assert cohort.prefix("P002", "t1w") == "sub-P002/ses-pre/anat/sub-P002_ses-pre"


def test_two_files_for_one_role_exclude_the_subject_and_name_the_files(config, tmp_path):
    session_bids(tmp_path)
    touch(tmp_path, "sub-P003/ses-inter/anat/sub-P003_ses-inter_T1w.nii.gz")  # second T1w
    cfg = session_config(config, tmp_path)
    cfg["evaluate"]["splits"] = ["test"]  # P003 is the only validation subject
    cohort = build_cohort(cfg)
    reason = dict(cohort.excluded)["P003"]
    assert "2 files match the t1w filters" in reason
    assert "sub-P003_ses-pre_T1w.nii.gz" in reason and "sub-P003_ses-inter_T1w.nii.gz" in reason
    assert "P003" not in cohort.subjects()


def test_participant_label_and_exclusion(config, tmp_path):
    session_bids(tmp_path)
    make_bids(
        tmp_path,
        [
            ("sub-P001", "train"),
            ("sub-P002", "test"),
            ("sub-P003", "validation"),
            ("sub-P004", "train"),
        ],
        {},
    )
    touch(
        tmp_path,
        "sub-P004/ses-pre/anat/sub-P004_ses-pre_T1w.nii.gz",
        "sub-P004/ses-inter/spect/sub-P004_ses-inter_spect.nii.gz",
    )
    cfg = session_config(config, tmp_path)
    cfg["exclude_participant_label"] = ["sub-P004"]
    assert build_cohort(cfg).subjects() == ["P001", "P002", "P003"]
    cfg["exclude_participant_label"] = []
    cfg["participant_label"] = ["P001", "P002", "P003"]
    assert build_cohort(cfg).subjects() == ["P001", "P002", "P003"]
    cfg["participant_label"] = ["P001", "P099"]
    with pytest.raises(CohortError, match="sub-P099"):
        build_cohort(cfg)


def test_unknown_entity_in_a_filter_is_a_config_error(config, tmp_path):
    session_bids(tmp_path)
    cfg = session_config(config, tmp_path)
    cfg["inputs"]["pet"] = {"suffix": "pet", "trc": "FDG"}  # pybids calls it `tracer`
    with pytest.raises(CohortError, match="inputs.pet.*trc"):
        build_cohort(cfg)


def test_without_participants_tsv_every_subject_folder_is_taken(config, tmp_path):
    session_bids(tmp_path)
    (tmp_path / "participants.tsv").unlink()
    cfg = session_config(config, tmp_path)
    cfg["splits"]["fractions"] = {"train": 0.34, "test": 0.33, "validation": 0.33}
    cohort = build_cohort(cfg)
    assert sorted(cohort.subjects()) == ["P001", "P002", "P003"]
    assert sorted(cohort.table["split"]) == ["test", "train", "validation"]


def test_a_dataset_without_description_is_refused(config, tmp_path):
    session_bids(tmp_path)
    (tmp_path / "dataset_description.json").unlink()
    with pytest.raises(CohortError, match="not a BIDS dataset"):
        build_cohort(session_config(config, tmp_path))
