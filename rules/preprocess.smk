# Per-image preprocessing: reorient, skull strip (BET) or histogram mask, register, resample
# onto the native (T1w) and template (MNI152) grids.
# Logic: workflow_scripts/preprocess/ (the rules' entries: jobs.py).
# Image-level rules use the wildcard `prefix` (one input image, workflow_scripts/layout.py).


# Cheap aggregate jobs run where snakemake runs, not as cluster submissions.
localrules:
    input_gate,
    derivatives_description,


rule check_inputs:
    input:
        unpack(subject_inputs),
    output:
        L.inputs_report(),
    log:
        L.log("check_inputs", "sub-{subject}"),
    benchmark:
        L.benchmark("check_inputs", "sub-{subject}")
    group:
        "inputs"
    conda:
        "../envs/stats.yaml"
    threads: 1
    resources:
        mem_mb=3000,
        runtime=10,
    params:
        entry="workflow_scripts.inputs.jobs:check_job",
        pet_4d=config["preprocess"]["pet_4d"],
    script:
        "../workflow_scripts/entry.py"


checkpoint input_gate:
    input:
        [L.inputs_report(s) for s in COHORT.subjects()],
    output:
        gate=L.gate(),
        table=L.excluded_table(),
    log:
        L.log("check_inputs", "input_gate"),
    benchmark:
        L.benchmark("check_inputs", "input_gate")
    conda:
        "../envs/stats.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    params:
        entry="workflow_scripts.inputs.jobs:gate_job",
        cohort_excluded=COHORT.excluded,
    script:
        "../workflow_scripts/entry.py"


rule derivatives_description:
    output:
        L.description(),
        L.bidsignore(),
        L.readme(),
    log:
        L.log("derivatives", "dataset_description"),
    benchmark:
        L.benchmark("derivatives", "dataset_description")
    conda:
        "../envs/stats.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    params:
        entry="workflow_scripts.preprocess.jobs:description_job",
        bids=str(L.bids),
    script:
        "../workflow_scripts/entry.py"


rule reorient:
    input:
        raw_input,
    output:
        image=L.reoriented(),
        json=L.sidecar(L.reoriented()),
    log:
        L.log("reorient", "{prefix}_{suffix}"),
    benchmark:
        L.benchmark("reorient", "{prefix}_{suffix}")
    group:
        "preprocess"
    conda:
        "../envs/stats.yaml"
    threads: 1
    resources:
        mem_mb=3000,
        runtime=10,
    params:
        entry="workflow_scripts.preprocess.jobs:reorient_job",
        subject=lambda w: image_of(w)[0],
        mod=lambda w: MOD_OF_ROLE[image_of(w)[1]],
        pet_4d=config["preprocess"]["pet_4d"],
    script:
        "../workflow_scripts/entry.py"


rule skullstrip_t1w:
    input:
        L.reoriented(suffix="T1w"),
    output:
        brain=L.brain(suffix="T1w"),
        mask=L.brain_mask(),
        json=L.sidecar(L.brain(suffix="T1w")),
        mask_json=L.sidecar(L.brain_mask()),
    log:
        L.log("skullstrip", "{prefix}"),
    benchmark:
        L.benchmark("skullstrip", "{prefix}")
    wildcard_constraints:
        prefix=names.prefix_pattern("t1w"),
    group:
        "preprocess"
    conda:
        "../envs/fsl.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=20,
    params:
        entry="workflow_scripts.preprocess.jobs:skullstrip_job",
        subject=lambda w: image_of(w)[0],
        mod=lambda w: MOD_OF_ROLE[image_of(w)[1]],
        settings=skullstrip_settings("t1w"),
    script:
        "../workflow_scripts/entry.py"


