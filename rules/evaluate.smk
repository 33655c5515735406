# Predict held-out (and predict-split) subjects, score them, and build the paper's tables and
# figures (workflow_scripts/evaluate/; the rules' entries: jobs.py).


# Cheap aggregate jobs run where snakemake runs, not as cluster submissions.
localrules:
    tables,
    seed_variance,
    figures,
    summary,
    montage,
    synthesis_figure,


rule predict:
    input:
        unpack(predict_inputs),
    output:
        volume=L.synthetic(),
        json=L.sidecar(L.synthetic()),
        sd=L.synthetic_sd(),
        sd_json=L.sidecar(L.synthetic_sd()),
        slices=L.synth_slices(),
    log:
        L.log("predict", "space-{space}_desc-{condition}_sub-{subject}"),
    benchmark:
        L.benchmark("predict", "space-{space}_desc-{condition}_sub-{subject}")
    conda:
        "../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        entry="workflow_scripts.evaluate.jobs:predict_job",
        condition=condition_of,
        sources=prediction_sources,
        reference=lambda w: str(space_image(w.subject, "t1w", w.space)),
        scaling=config["slices"]["scaling"],
        shift_px=config["synthesis"]["uncertainty_shift_px"],
    script:
        "../workflow_scripts/entry.py"


rule synth_to_scan:
    input:
        unpack(scan_inputs),
    output:
        image=L.synthetic_in_scan(),
        json=L.sidecar(L.synthetic_in_scan()),
    log:
        L.log("synth_to_scan", "sub-{subject}_space-{scan}_desc-{condition}"),
    benchmark:
        L.benchmark("synth_to_scan", "sub-{subject}_space-{scan}_desc-{condition}")
    conda:
        "../envs/ants.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=5,
    params:
        entry="workflow_scripts.preprocess.jobs:to_scan_job",
        raw=lambda w: str(COHORT.path(w.subject, SCAN_ROLE[w.scan])),
    script:
        "../workflow_scripts/entry.py"


rule score:
    input:
        unpack(score_inputs),
    output:
        slices=L.metrics(kind="slices"),
        volume=L.metrics(kind="volume"),
    log:
        L.log("score", "space-{space}_desc-{condition}_sub-{subject}"),
    benchmark:
        L.benchmark("score", "space-{space}_desc-{condition}_sub-{subject}")
    conda:
        "../envs/stats.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        entry="workflow_scripts.evaluate.jobs:score_job",
        condition=condition_of,
    script:
        "../workflow_scripts/entry.py"


rule synthesis_figure:
    input:
        unpack(synthesis_figure_inputs),
    output:
        report(
            L.synthesis_figure(),
            caption="report/synthesis.rst",
            category="4. Results",
            subcategory="Synthetic volumes",
            labels={"subject": "sub-{subject}"},
        ),
    log:
        L.log("synthesis_figure", "sub-{subject}"),
    benchmark:
        L.benchmark("synthesis_figure", "sub-{subject}")
    conda:
        "../envs/stats.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        entry="workflow_scripts.evaluate.jobs:synthesis_job",
        conditions=lambda w: [label for label, _ in figure_conditions_of(w.subject)],
        split=lambda w: COHORT.split_of(w.subject),
    script:
        "../workflow_scripts/entry.py"


rule mc_ceiling:
    input:
        unpack(ceiling_inputs),
    output:
        slices=L.ceiling_metrics(kind="slices"),
        volume=L.ceiling_metrics(kind="volume"),
    log:
        L.log("mc_ceiling", "space-{space}_sub-{subject}"),
    benchmark:
        L.benchmark("mc_ceiling", "space-{space}_sub-{subject}")
    conda:
        "../envs/ants.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        entry="workflow_scripts.evaluate.jobs:ceiling_job",
        grid=settings("preprocess", "grid"),
        spect_mask=settings("preprocess", "spect_mask"),
        draws=config["evaluate"]["ceiling_draws"],
        seed=config["evaluate"]["ceiling_seed"],
    script:
        "../workflow_scripts/entry.py"


rule baselines:
    input:
        unpack(baseline_inputs),
    output:
        L.baselines(),
    log:
        L.log("baselines", "space-{space}"),
    benchmark:
        L.benchmark("baselines", "space-{space}")
    conda:
        "../envs/stats.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=10,
    params:
        entry="workflow_scripts.evaluate.jobs:baselines_job",
        inputs=[i for i in INPUTS],
    script:
        "../workflow_scripts/entry.py"


