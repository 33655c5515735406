"""The simulated demo cohort: BIDS T1w, FDG-PET and HMPAO SPECT built from nilearn's MNI152.

- anatomy: the head model (template, deformation); modalities, effects, tracer_regions: the
  images and their disease effects; difficulty: how hard a subject is; qc: the QC figure;
- subject: one subject and the dataset files; jobs: the Snakemake entries (rules/simulate.smk).
"""

from workflow_scripts.simulate.subject import (
    bids_paths,
    focus_world,
    simulate_subject,
    truth_dir,
    write_dataset,
)

__all__ = ["bids_paths", "focus_world", "simulate_subject", "truth_dir", "write_dataset"]