use rule skullstrip_t1w as skullstrip_pet with:
    input:
        L.reoriented(suffix="pet"),
    output:
        brain=L.brain(suffix="pet"),
        mask=L.brain_mask(),
        json=L.sidecar(L.brain(suffix="pet")),
        mask_json=L.sidecar(L.brain_mask()),
    wildcard_constraints:
        prefix=names.prefix_pattern("pet"),
    params:
        entry="workflow_scripts.preprocess.jobs:skullstrip_job",
        subject=lambda w: image_of(w)[0],
        mod=lambda w: MOD_OF_ROLE[image_of(w)[1]],
        settings=skullstrip_settings("pet"),


use rule skullstrip_t1w as spect_mask with:
    input:
        L.reoriented(suffix="spect"),
    output:
        brain=L.brain(suffix="spect"),
        mask=L.brain_mask(),
        json=L.sidecar(L.brain(suffix="spect")),
        mask_json=L.sidecar(L.brain_mask()),
    log:
        L.log("spect_mask", "{prefix}"),
    benchmark:
        L.benchmark("spect_mask", "{prefix}")
    wildcard_constraints:
        prefix="|".join(names.prefix_pattern(r) for r in ("spect", "ictal")),
    conda:
        "../envs/stats.yaml"
    params:
        entry="workflow_scripts.preprocess.jobs:spectmask_job",
        subject=lambda w: image_of(w)[0],
        mod=lambda w: MOD_OF_ROLE[image_of(w)[1]],
        settings=settings("preprocess", "spect_mask"),


# The T1w brain and mask on the registration working grid, shared by the subject's registrations.
rule working_grid:
    input:
        brain=L.brain(suffix="T1w"),
        mask=L.brain_mask(),
    output:
        image=L.working_grid(suffix="T1w"),
        mask=L.working_grid(suffix="mask"),
    log:
        L.log("working_grid", "{prefix}"),
    benchmark:
        L.benchmark("working_grid", "{prefix}")
    wildcard_constraints:
        prefix=names.prefix_pattern("t1w"),
    group:
        "preprocess"
    conda:
        "../envs/ants.yaml"
    threads: 1
    resources:
        mem_mb=3000,
        runtime=10,
    params:
        entry="workflow_scripts.preprocess.jobs:working_grid_job",
        subject=lambda w: image_of(w)[0],
        grid=settings("preprocess", "grid"),
    script:
        "../workflow_scripts/entry.py"


rule register_to_mri:
    input:
        unpack(register_inputs),
    output:
        xfm=L.to_mri_xfm(),
        json=L.sidecar(L.to_mri_xfm()),
    log:
        L.log("register_to_mri", "{prefix}"),
    benchmark:
        L.benchmark("register_to_mri", "{prefix}")
    wildcard_constraints:
        prefix="|".join(names.prefix_pattern(r) for r in ("pet", "spect", "ictal")),
    group:
        "preprocess"
    conda:
        "../envs/ants.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=20,
    params:
        entry="workflow_scripts.preprocess.jobs:register_mri_job",
        subject=lambda w: image_of(w)[0],
        mod=lambda w: MOD_OF_ROLE[image_of(w)[1]],
        registration=settings("preprocess", "registration"),
        grid=settings("preprocess", "grid"),
    script:
        "../workflow_scripts/entry.py"


rule template_files:
    output:
        t1w=L.template_t1w(),
        mask=L.template_mask(),
    log:
        L.log("template_files", "template_files"),
    benchmark:
        L.benchmark("template_files", "template_files")
    conda:
        "../envs/ants.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=5,
    params:
        entry="workflow_scripts.preprocess.jobs:template_job",
    script:
        "../workflow_scripts/entry.py"


rule register_to_template:
    input:
        mri=L.brain(suffix="T1w"),
        mri_mask=L.brain_mask(),
        mri_grid=L.working_grid(suffix="T1w"),
        template=L.template_t1w(),
        template_mask=L.template_mask(),
    output:
        xfm=L.to_template_xfm(),
        json=L.sidecar(L.to_template_xfm()),
    log:
        L.log("register_to_template", "{prefix}"),
    benchmark:
        L.benchmark("register_to_template", "{prefix}")
    wildcard_constraints:
        prefix=names.prefix_pattern("t1w"),
    group:
        "preprocess"
    conda:
        "../envs/ants.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=20,
    params:
        entry="workflow_scripts.preprocess.jobs:register_template_job",
        subject=lambda w: image_of(w)[0],
        registration=settings("preprocess", "registration"),
        grid=settings("preprocess", "grid"),
    script:
        "../workflow_scripts/entry.py"


