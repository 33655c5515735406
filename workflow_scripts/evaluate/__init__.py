"""Evaluation: synthetic SPECT for held-out subjects, its scores, and the study's tables.

- synthesis: a subject's synthetic volume and uncertainty map from its MRI/PET and one model;
- metrics, volume_metrics: per-slice ([-1, 1], the paper's Table 4) and whole-volume (relative
  uptake, the primary endpoints) scores;
- score: one synthetic volume against the real one;
- baselines, ceiling: what a trivial predictor scores, and the Monte Carlo count-noise ceiling;
- stats, seed_variance: paired tests between conditions, run-to-run variation;
- tables, figures: the group tables, the summary, the paper's figures and montages;
- jobs: the Snakemake entries (rules/evaluate.smk).
"""
