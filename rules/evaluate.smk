# Predict held-out (and predict-split) subjects, score them, and build the paper's tables and
# figures (workflow_scripts/predict.py, baselines.py, evaluate.py).


rule predict:
    input:
        weights=MODELS / CONDITION / "generator.safetensors",
        subjects=MODELS / CONDITION / "subjects.json",
        slices=SLICES / "space-{space}" / "sub-{subject}_slices.npz",
    output:
        volume=PRED / CONDITION / "sub-{subject}_synthspect.nii.gz",
        slices=PRED / CONDITION / "sub-{subject}_synthslices.npz",
    log:
        LOGS / "predict" / "space-{space}_input-{input}_loss-{loss}_sub-{subject}.log",
    conda:
        "../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        entry="workflow_scripts.predict:predict_job",
    script:
        "../workflow_scripts/entry.py"


rule score:
    input:
        synth=PRED / CONDITION / "sub-{subject}_synthslices.npz",
        slices=SLICES / "space-{space}" / "sub-{subject}_slices.npz",
    output:
        METRICS_DIR / CONDITION / "sub-{subject}_metrics.tsv",
    log:
        LOGS / "score" / "space-{space}_input-{input}_loss-{loss}_sub-{subject}.log",
    conda:
        "../envs/stats.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        entry="workflow_scripts.predict:score_job",
    script:
        "../workflow_scripts/entry.py"


rule noiseless_spect:
    input:
        image=lambda w: BIDS
        / "derivatives"
        / "simulation"
        / f"sub-{w.subject}"
        / f"sub-{w.subject}_acq-interictal_desc-noiseless_spect.nii.gz",
        mri_mask=PRE / "sub-{subject}" / "anat" / "sub-{subject}_T1w_brainmask.nii.gz",
        xfm=PRE / "sub-{subject}" / "xfm" / "sub-{subject}_from-spect_to-T1w_rigid.mat",
        template_xfm=PRE / "sub-{subject}" / "xfm" / "sub-{subject}_from-T1w_to-MNI152_affine.mat",
    output:
        PRE
        / "sub-{subject}"
        / "space-{space}"
        / "sub-{subject}_space-{space}_desc-noiseless_spect.nii.gz",
    log:
        LOGS / "noiseless_spect" / "sub-{subject}_space-{space}.log",
    conda:
        "../envs/ants.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=5,
    params:
        entry="workflow_scripts.preprocess:noiseless_job",
        grid=config["preprocess"]["grid"],
    script:
        "../workflow_scripts/entry.py"


rule baselines:
    input:
        unpack(baseline_inputs),
    output:
        METRICS_DIR / "baselines" / "space-{space}.tsv",
    log:
        LOGS / "baselines" / "space-{space}.log",
    conda:
        "../envs/stats.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=10,
    params:
        entry="workflow_scripts.baselines:baselines_job",
        inputs=[i for i in INPUTS],
        noiseless_subjects=lambda w: noiseless_subjects(),
    script:
        "../workflow_scripts/entry.py"


rule tables:
    input:
        metrics=lambda w: all_metric_files(),
        baselines=expand(METRICS_DIR / "baselines" / "space-{space}.tsv", space=SPACES),
    output:
        metrics=TABLES / "metrics.csv",
        table4=report(
            TABLES / "table4.csv",
            caption="report/table4.rst",
            category="4. Results",
            subcategory="Tables",
        ),
        table4_md=TABLES / "table4.md",
        table4_html=report(
            TABLES / "table4.html",
            caption="report/table4.rst",
            category="4. Results",
            subcategory="Tables",
        ),
        tests=report(
            TABLES / "tests.csv",
            caption="report/tests.rst",
            category="4. Results",
            subcategory="Tables",
        ),
        baselines=report(
            TABLES / "baselines.csv",
            caption="report/baselines.rst",
            category="4. Results",
            subcategory="Tables",
        ),
    log:
        LOGS / "tables" / "tables.log",
    conda:
        "../envs/stats.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        entry="workflow_scripts.evaluate:tables_job",
        alpha=config["evaluate"]["alpha"],
        spaces=SPACES,
        inputs=INPUTS,
        losses=LOSSES,
    script:
        "../workflow_scripts/entry.py"


rule figures:
    input:
        metrics=TABLES / "metrics.csv",
        tests=TABLES / "tests.csv",
    output:
        fig5=report(
            FIGS / "fig5_space.png",
            caption="report/fig5.rst",
            category="4. Results",
            subcategory="Figures",
        ),
        fig6=report(
            FIGS / "fig6_loss.png",
            caption="report/fig6.rst",
            category="4. Results",
            subcategory="Figures",
        ),
        fig7=report(
            FIGS / "fig7_input.png",
            caption="report/fig7.rst",
            category="4. Results",
            subcategory="Figures",
        ),
    log:
        LOGS / "figures" / "figures.log",
    conda:
        "../envs/stats.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        entry="workflow_scripts.evaluate:figures_job",
        alpha=config["evaluate"]["alpha"],
    script:
        "../workflow_scripts/entry.py"


rule montage:
    input:
        unpack(montage_inputs),
    output:
        report(
            FIGS / "montage_space-{space}_loss-{loss}.png",
            caption="report/montage.rst",
            category="4. Results",
            subcategory="Example slices",
        ),
    log:
        LOGS / "montage" / "space-{space}_loss-{loss}.log",
    conda:
        "../envs/stats.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        entry="workflow_scripts.evaluate:montage_job",
        subjects=lambda w: montage_subjects(),
        inputs=[i for i in INPUTS],
        synth_pattern=lambda w: str(
            PRED
            / f"space-{w.space}"
            / "input-{input}"
            / f"loss-{w.loss}"
            / "sub-{subject}_synthslices.npz"
        ),
        title=lambda w: f"Example slices, space-{w.space}, loss {w.loss}: inputs, real and synthetic SPECT, |difference| / 2",
    script:
        "../workflow_scripts/entry.py"


rule summary:
    input:
        metrics=TABLES / "metrics.csv",
        tests=TABLES / "tests.csv",
        baselines=TABLES / "baselines.csv",
    output:
        report(
            OUT / "results_summary.md",
            caption="report/summary.rst",
            category="4. Results",
            subcategory="Summary",
        ),
    log:
        LOGS / "summary" / "summary.log",
    conda:
        "../envs/stats.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        entry="workflow_scripts.evaluate:summary_job",
        alpha=config["evaluate"]["alpha"],
    script:
        "../workflow_scripts/entry.py"
