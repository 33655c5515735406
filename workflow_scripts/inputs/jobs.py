"""Snakemake entries of the input checkpoints (rules/preprocess.smk): one subject's check, and
the gate that gathers every verdict and the exclusion table."""

from __future__ import annotations

import json
from pathlib import Path

from workflow_scripts.inputs.check import check_subject, exclusion_table
from workflow_scripts.nifti_io import write_json, write_text


def check_job(smk) -> None:
    """Snakemake entry (checkpoint check_inputs)."""
    check_subject(
        smk.wildcards.subject,
        {k: v for k, v in smk.input.items()},
        smk.output[0],
        pet_4d=smk.params.pet_4d,
    )


def gate_job(smk) -> None:
    """Snakemake entry (checkpoint input_gate): every subject's verdict in one file, and the
    table of who or what was left out of the study, and why."""
    reports = [json.loads(Path(f).read_text()) for f in smk.input]
    write_json({r["subject"]: r for r in reports}, smk.output.gate)
    table = exclusion_table(reports, list(smk.params.cohort_excluded))
    write_text(table.to_csv(sep="\t", index=False), smk.output.table)
