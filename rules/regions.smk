# Regional perfusion and left-right asymmetry of synthetic vs real SPECT, with agreement
# statistics (workflow_scripts/regions/: atlas, uptake, agreement, summary; entries in jobs.py).


# Cheap aggregate jobs run where snakemake runs, not as cluster submissions.
localrules:
    regional_tables,


rule atlas:
    input:
        user_atlas_files(),
        grid_mask=L.template_mask(),
    output:
        image=L.atlas(),
        labels=L.atlas("tsv"),
        json=L.sidecar(L.atlas()),
    log:
        L.log("regions", "atlas"),
    benchmark:
        L.benchmark("regions", "atlas")
    conda:
        "../envs/stats.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=5,
    params:
        entry="workflow_scripts.regions.jobs:atlas_job",
        atlas=settings("evaluate", "atlas"),
        grid=settings("preprocess", "grid"),
    script:
        "../workflow_scripts/entry.py"


rule atlas_to_subject:
    input:
        atlas=L.atlas(),
        t1w=lambda w: space_image(w.subject, "t1w", NATIVE),
        template_xfm=lambda w: to_template_xfm(w.subject),
    output:
        image=L.atlas_native(),
        json=L.sidecar(L.atlas_native()),
    log:
        L.log("regions", "atlas_sub-{subject}"),
    benchmark:
        L.benchmark("regions", "atlas_sub-{subject}")
    conda:
        "../envs/ants.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=5,
    params:
        entry="workflow_scripts.regions.jobs:atlas_to_subject_job",
    script:
        "../workflow_scripts/entry.py"


rule regional:
    input:
        unpack(regional_inputs),
    output:
        L.regional(),
    log:
        L.log("regions", "sub-{subject}"),
    benchmark:
        L.benchmark("regions", "sub-{subject}")
    conda:
        "../envs/stats.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        entry="workflow_scripts.regions.jobs:regional_job",
        spaces=lambda w: sorted({sp for sp, _, _ in regional_conditions(w.subject)}),
        conditions=lambda w: [(sp, cond) for sp, _, cond in regional_conditions(w.subject)],
        split=lambda w: COHORT.split_of(w.subject),
        native=NATIVE,
    script:
        "../workflow_scripts/entry.py"


rule regional_tables:
    input:
        tables=lambda w: [L.regional(s) for s in regional_subjects()],
    output:
        uptake=report(
            L.tables / "regional_uptake.csv",
            caption="report/regional_tables.rst",
            category="4. Results",
            subcategory="Regional",
        ),
        agreement=report(
            L.tables / "regional_agreement.csv",
            caption="report/regional_tables.rst",
            category="4. Results",
            subcategory="Regional",
        ),
        figure=report(
            L.figures / "regional_agreement.png",
            caption="report/regional_figure.rst",
            category="4. Results",
            subcategory="Regional",
        ),
    log:
        L.log("regions", "tables"),
    benchmark:
        L.benchmark("regions", "tables")
    conda:
        "../envs/stats.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        entry="workflow_scripts.regions.jobs:regional_tables_job",
        ai_threshold=config["evaluate"]["lateralisation_ai_percent"],
    script:
        "../workflow_scripts/entry.py"
