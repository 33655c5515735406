"""The workflow through profiles/slurm on a real one-node SLURM (scripts/slurm_localhost.sh).

Opt-in: runs when SPECTSYNTH_SLURM=1 (CI sets it after starting the cluster); skipped otherwise.
A tiny study (2 train, 1 test, 1 validation subjects, one condition) goes through the SLURM
executor end to end; the test checks the outputs and that every job was a SLURM job.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))

pytestmark = [
    pytest.mark.slurm,
    pytest.mark.skipif(
        os.environ.get("SPECTSYNTH_SLURM") != "1",
        reason="set SPECTSYNTH_SLURM=1 with a running SLURM",
    ),
]

TINY = [
    "simulate={enabled: true, seed: 3, n_train: 2, n_test: 1, n_validation: 1, ictal: false, voxel_scale: 3}",
    "preprocess={grid: {shape: [32, 32, 24], voxel_mm: 6.0}}",
    "slices={n_slices: 8, size: 32}",
    "train={spaces: [native], inputs: [pet], losses: [l1_bce], epochs: 1, batch_size: 4, ngf: 8, ndf: 8}",
    "evaluate={montage_subjects: 1}",
    "siscom={enabled: false}",
]


def test_tiny_study_runs_through_slurm(tmp_path):
    assert shutil.which("sbatch") and shutil.which("squeue"), "SLURM client tools missing"
    work = tmp_path / "slurm"
    work.mkdir()
    cmd = [
        SNAKEMAKE,
        "-s",
        str(ROOT / "Snakefile"),
        "--directory",
        str(work),
        "--profile",
        str(ROOT / "profiles" / "slurm"),
        "--jobs",
        "4",
        # poll job states every few seconds, not the cluster-friendly 40 s and more
        "--slurm-init-seconds-before-status-checks",
        "2",
        "--slurm-keep-successful-logs",  # the plugin deletes them by default; we read them
        "--default-resources",
        "slurm_partition=main",
        "mem_mb=1500",
        "runtime=30",
        "--config",
        f"bids_dir={work / 'bids'}",
        f"out_dir={work / 'out'}",
        *TINY,
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run = subprocess.run(
        ["timeout", "-s", "KILL", "1500", *cmd], capture_output=True, text=True, env=env, cwd=work
    )
    log = run.stdout + run.stderr
    assert run.returncode == 0, log[-5000:]
    metrics = pd.read_csv(work / "out" / "tables" / "metrics.csv")
    assert set(metrics["subject"]) == {"sub-03", "sub-04"}
    assert (work / "out" / "results_summary.md").exists()
    job_ids = set(re.findall(r"SLURM jobid (\d+)", log)) | set(
        re.findall(r"external jobid '?(\d+)", log)
    )
    # grouped preprocessing (one submission per subject) and local aggregate rules: far fewer
    # submissions than jobs (before grouping, every one of the ~80 jobs was its own sbatch)
    jobs = int(re.findall(r"(\d+) of \d+ steps \(100%\) done", log)[-1])
    print(f"SLURM submissions: {len(job_ids)} for {jobs} jobs")
    assert 5 <= len(job_ids) < jobs / 2, log[-3000:]
    # one SLURM log per job, named by its SLURM job id
    slurm_logs = list((work / ".snakemake" / "slurm_logs").rglob("*.log"))
    assert job_ids <= {p.stem for p in slurm_logs}