rule space_mri:
    input:
        unpack(space_inputs("t1w")),
    output:
        image=L.in_space(suffix="T1w"),
        json=L.sidecar(L.in_space(suffix="T1w")),
        mask=L.mask_in_space(),
        mask_json=L.sidecar(L.mask_in_space()),
    log:
        L.log("space", "{prefix}_space-{space}"),
    benchmark:
        L.benchmark("space", "{prefix}_space-{space}")
    wildcard_constraints:
        prefix=names.prefix_pattern("t1w"),
    group:
        "preprocess"
    conda:
        "../envs/ants.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=10,
    params:
        entry="workflow_scripts.preprocess.jobs:space_job",
        subject=lambda w: image_of(w)[0],
        modality="T1w",
        space_name=lambda w: SPACE_NAME[w.space],
        reference=lambda w: str(space_image(image_of(w)[0], "t1w", w.space)),
        grid=settings("preprocess", "grid"),
    script:
        "../workflow_scripts/entry.py"


use rule space_mri as space_pet with:
    input:
        unpack(space_inputs("pet")),
    output:
        image=L.in_space(suffix="pet"),
        json=L.sidecar(L.in_space(suffix="pet")),
    wildcard_constraints:
        prefix=names.prefix_pattern("pet"),
    params:
        entry="workflow_scripts.preprocess.jobs:space_job",
        subject=lambda w: image_of(w)[0],
        modality="pet",
        space_name=lambda w: SPACE_NAME[w.space],
        reference=lambda w: str(space_image(image_of(w)[0], "t1w", w.space)),
        grid=settings("preprocess", "grid"),


use rule space_mri as space_spect with:
    input:
        unpack(space_inputs("spect")),
    output:
        image=L.in_space(suffix="spect"),
        json=L.sidecar(L.in_space(suffix="spect")),
        mask=L.mask_in_space(),
        mask_json=L.sidecar(L.mask_in_space()),
    wildcard_constraints:
        prefix=names.prefix_pattern("spect"),
    params:
        entry="workflow_scripts.preprocess.jobs:space_job",
        subject=lambda w: image_of(w)[0],
        modality="spect",
        space_name=lambda w: SPACE_NAME[w.space],
        reference=lambda w: str(space_image(image_of(w)[0], "t1w", w.space)),
        grid=settings("preprocess", "grid"),


use rule space_mri as space_ictal with:
    input:
        unpack(space_inputs("ictal")),
    output:
        image=L.in_space(suffix="spect", desc="preproc"),
        json=L.sidecar(L.in_space(suffix="spect", desc="preproc")),
    wildcard_constraints:
        prefix=names.prefix_pattern("ictal"),
        space=NATIVE,
    params:
        entry="workflow_scripts.preprocess.jobs:space_job",
        subject=lambda w: image_of(w)[0],
        modality="ictal",
        space_name=lambda w: SPACE_NAME[w.space],
        reference=lambda w: str(space_image(image_of(w)[0], "t1w", w.space)),
        grid=settings("preprocess", "grid"),


rule preprocess_qc:
    input:
        unpack(qc_inputs),
    output:
        report(
            L.qc_preprocess(),
            caption="report/preprocess_qc.rst",
            category="2. Preprocessing",
            subcategory="space-{space}",
            labels={"subject": "sub-{subject}", "space": "{space}"},
        ),
    log:
        L.log("preprocess_qc", "sub-{subject}_space-{space}"),
    benchmark:
        L.benchmark("preprocess_qc", "sub-{subject}_space-{space}")
    group:
        "preprocess"
    conda:
        "../envs/stats.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=5,
    params:
        entry="workflow_scripts.preprocess.jobs:qc_job",
    script:
        "../workflow_scripts/entry.py"
