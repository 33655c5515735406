# The simulated demo cohort: one job per subject writes its BIDS images and ground truth.
# Included only when simulate.enabled is true (Snakefile): no simulator code runs on real data.


# Cheap aggregate jobs run where snakemake runs, not as cluster submissions.
localrules:
    simulate_dataset,


# The head model (tissue maps, cortex) is the same for every subject: built once per run.
rule simulate_template:
    output:
        L.simulation_template(),
    log:
        L.log("simulate", "template"),
    benchmark:
        L.benchmark("simulate", "template")
    conda:
        "../envs/stats.yaml"
    threads: 1
    resources:
        mem_mb=1500,  # measured peak 1.0 GB at 1 mm (5 s CPU)
        runtime=10,
    params:
        entry="workflow_scripts.simulate.jobs:template_job",
        voxel_scale=config["simulate"]["voxel_scale"],
    script:
        "../workflow_scripts/entry.py"


rule simulate_subject:
    input:
        template=rules.simulate_template.output[0],
    output:
        t1w=L.demo_input("t1w"),
        pet=L.demo_input("pet"),
        spect=L.demo_input("spect"),
        ictal=L.demo_input("ictal") if config["simulate"]["ictal"] else [],
        noiseless=L.simulation_noiseless(),
        truth=L.simulation_truth(),
        qc=report(
            L.qc_simulate(),
            caption="report/simulate_qc.rst",
            category="1. Input data",
            subcategory="Simulated subjects",
            labels={"subject": "sub-{subject}"},
        ),
    log:
        L.log("simulate", "sub-{subject}"),
    benchmark:
        L.benchmark("simulate", "sub-{subject}")
    conda:
        "../envs/stats.yaml"
    threads: 1
    resources:
        mem_mb=2500,  # measured peak 1.3 GB at 1 mm
        runtime=10,
    params:
        entry="workflow_scripts.simulate.jobs:simulate_job",
        bids=L.bids,
        split=lambda w: COHORT.split_of(w.subject),
        # subject k (from 1) uses seed + k, so subjects are independent
        seed=lambda w: config["simulate"]["seed"] + COHORT.subjects().index(w.subject) + 1,
        ictal=config["simulate"]["ictal"],
        voxel_scale=config["simulate"]["voxel_scale"],
        effects=settings("simulate", "effects"),
    script:
        "../workflow_scripts/entry.py"


rule simulate_dataset:
    input:
        expand(rules.simulate_subject.output.truth, subject=COHORT.subjects()),
    output:
        L.bids / "participants.tsv",
        L.bids / "dataset_description.json",
        L.bids / "participants.json",
        L.bids / "README",
        L.bids / ".bidsignore",
    log:
        L.log("simulate", "dataset"),
    benchmark:
        L.benchmark("simulate", "dataset")
    conda:
        "../envs/stats.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    params:
        entry="workflow_scripts.simulate.jobs:dataset_job",
        bids=L.bids,
        participants=[(f"sub-{s}", COHORT.split_of(s)) for s in COHORT.subjects()],
        seed=config["simulate"]["seed"],
    script:
        "../workflow_scripts/entry.py"
