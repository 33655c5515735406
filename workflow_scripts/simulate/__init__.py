"""The simulated demo cohort: BIDS T1w, FDG-PET and HMPAO SPECT built from nilearn's MNI152."""

from workflow_scripts.simulate.subject import (
    bids_paths,
    focus_world,
    simulate_subject,
    truth_dir,
    write_dataset,
)

__all__ = ["bids_paths", "focus_world", "simulate_subject", "truth_dir", "write_dataset"]
