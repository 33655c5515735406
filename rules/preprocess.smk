# Per-subject preprocessing: reorient, skull strip (BET) or histogram mask, register, resample
# onto the native (MRI-centred) and template (MNI152) grids. Logic: workflow_scripts/preprocess.py


rule check_inputs:
    input:
        unpack(subject_inputs),
    output:
        OUT / "inputs" / "sub-{subject}_inputs.json",
    log:
        LOGS / "check_inputs" / "sub-{subject}.log",
    conda:
        "../envs/stats.yaml"
    threads: 1
    resources:
        mem_mb=3000,
        runtime=10,
    params:
        entry="workflow_scripts.input_check:check_job",
        pet_4d=config["preprocess"]["pet_4d"],
    script:
        "../workflow_scripts/entry.py"


checkpoint input_gate:
    input:
        [OUT / "inputs" / f"sub-{s}_inputs.json" for s in COHORT.subjects()],
    output:
        gate=OUT / "inputs" / "input_gate.json",
        table=TABLES / "excluded_subjects.tsv",
    log:
        LOGS / "check_inputs" / "input_gate.log",
    conda:
        "../envs/stats.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    params:
        entry="workflow_scripts.input_check:gate_job",
        cohort_excluded=COHORT.excluded,
    script:
        "../workflow_scripts/entry.py"


rule reorient:
    input:
        lambda w: bids(w.subject, MOD_KEY[w.mod]),
    output:
        PRE / "sub-{subject}" / "anat" / "sub-{subject}_{mod}_reoriented.nii.gz",
    log:
        LOGS / "reorient" / "sub-{subject}_{mod}.log",
    wildcard_constraints:
        mod="T1w|pet|spect|ictal",
    conda:
        "../envs/stats.yaml"
    threads: 1
    resources:
        mem_mb=3000,
        runtime=10,
    params:
        entry="workflow_scripts.preprocess:reorient_job",
        pet_4d=config["preprocess"]["pet_4d"],
    script:
        "../workflow_scripts/entry.py"


rule skullstrip:
    input:
        rules.reorient.output,
    output:
        brain=PRE / "sub-{subject}" / "anat" / "sub-{subject}_{mod}_brain.nii.gz",
        mask=PRE / "sub-{subject}" / "anat" / "sub-{subject}_{mod}_brainmask.nii.gz",
        json=PRE / "sub-{subject}" / "anat" / "sub-{subject}_{mod}_brain.json",
    log:
        LOGS / "skullstrip" / "sub-{subject}_{mod}.log",
    wildcard_constraints:
        mod="T1w|pet",
    conda:
        "../envs/fsl.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=20,
    params:
        entry="workflow_scripts.preprocess:skullstrip_job",
        settings=config["preprocess"]["skullstrip"],
    script:
        "../workflow_scripts/entry.py"


use rule skullstrip as spect_mask with:
    log:
        LOGS / "spect_mask" / "sub-{subject}_{mod}.log",
    wildcard_constraints:
        mod="spect|ictal",
    conda:
        "../envs/stats.yaml"
    params:
        entry="workflow_scripts.preprocess:spectmask_job",
        settings=config["preprocess"]["spect_mask"],


rule register_to_mri:
    input:
        mri=PRE / "sub-{subject}" / "anat" / "sub-{subject}_T1w_brain.nii.gz",
        mri_mask=PRE / "sub-{subject}" / "anat" / "sub-{subject}_T1w_brainmask.nii.gz",
        moving=PRE / "sub-{subject}" / "anat" / "sub-{subject}_{mod}_brain.nii.gz",
        moving_mask=PRE / "sub-{subject}" / "anat" / "sub-{subject}_{mod}_brainmask.nii.gz",
    output:
        xfm=PRE / "sub-{subject}" / "xfm" / "sub-{subject}_from-{mod}_to-T1w_rigid.mat",
        json=PRE / "sub-{subject}" / "xfm" / "sub-{subject}_from-{mod}_to-T1w_rigid.json",
    log:
        LOGS / "register_to_mri" / "sub-{subject}_{mod}.log",
    wildcard_constraints:
        mod="pet|spect|ictal",
    conda:
        "../envs/ants.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=20,
    params:
        entry="workflow_scripts.preprocess:register_mri_job",
        registration=config["preprocess"]["registration"],
        grid=config["preprocess"]["grid"],
    script:
        "../workflow_scripts/entry.py"


