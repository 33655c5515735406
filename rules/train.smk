# One pix2pix training job per condition: space x input x loss (workflow_scripts/train/
# reads the slice files; model/train.py trains).


rule train:
    input:
        unpack(train_inputs),
    output:
        weights=L.model_dir() / "generator.safetensors",
        checkpoint=L.model_dir() / "checkpoint.pt",
        config=L.model_dir() / "train_config.json",
        subjects=L.model_dir() / "subjects.json",
        losses=L.model_dir() / "losses.tsv",
        plot=report(
            L.model_dir() / "losses.png",
            caption="report/losses.rst",
            category="3. Training",
            labels={"space": "{space}", "condition": "{condition}"},
        ),
    log:
        L.log("train", "space-{space}_desc-{condition}"),
    benchmark:
        L.benchmark("train", "space-{space}_desc-{condition}")
    # The longest jobs, on the critical path: run them before any other job that is ready, so
    # the many short jobs fill the cores around them instead of trailing after the last one.
    priority: 10
    conda:
        "../envs/torch.yaml"
    threads: config["train"]["threads"]
    resources:
        mem_mb=config["train"]["mem_mb"],
        runtime=config["train"]["runtime_min"],
        gpu=config["train"]["gpus"],
    params:
        entry="workflow_scripts.train.jobs:train_job",
        condition=condition_of,
        settings=train_settings_of,
    script:
        "../workflow_scripts/entry.py"
