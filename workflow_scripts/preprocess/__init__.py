"""Preprocessing: every input image validated, skull-stripped (or histogram-masked), registered
and resampled into the two study spaces.

- reorient: validate an input and permute its voxel axes to RAS+;
- skullstrip, bet_surface: BET (FSL through nipype where `bet` exists, else the pure-Python BET
  with numba kernels);
- spect_mask: a SPECT brain mask from its intensity histogram;
- registration, linear_resample: ANTs rigid/affine registration and resampling;
- spaces: the native and template grids, the template files;
- qc: the registration overlay figures;
- jobs: the Snakemake entries (rules/preprocess.smk).
"""
