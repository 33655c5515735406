"""Snakemake entry of rules/benchmarks.smk: the per-rule table of the run's job benchmarks."""

from __future__ import annotations

from pathlib import Path

from workflow_scripts.nifti_io import write_text
from workflow_scripts.run_benchmarks.table import job_records, rule_table


def job_benchmarks_job(smk) -> None:
    """Rule job_benchmarks: the per-rule table of every job's benchmark under out_dir."""
    records = job_records(
        Path(smk.params.bench_dir),
        smk.params.patterns,
        skip=[smk.params.own_benchmark],
        logs_dir=Path(smk.params.logs_dir),
    )
    write_text(rule_table(records).to_csv(index=False, float_format="%.2f"), smk.output.table)
