# The study every stage shares: the cohort and its conditions, the layout (every path comes
# from workflow_scripts/layout.py), the wildcards, and the settings each job gets as params.

import json
from pathlib import Path

from workflow_scripts import layout as names
from workflow_scripts.inputs.cohort import build_cohort
from workflow_scripts.inputs.check import usable
from workflow_scripts.layout import (
    INPUT_ROLES,
    ROLE,
    SLICE_SOURCES,
    SLICE_TARGET,
    SPACE_LABEL,
    SPACE_NAME,
    Layout,
)

COHORT = build_cohort(config)
L = Layout(Path(config["out_dir"]), Path(config["bids_dir"]))
EVAL_SPLITS = config["evaluate"]["splits"]
SPACES = [SPACE_LABEL[s] for s in config["train"]["spaces"]]  # BIDS space labels
NATIVE = SPACE_LABEL["native"]
TEMPLATE = SPACE_LABEL["template"]
INPUTS = config["train"]["inputs"]
LOSSES = config["train"]["losses"]
CONDITIONS = [names.condition_desc(i, lo) for i in INPUTS for lo in LOSSES]
# 2D twins (context 0) of native-space conditions, trained on the same 2.5D slice files: they show
# 2D against 2.5D synthesis in the synthesis figures and the volume metrics (not in Table 4 or
# its tests, whose conditions share one context).
TWINS_2D = (
    [names.twin_desc(pair) for pair in config["train"]["compare_2d"]]
    if config["slices"]["context"] > 0 and NATIVE in SPACES
    else []
)


wildcard_constraints:
    subject=names.WILDCARDS["subject"],
    modality=names.WILDCARDS["modality"],
    prefix=names.WILDCARDS["prefix"],
    suffix=names.WILDCARDS["suffix"],
    space=names.WILDCARDS["space"],
    condition=names.WILDCARDS["condition"],
    scan=names.WILDCARDS["scan"],


# The modality names the preprocessing jobs use for each role.
MOD_OF_ROLE = {"t1w": "T1w", "pet": "pet", "spect": "spect", "ictal": "ictal"}


# Snakemake reruns a job when its params change, not when config does: every rule passes the
# settings its job uses as params. Training gets only those that change the weights, so moving a
# run to a GPU, or changing checkpointing, validation or the condition lists, does not retrain.
TRAIN_RUN_KEYS = (
    *("spaces", "inputs", "losses", "device", "compile", "checkpoint_every", "validate_every"),
    *("checkpoint_minutes", "compare_2d"),
    *("seeds",),  # a run's seed reaches it as train_settings_of's `seed` (train.seed + k)
    *("threads", "mem_mb", "runtime_min", "gpus"),
)


def sorted_dict(value):
    """A settings dict with its keys sorted, at every level."""
    if isinstance(value, dict):
        return {k: sorted_dict(value[k]) for k in sorted(value)}
    return value


def settings(*keys):
    """A config section as a job's params, keys sorted: Snakemake compares params by their text,
    so the same settings in another order (a --config override, a config file) rerun nothing."""
    node = config
    for key in keys:
        node = node[key]
    return sorted_dict(node)


def skullstrip_settings(role):
    """The skull-strip settings of one role (t1w | pet): each gets its own brain fraction only, so
    changing one modality's fraction leaves the other's skull strips alone."""
    cfg = settings("preprocess", "skullstrip")
    return {
        "backend": cfg["backend"],
        "frac": cfg[f"frac_{'mri' if role == 't1w' else 'pet'}"],
        "robust": cfg["robust"],
    }


# Each slice job gets the slice settings it uses: the inputs' scaling and 2.5D context reach the
# MRI and PET jobs only, the target's scaling the SPECT job only (so neither reruns the other).
SLICE_KEYS = {
    "input": ("n_slices", "size", "min_brain_fraction", "dtype", "scaling", "context"),
    "target": ("n_slices", "size", "min_brain_fraction", "dtype", "target_scaling"),
}


def slice_settings(kind):
    return sorted_dict({k: config["slices"][k] for k in SLICE_KEYS[kind]})


def train_settings():
    return sorted_dict({k: v for k, v in settings("train").items() if k not in TRAIN_RUN_KEYS})
