# spectsynth: synthesise interictal SPECT from MRI and/or PET with pix2pix, and score it.
# Stages live in rules/*.smk; the logic behind each rule is in workflow_scripts/ and model/.

import sys

from snakemake.utils import min_version

sys.path.insert(0, workflow.basedir)  # the workflow's own packages, also without `pip install`

from workflow_scripts import scheduler_timers, warm_start
from workflow_scripts.config_types import coerce_to_schema, load_schema, validate_config

min_version("9.0")
scheduler_timers.install()  # one pending re-evaluation timer, not one per finished job


configfile: f"{workflow.basedir}/config.yaml"


# --config values nested in dicts arrive as strings: give them the schema's types, then validate.
CONFIG_SCHEMA = "workflow_scripts/schemas/config.schema.yaml"
config.update(coerce_to_schema(config, load_schema(f"{workflow.basedir}/{CONFIG_SCHEMA}")))


validate_config(config, f"{workflow.basedir}/{CONFIG_SCHEMA}")


# The report's landing page: the question, where this run's answer is, which numbers to trust.
report: "rules/report/workflow.rst"


include: "rules/common/study.smk"
include: "rules/common/paths.smk"
include: "rules/common/gate.smk"
include: "rules/common/preprocess.smk"
include: "rules/common/slices.smk"
include: "rules/common/train.smk"
include: "rules/common/evaluate.smk"
include: "rules/common/regions.smk"
include: "rules/common/siscom.smk"


if config["simulate"]["enabled"]:

    include: "rules/simulate.smk"


include: "rules/preprocess.smk"
include: "rules/slices.smk"
include: "rules/train.smk"
include: "rules/evaluate.smk"
include: "rules/regions.smk"
include: "rules/siscom.smk"
include: "rules/benchmarks.smk"


# A local run's jobs start warm, forked from one process that holds the heavy imports.
onstart:
    warm_start.start_for(workflow, config["warm_start"])


onsuccess:
    warm_start.stop_all()


onerror:
    warm_start.stop_all()


rule all:
    default_target: True
    input:
        all_targets,
        L.job_benchmarks(),  # runs after every other job: it reads their benchmark files
