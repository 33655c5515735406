"""Snakemake entries of rules/simulate.smk: the head model (once), one simulated subject, the
cohort's BIDS dataset files."""

from __future__ import annotations

from workflow_scripts.simulate.anatomy import save_template
from workflow_scripts.simulate.subject import simulate_subject, write_dataset


def template_job(smk) -> None:
    """Snakemake entry (rule simulate_template)."""
    save_template(smk.output[0], float(smk.params.voxel_scale))


def simulate_job(smk) -> None:
    """Snakemake entry (rule simulate_subject)."""
    simulate_subject(
        smk.wildcards.subject,
        smk.params.split,
        smk.params.seed,
        smk.params.bids,
        ictal=smk.params.ictal,
        voxel_scale=smk.params.voxel_scale,
        qc_png=smk.output.qc,
        effects=smk.params.effects,
        template=smk.input.template,
    )


def dataset_job(smk) -> None:
    """Snakemake entry (rule simulate_dataset)."""
    write_dataset(smk.params.bids, smk.params.participants, smk.params.seed)
