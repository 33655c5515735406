"""Slices: the 2D material the model sees, cut from a subject's volumes in one space.

- extract: which axial slices, the in-plane window, the scaling to [-1, 1] (and back);
- files: SubjectSlices, the per-modality slice files, model inputs stacked from them;
- jobs: the Snakemake entries (rules/slices.smk).
"""
