# spectsynth: synthesise interictal SPECT from MRI and/or PET with pix2pix, and score it.
# Stages live in rules/*.smk; the logic behind each rule is in workflow_scripts/ and model/.

from snakemake.utils import min_version, validate

min_version("9.0")


configfile: "config.yaml"


validate(config, "workflow_scripts/schemas/config.schema.yaml")


include: "rules/common.smk"
include: "rules/simulate.smk"


rule all:
    default_target: True
    input:
        simulate_targets(),
