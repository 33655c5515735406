"""SISCOM (ictal minus interictal SPECT, co-registered to the MRI) with five kinds of
'interictal' image, and how well each localises the seizure focus.

- maps: the SISCOM maths (normalise, subtract, z-score, clusters, peaks, Dice);
- sources: the interictal images that are not scans (flat cohort mean, PET mapped linearly);
- analysis: one subject, every source, on one mask from the ictal SPECT and the MRI;
- summary: per source and split, with Wilson and bootstrap intervals;
- figures: the z maps as clinicians read them, and the group plot;
- jobs: the Snakemake entries (rules/siscom.smk).
"""

# The package's public names that other modules use (simulate/difficulty.py).
from workflow_scripts.siscom.maps import focus_cluster_rank, siscom_map

__all__ = ["focus_cluster_rank", "siscom_map"]
