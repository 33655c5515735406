"""The run's own record: every job's benchmark summed per rule, and cluster resources from it.

- table: the per-rule time and peak-memory table from the jobs' `benchmark:` files;
- resources: SLURM `mem_mb` / `runtime` per rule from that table (profiles/slurm);
- jobs: the Snakemake entry (rules/benchmarks.smk).
"""
