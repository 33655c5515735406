# SISCOM with real, synthetic and PET "interictal" images (workflow_scripts/siscom.py).


# Cheap aggregate jobs run where snakemake runs, not as cluster submissions.
localrules:
    siscom_summary,


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
        entry="workflow_scripts.siscom:siscom_job",
        settings=settings("siscom"),
        conditions=lambda w: [label for label, _ in siscom_conditions(w.subject)],
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
        entry="workflow_scripts.siscom:summary_job",
    script:
        "../workflow_scripts/entry.py"
