"""Regional perfusion and left-right asymmetry of synthetic against real SPECT.

- atlas: the built-in lobar atlas on the template grid (or the user's), its checks (warped to a
  subject by preprocess.registration.warp_atlas, in the ANTs environment);
- uptake: per-region relative uptake and asymmetry index of one volume pair, the focus region;
- agreement: ICC(A,1), Bland-Altman limits, Wilson intervals;
- summary: the group agreement tables and figure;
- jobs: the Snakemake entries (rules/regions.smk).
"""
