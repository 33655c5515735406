# One pix2pix training job per condition: space x input x loss (model/train.py).


rule train:
    input:
        unpack(train_inputs),
    output:
        weights=MODELS / CONDITION / "generator.safetensors",
        checkpoint=MODELS / CONDITION / "checkpoint.pt",
        config=MODELS / CONDITION / "train_config.json",
        subjects=MODELS / CONDITION / "subjects.json",
        losses=MODELS / CONDITION / "losses.tsv",
        plot=report(
            MODELS / CONDITION / "losses.png",
            caption="report/losses.rst",
            category="3. Training",
            labels={"space": "{space}", "input": "{input}", "loss": "{loss}"},
        ),
    log:
        LOGS / "train" / "space-{space}_input-{input}_loss-{loss}.log",
    conda:
        "../envs/torch.yaml"
    threads: config["train"]["threads"]
    resources:
        mem_mb=config["train"]["mem_mb"],
        runtime=config["train"]["runtime_min"],
        gpu=config["train"]["gpus"],
    params:
        entry="model.train:train_job",
        settings=train_settings(),
    script:
        "../workflow_scripts/entry.py"
