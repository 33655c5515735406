"""Training: slice files adapted to the standalone pix2pix package (model/).

- training_set: slice files -> training arrays, the split-leakage guard, subjects.json;
- from_slices: one condition trained from slice files (model.train.train_condition);
- jobs: the Snakemake entry (rules/train.smk).
"""
