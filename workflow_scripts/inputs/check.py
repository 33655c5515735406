"""Per-subject input gate: which of a subject's images can be used, and why not.

The check runs as a Snakemake checkpoint, one job per subject. It never fails on bad data:
it records the error (naming subject and file) so that the group rules (training, tables) are
built from the subjects that passed, and the exclusion table says who was left out and why.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from workflow_scripts.nifti_io import InputImageError, load_volume, write_json

log = logging.getLogger(__name__)


def check_subject(
    subject: str, files: dict[str, str], out_json: str | Path, *, pet_4d: str = "mean"
) -> dict:
    """Validate each present image of a subject and write {modality: {ok, file, error}}."""
    report: dict[str, dict] = {}
    for modality, path in files.items():
        entry = {"file": str(path), "ok": True, "error": ""}
        try:
            load_volume(path, subject, modality, pet_4d=pet_4d)
        except InputImageError as err:
            entry.update(ok=False, error=str(err))
            log.error("%s", err)
        report[modality] = entry
    write_json({"subject": subject, "modalities": report}, out_json)
    return report


def usable(report: dict, modalities: tuple[str, ...] | list[str]) -> bool:
    """True when every needed modality passed the check."""
    mods = report["modalities"]
    return all(m in mods and mods[m]["ok"] for m in modalities)


def exclusion_table(reports: list[dict], cohort_excluded: list[tuple[str, str]]) -> pd.DataFrame:
    """One row per excluded subject or image: subject, modality, file, reason."""
    rows = [
        {"subject": f"sub-{s}", "modality": "", "file": "", "reason": reason}
        for s, reason in cohort_excluded
    ]
    for rep in reports:
        for modality, entry in rep["modalities"].items():
            if not entry["ok"]:
                rows.append(
                    {
                        "subject": f"sub-{rep['subject']}",
                        "modality": modality,
                        "file": entry["file"],
                        "reason": entry["error"],
                    }
                )
    return pd.DataFrame(rows, columns=["subject", "modality", "file", "reason"])
