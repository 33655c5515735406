# Axial slices per subject, space and modality, scaled to [-1, 1] (workflow_scripts/slices/):
# one job per file, so that a setting of one modality remakes only that modality's slices. Every
# job cuts the same slices and window, from the MRI brain mask.


rule slices:
    input:
        unpack(slice_inputs()),
    output:
        L.slices(),
    log:
        L.log("slices", "sub-{subject}_space-{space}_mod-{modality}"),
    benchmark:
        L.benchmark("slices", "sub-{subject}_space-{space}_mod-{modality}")
    wildcard_constraints:
        modality="|".join(m for m in SLICE_SOURCES if m != SLICE_TARGET),
    group:
        "preprocess"
    conda:
        "../envs/stats.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=5,
    params:
        entry="workflow_scripts.slices.jobs:slices_job",
        split=lambda w: COHORT.split_of(w.subject),
        space_name=lambda w: SPACE_NAME[w.space],
        settings=slice_settings("input"),
    script:
        "../workflow_scripts/entry.py"


rule target_slices:
    input:
        unpack(slice_inputs(SLICE_TARGET)),
    output:
        L.slices(modality=SLICE_TARGET),
    log:
        L.log("target_slices", "sub-{subject}_space-{space}"),
    benchmark:
        L.benchmark("target_slices", "sub-{subject}_space-{space}")
    group:
        "preprocess"
    conda:
        "../envs/stats.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=5,
    params:
        entry="workflow_scripts.slices.jobs:target_slices_job",
        split=lambda w: COHORT.split_of(w.subject),
        space_name=lambda w: SPACE_NAME[w.space],
        settings=slice_settings("target"),
    script:
        "../workflow_scripts/entry.py"
