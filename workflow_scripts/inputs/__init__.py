"""The study's inputs: which subjects and images there are, and which can be used.

- cohort: the BIDS dataset read with pybids into subjects, splits and image paths;
- check: the per-subject input check and the exclusion table;
- bids_validator: the official BIDS validator, run offline, its issues as Python objects;
- jobs: the Snakemake entries of the check_inputs / input_gate checkpoints.
"""
