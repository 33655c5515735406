# Axial slices per subject and space, scaled to [-1, 1] (workflow_scripts/slices.py).


rule slices:
    input:
        unpack(slice_inputs),
    output:
        SLICES / "space-{space}" / "sub-{subject}_slices.npz",
    log:
        LOGS / "slices" / "sub-{subject}_space-{space}.log",
    conda:
        "../envs/stats.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=5,
    params:
        entry="workflow_scripts.slices:slices_job",
        split=lambda w: COHORT.split_of(w.subject),
        settings=config["slices"],
    script:
        "../workflow_scripts/entry.py"
