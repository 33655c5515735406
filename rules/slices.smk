# Axial slices per subject and space, scaled to [-1, 1] (workflow_scripts/slices.py).


rule slices:
    input:
        unpack(slice_inputs),
    output:
        L.slices(),
    log:
        L.log("slices", "sub-{subject}_space-{space}"),
    benchmark:
        L.benchmark("slices", "sub-{subject}_space-{space}")
    group:
        "preprocess"
    conda:
        "../envs/stats.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=5,
    params:
        entry="workflow_scripts.slices:slices_job",
        split=lambda w: COHORT.split_of(w.subject),
        space_name=lambda w: SPACE_NAME[w.space],
        settings=settings("slices"),
    script:
        "../workflow_scripts/entry.py"