rule tables:
    input:
        metrics=lambda w: all_metric_files("slices") + run_metric_files("slices"),
        volume=lambda w: all_metric_files("volume")
        + twin_metric_files()
        + run_metric_files("volume"),
        baselines=expand(L.baselines(), space=SPACES),
        ceiling_slices=lambda w: all_ceiling_files("slices"),
        ceiling_volume=lambda w: all_ceiling_files("volume"),
    output:
        metrics=L.tables / "metrics.csv",
        volume=report(
            L.tables / "volume_metrics.csv",
            caption="report/volume_metrics.rst",
            category="4. Results",
            subcategory="Tables",
        ),
        table4=report(
            L.tables / "table4.csv",
            caption="report/table4.rst",
            category="4. Results",
            subcategory="Tables",
        ),
        table4_md=L.tables / "table4.md",
        table4_html=report(
            L.tables / "table4.html",
            caption="report/table4.rst",
            category="4. Results",
            subcategory="Tables",
        ),
        tests=report(
            L.tables / "tests.csv",
            caption="report/tests.rst",
            category="4. Results",
            subcategory="Tables",
        ),
        baselines=report(
            L.tables / "baselines.csv",
            caption="report/baselines.rst",
            category="4. Results",
            subcategory="Tables",
        ),
        ceiling=report(
            L.tables / "ceiling.csv",
            caption="report/ceiling.rst",
            category="4. Results",
            subcategory="Tables",
        ),
    log:
        L.log("tables", "tables"),
    benchmark:
        L.benchmark("tables", "tables")
    conda:
        "../envs/stats.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        entry="workflow_scripts.evaluate.jobs:tables_job",
        alpha=config["evaluate"]["alpha"],
        spaces=config["train"]["spaces"],
        inputs=INPUTS,
        losses=LOSSES,
    script:
        "../workflow_scripts/entry.py"


rule figures:
    input:
        metrics=L.tables / "metrics.csv",
        tests=L.tables / "tests.csv",
    output:
        fig5=report(
            L.figures / "fig5_space.png",
            caption="report/fig5.rst",
            category="4. Results",
            subcategory="Figures",
        ),
        fig6=report(
            L.figures / "fig6_loss.png",
            caption="report/fig6.rst",
            category="4. Results",
            subcategory="Figures",
        ),
        fig7=report(
            L.figures / "fig7_input.png",
            caption="report/fig7.rst",
            category="4. Results",
            subcategory="Figures",
        ),
    log:
        L.log("figures", "figures"),
    benchmark:
        L.benchmark("figures", "figures")
    conda:
        "../envs/stats.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        entry="workflow_scripts.evaluate.jobs:figures_job",
        alpha=config["evaluate"]["alpha"],
    script:
        "../workflow_scripts/entry.py"


rule montage:
    input:
        unpack(montage_inputs),
    output:
        report(
            L.montage(),
            caption="report/montage.rst",
            category="4. Results",
            subcategory="Example slices",
        ),
    log:
        L.log("montage", "space-{space}_loss-{loss}"),
    benchmark:
        L.benchmark("montage", "space-{space}_loss-{loss}")
    wildcard_constraints:
        loss="|".join(LOSSES),
    conda:
        "../envs/stats.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        entry="workflow_scripts.evaluate.jobs:montage_job",
        subjects=lambda w: montage_subjects(),
        synth_patterns=lambda w: {
            i: str(L.synth_slices("{subject}", w.space, names.condition_desc(i, w.loss)))
            for i in INPUTS
        },
        title=lambda w: f"Example slices, space-{w.space}, loss {w.loss}: inputs, real and synthetic SPECT, |difference| / 2",
    script:
        "../workflow_scripts/entry.py"


rule summary:
    input:
        metrics=L.tables / "metrics.csv",
        tests=L.tables / "tests.csv",
        baselines=L.tables / "baselines.csv",
        volume=L.tables / "volume_metrics.csv",
        ceiling=L.tables / "ceiling.csv",
        seed_variance=L.seed_variance(),
    output:
        report(
            L.out / "results_summary.md",
            caption="report/summary.rst",
            category="4. Results",
            subcategory="Summary",
        ),
    log:
        L.log("summary", "summary"),
    benchmark:
        L.benchmark("summary", "summary")
    conda:
        "../envs/stats.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        entry="workflow_scripts.evaluate.jobs:summary_job",
        alpha=config["evaluate"]["alpha"],
    script:
        "../workflow_scripts/entry.py"


rule seed_variance:
    input:
        metrics=L.tables / "metrics.csv",
        volume=L.tables / "volume_metrics.csv",
    output:
        report(
            L.seed_variance(),
            caption="report/seed_variance.rst",
            category="4. Results",
            subcategory="Tables",
        ),
    log:
        L.log("seed_variance", "seed_variance"),
    benchmark:
        L.benchmark("seed_variance", "seed_variance")
    conda:
        "../envs/stats.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        entry="workflow_scripts.evaluate.jobs:seed_variance_job",
        seed=config["train"]["seed"],
    script:
        "../workflow_scripts/entry.py"
