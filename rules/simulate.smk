# The simulated demo cohort: one job per subject writes its BIDS images and ground truth.


rule simulate_subject:
    output:
        t1w=BIDS / "sub-{subject}" / "anat" / "sub-{subject}_T1w.nii.gz",
        pet=BIDS / "sub-{subject}" / "pet" / "sub-{subject}_trc-FDG_pet.nii.gz",
        spect=BIDS / "sub-{subject}" / "spect" / "sub-{subject}_acq-interictal_spect.nii.gz",
        ictal=(
            BIDS / "sub-{subject}" / "spect" / "sub-{subject}_acq-ictal_spect.nii.gz"
            if config["simulate"]["ictal"]
            else []
        ),
        noiseless=BIDS
        / "derivatives"
        / "simulation"
        / "sub-{subject}"
        / "sub-{subject}_acq-interictal_desc-noiseless_spect.nii.gz",
        truth=BIDS
        / "derivatives"
        / "simulation"
        / "sub-{subject}"
        / "sub-{subject}_desc-truth_transforms.json",
        qc=report(
            OUT / "qc" / "simulate" / "sub-{subject}_simulate.png",
            caption="report/simulate_qc.rst",
            category="1. Input data",
            subcategory="Simulated subjects",
            labels={"subject": "sub-{subject}"},
        ),
    log:
        LOGS / "simulate" / "sub-{subject}.log",
    conda:
        "../envs/stats.yaml"
    threads: 1
    resources:
        mem_mb=2500,  # measured peak 1.3 GB at 1 mm
        runtime=10,
    params:
        entry="workflow_scripts.simulate.subject:simulate_job",
        bids=BIDS,
        split=lambda w: COHORT.split_of(w.subject),
        seed=lambda w: config["simulate"]["seed"] + int(w.subject),
        ictal=config["simulate"]["ictal"],
        voxel_scale=config["simulate"]["voxel_scale"],
    script:
        "../workflow_scripts/entry.py"


rule simulate_dataset:
    input:
        expand(rules.simulate_subject.output.truth, subject=COHORT.subjects()),
    output:
        BIDS / "participants.tsv",
        BIDS / "dataset_description.json",
    log:
        LOGS / "simulate" / "dataset.log",
    conda:
        "../envs/stats.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    params:
        entry="workflow_scripts.simulate.subject:dataset_job",
        bids=BIDS,
        participants=[(f"sub-{s}", COHORT.split_of(s)) for s in COHORT.subjects()],
        seed=config["simulate"]["seed"],
    script:
        "../workflow_scripts/entry.py"