rule register_to_template:
    input:
        mri=PRE / "sub-{subject}" / "anat" / "sub-{subject}_T1w_brain.nii.gz",
        mri_mask=PRE / "sub-{subject}" / "anat" / "sub-{subject}_T1w_brainmask.nii.gz",
    output:
        xfm=PRE / "sub-{subject}" / "xfm" / "sub-{subject}_from-T1w_to-MNI152_affine.mat",
        json=PRE / "sub-{subject}" / "xfm" / "sub-{subject}_from-T1w_to-MNI152_affine.json",
    log:
        LOGS / "register_to_template" / "sub-{subject}.log",
    conda:
        "../envs/ants.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=20,
    params:
        entry="workflow_scripts.preprocess:register_template_job",
        registration=config["preprocess"]["registration"],
        grid=config["preprocess"]["grid"],
    script:
        "../workflow_scripts/entry.py"


rule space_mri:
    input:
        unpack(space_inputs("T1w")),
    output:
        image=PRE / "sub-{subject}" / "space-{space}" / "sub-{subject}_space-{space}_T1w.nii.gz",
        mask=PRE
        / "sub-{subject}"
        / "space-{space}"
        / "sub-{subject}_space-{space}_brainmask.nii.gz",
    log:
        LOGS / "space" / "sub-{subject}_space-{space}_T1w.log",
    conda:
        "../envs/ants.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=10,
    params:
        entry="workflow_scripts.preprocess:space_job",
        modality="T1w",
        grid=config["preprocess"]["grid"],
    script:
        "../workflow_scripts/entry.py"


use rule space_mri as space_pet with:
    input:
        unpack(space_inputs("pet")),
    output:
        image=PRE / "sub-{subject}" / "space-{space}" / "sub-{subject}_space-{space}_pet.nii.gz",
    log:
        LOGS / "space" / "sub-{subject}_space-{space}_pet.log",
    params:
        entry="workflow_scripts.preprocess:space_job",
        modality="pet",


use rule space_mri as space_spect with:
    input:
        unpack(space_inputs("spect")),
    output:
        image=PRE / "sub-{subject}" / "space-{space}" / "sub-{subject}_space-{space}_spect.nii.gz",
        mask=PRE
        / "sub-{subject}"
        / "space-{space}"
        / "sub-{subject}_space-{space}_spectmask.nii.gz",
    log:
        LOGS / "space" / "sub-{subject}_space-{space}_spect.log",
    params:
        entry="workflow_scripts.preprocess:space_job",
        modality="spect",


use rule space_mri as space_ictal with:
    input:
        unpack(space_inputs("ictal")),
    output:
        image=PRE / "sub-{subject}" / "space-{space}" / "sub-{subject}_space-{space}_ictal.nii.gz",
    log:
        LOGS / "space" / "sub-{subject}_space-{space}_ictal.log",
    wildcard_constraints:
        space="native",
    params:
        entry="workflow_scripts.preprocess:space_job",
        modality="ictal",


rule preprocess_qc:
    input:
        unpack(qc_inputs),
    output:
        report(
            OUT / "qc" / "preprocess" / "sub-{subject}_space-{space}_qc.png",
            caption="report/preprocess_qc.rst",
            category="2. Preprocessing",
            subcategory="space-{space}",
            labels={"subject": "sub-{subject}", "space": "{space}"},
        ),
    log:
        LOGS / "preprocess_qc" / "sub-{subject}_space-{space}.log",
    conda:
        "../envs/stats.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=5,
    params:
        entry="workflow_scripts.preprocess:qc_job",
    script:
        "../workflow_scripts/entry.py"
