"""The `script:` of every rule: run the function named by `params.entry` inside the job's log.

Rules stay declarative (inputs, outputs, params, resources) and name one importable function,
e.g. ``params: entry="workflow_scripts.simulate.subject:simulate_job"``; that function receives
the Snakemake job object. Scripts (unlike `run:` blocks) also honour `conda:` environments.
"""

import importlib
import sys
from pathlib import Path


def main(smk) -> None:
    sys.path.insert(0, str(Path(smk.scriptdir).resolve().parent))
    from workflow_scripts.joblog import job_logging

    module, func = smk.params.entry.split(":")
    with job_logging(smk.log[0]):
        getattr(importlib.import_module(module), func)(smk)


if "snakemake" in globals():
    main(snakemake)  # noqa: F821 (injected by Snakemake)
