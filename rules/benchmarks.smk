# Per-rule time and peak memory of the run, from every job's `benchmark:` file
# (workflow_scripts/run_benchmarks/table.py).

from workflow_scripts.run_benchmarks.table import benchmark_patterns


localrules:
    job_benchmarks,


# Benchmark files are written by each job but are no rule's output: this rule takes every other
# final target as input, so it runs after every job of the run, and reads the files from disk.
rule job_benchmarks:
    input:
        all_targets,
    output:
        table=report(
            L.job_benchmarks(),
            caption="report/job_benchmarks.rst",
            category="6. Run",
            subcategory="Benchmarks",
        ),
    log:
        L.log("job_benchmarks", "job_benchmarks"),
    benchmark:
        L.benchmark("job_benchmarks", "job_benchmarks")
    conda:
        "../envs/stats.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        entry="workflow_scripts.run_benchmarks.jobs:job_benchmarks_job",
        bench_dir=str(L.benchmarks),
        logs_dir=str(L.logs),  # a job's log says whether it started warm (no memory figure)
        own_benchmark=str(L.benchmark("job_benchmarks", "job_benchmarks")),
        # rule -> regex of its benchmark files, for the rules parsed by now (all: Snakemake
        # evaluates params after the whole workflow is read)
        patterns=lambda w: benchmark_patterns(workflow.rules),
    script:
        "../workflow_scripts/entry.py"
