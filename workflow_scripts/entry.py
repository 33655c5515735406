"""The `script:` of every rule: run the function named by `params.entry` inside the job's log.

Rules stay declarative (inputs, outputs, params, resources) and name one importable function,
e.g. ``params: entry="workflow_scripts.simulate.subject:simulate_job"``; that function receives
the Snakemake job object. Scripts (unlike `run:` blocks) also honour `conda:` environments.
In a local run the job goes to the run's job server, which already holds the heavy libraries
(workflow_scripts/warm_start.py); without one it runs here.
"""

import importlib
import sys
from pathlib import Path


def run(smk, server_pid: int | None = None) -> None:
    """The job itself, in this process (`server_pid`: the job server it was forked from)."""
    from workflow_scripts.joblog import job_logging

    module, func = smk.params.entry.split(":")
    with job_logging(smk.log[0], server_pid=server_pid):
        getattr(importlib.import_module(module), func)(smk)


def main(smk) -> None:
    sys.path.insert(0, str(Path(smk.scriptdir).resolve().parent))
    from workflow_scripts.warm_start import run_in_server

    status = run_in_server(smk)
    if status is None:
        run(smk)
    elif status:
        sys.exit(status)


if "snakemake" in globals():
    main(snakemake)  # noqa: F821 (injected by Snakemake)
