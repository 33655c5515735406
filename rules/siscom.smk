# SISCOM with five kinds of interictal image (workflow_scripts/siscom/): real, synthetic per
# condition, flat (training cohort's mean SPECT), PET smoothed + linear map, raw PET.


# Cheap aggregate jobs run where snakemake runs, not as cluster submissions.
localrules:
    siscom_summary,


rule siscom_cohort:
    input:
        unpack(siscom_cohort_inputs),
    output:
        flat=L.siscom_cohort_flat(),
        flat_json=L.sidecar(L.siscom_cohort_flat()),
        pet_map=L.siscom_pet_map(),
    log:
        L.log("siscom", "cohort"),
    benchmark:
        L.benchmark("siscom", "cohort")
    conda:
        "../envs/stats.yaml"
    threads: 1
    resources:
        mem_mb=3000,
        runtime=10,
    params:
        entry="workflow_scripts.siscom.jobs:cohort_job",
        settings=siscom_settings("pet_fwhm_mm"),
        flat_subjects=siscom_flat_subjects,
        flat_splits=lambda w: [COHORT.split_of(s) for s in siscom_flat_subjects()],
        pet_subjects=siscom_pet_subjects,
        pet_splits=lambda w: [COHORT.split_of(s) for s in siscom_pet_subjects()],
    script:
        "../workflow_scripts/entry.py"


rule siscom_warp:
    input:
        unpack(siscom_warp_inputs),
    output:
        flat=L.siscom_flat(),
        ictalmask=L.siscom_ictal_mask(),
        real=L.siscom_real(),
    log:
        L.log("siscom", "sub-{subject}_warp"),
    benchmark:
        L.benchmark("siscom", "sub-{subject}_warp")
    conda:
        "../envs/ants.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        entry="workflow_scripts.siscom.jobs:warp_job",
    script:
        "../workflow_scripts/entry.py"


rule siscom:
    input:
        unpack(siscom_inputs),
    output:
        table=L.siscom_subject(ext="tsv"),
        png=report(
            L.siscom_subject(ext="png"),
            caption="report/siscom_subject.rst",
            category="5. SISCOM",
            labels={"subject": "sub-{subject}"},
        ),
    log:
        L.log("siscom", "sub-{subject}"),
    benchmark:
        L.benchmark("siscom", "sub-{subject}")
    conda:
        "../envs/stats.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        entry="workflow_scripts.siscom.jobs:siscom_job",
        settings=siscom_settings("z_threshold", "min_cluster_mm3"),
        conditions=lambda w: [label for label, _ in siscom_conditions(w.subject)],
        split=lambda w: COHORT.split_of(w.subject),
    script:
        "../workflow_scripts/entry.py"


rule siscom_summary:
    input:
        lambda w: [L.siscom_subject(s, "tsv") for s in siscom_subjects()],
    output:
        table=L.siscom / "siscom_localisation.csv",
        summary=report(
            L.siscom / "siscom_summary.csv",
            caption="report/siscom_summary.rst",
            category="5. SISCOM",
        ),
        png=report(
            L.siscom / "siscom_localisation.png",
            caption="report/siscom_summary.rst",
            category="5. SISCOM",
        ),
    log:
        L.log("siscom", "summary"),
    benchmark:
        L.benchmark("siscom", "summary")
    conda:
        "../envs/stats.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        entry="workflow_scripts.siscom.jobs:summary_job",
        settings=siscom_settings("bootstrap_resamples", "bootstrap_seed", "confidence"),
    script:
        "../workflow_scripts/entry.py"
