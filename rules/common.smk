# Shared by every stage: the cohort, path helpers and wildcard constraints.

import json
from pathlib import Path

from workflow_scripts.cohort import INPUT_MODALITIES as INPUT_KEYS
from workflow_scripts.cohort import MODALITIES, build_cohort
from workflow_scripts.input_check import usable

COHORT = build_cohort(config)
OUT = Path(config["out_dir"])
BIDS = Path(config["bids_dir"])
LOGS = OUT / "logs"
PRE = OUT / "preprocessed"
SLICES = OUT / "slices"
MODELS = OUT / "models"
CONDITION = "space-{space}/input-{input}/loss-{loss}"
PRED = OUT / "predictions"
METRICS_DIR = OUT / "metrics"
TABLES = OUT / "tables"
FIGS = OUT / "figures"
EVAL_SPLITS = config["evaluate"]["splits"]
SPACES = config["train"]["spaces"]
INPUTS = config["train"]["inputs"]
LOSSES = config["train"]["losses"]


wildcard_constraints:
    subject="[A-Za-z0-9]+",
    space="native|template",
    input="mri|pet|mri_pet",
    loss="l1_bce|l1_bce_ssim",


# preprocessing modality names -> cohort input keys
MOD_KEY = {"T1w": "t1w", "pet": "pet", "spect": "spect", "ictal": "ictal"}


# Snakemake reruns a job when its params change, not when config does: every rule passes the
# settings its job uses as params. Training gets only those that change the weights, so moving a
# run to a GPU, or changing checkpointing, validation or the condition lists, does not retrain.
TRAIN_RUN_KEYS = (
    *("spaces", "inputs", "losses", "device", "compile", "checkpoint_every", "validate_every"),
    *("threads", "mem_mb", "runtime_min", "gpus"),
)


def train_settings():
    return {k: v for k, v in config["train"].items() if k not in TRAIN_RUN_KEYS}


def bids(subject, modality):
    """Path of one raw input image (modality: t1w, pet, spect, ictal)."""
    return str(COHORT.path(subject, modality))


# --- input gate: a checkpoint per subject records which images are usable ---------------------
# Group rules (training, tables) take only images that passed, so one bad file excludes that
# subject's image (named in tables/excluded_subjects.tsv) instead of stopping the study.


def input_report(subject):
    """The input gate's verdict on a subject's images (all checks run first, in parallel)."""
    return input_gate()[subject]


_GATE = {}


def input_gate():
    path = Path(checkpoints.input_gate.get().output.gate)
    if _GATE.get("mtime") != path.stat().st_mtime:
        _GATE.update(mtime=path.stat().st_mtime, reports=json.loads(path.read_text()))
    return _GATE["reports"]


def has(subject, key):
    """The subject has this input (t1w, pet, spect, ictal) and it passed the input check, and so
    did its T1w: both spaces are built around the MRI, so without it nothing else is usable."""
    return COHORT.has(subject, key) and usable(input_report(subject), list({key, "t1w"}))


def subjects_for(model_input, splits, need_spect=True):
    """Subjects of these splits whose images for a model input (and SPECT) passed the check."""
    keys = list(INPUT_KEYS[model_input]) + (["spect"] if need_spect else [])
    return [
        s
        for s in COHORT.subjects_for_input(model_input, splits, need_spect)
        if all(has(s, k) for k in keys)
    ]


def mri_subjects():
    """Both spaces are built around the MRI: subjects whose T1w passed the check."""
    return [s for s in COHORT.subjects() if has(s, "t1w")]


def all_targets(wildcards):
    """Targets of the default run, evaluated lazily (after the input checks have run)."""
    return [
        *simulate_targets(),
        *preprocess_targets(),
        *slices_targets(),
        *train_targets(),
        *evaluate_targets(),
        *siscom_targets(),
    ]


def subject_inputs(w):
    return {k: bids(w.subject, k) for k in MODALITIES if COHORT.has(w.subject, k)}


# --- final targets of each stage (rule all) ---


def simulate_targets():
    if not config["simulate"]["enabled"]:
        return []
    qc = expand(OUT / "qc" / "simulate" / "sub-{subject}_simulate.png", subject=COHORT.subjects())
    return [BIDS / "participants.tsv", *qc]


def preprocess_targets():
    """Every subject's volumes in every space, for the modalities it has, and QC images."""
    files = []
    for s in mri_subjects():
        for space in SPACES:
            mods = ["T1w", "brainmask"]
            mods += ["pet"] if has(s, "pet") else []
            mods += ["spect", "spectmask"] if has(s, "spect") else []
            mods += ["ictal"] if space == "native" and has(s, "ictal") else []
            files += [space_file(s, space, m) for m in mods]
            files.append(OUT / "qc" / "preprocess" / f"sub-{s}_space-{space}_qc.png")
    return files


# --- preprocessing input functions ---


def space_file(subject, space, mod):
    return PRE / f"sub-{subject}" / f"space-{space}" / f"sub-{subject}_space-{space}_{mod}.nii.gz"


def space_inputs(mod):
    """Inputs of resampling `mod` into a space: image, its mask, and the transforms it needs."""

    def inputs(w):
        anat = PRE / f"sub-{w.subject}" / "anat"
        xfm = PRE / f"sub-{w.subject}" / "xfm"
        d = {
            "image": anat
            / f"sub-{w.subject}_{mod}_{'reoriented' if mod == 'ictal' else 'brain'}.nii.gz",
            "mri_mask": anat / f"sub-{w.subject}_T1w_brainmask.nii.gz",
        }
        if mod in ("T1w", "spect"):
            d["mask"] = anat / f"sub-{w.subject}_{mod}_brainmask.nii.gz"
        if mod != "T1w":
            d["xfm"] = xfm / f"sub-{w.subject}_from-{mod}_to-T1w_rigid.mat"
        if w.space == "template":
            d["template_xfm"] = xfm / f"sub-{w.subject}_from-T1w_to-MNI152_affine.mat"
        return d

    return inputs


def qc_inputs(w):
    d = {"mri": space_file(w.subject, w.space, "T1w")}
    for mod in ("pet", "spect"):
        if has(w.subject, mod):
            d[mod] = space_file(w.subject, w.space, mod)
    return d


# --- slices and training ---

SLICE_SOURCES = {"mri": "T1w", "pet": "pet", "spect": "spect"}


def slice_file(subject, space):
    return SLICES / f"space-{space}" / f"sub-{subject}_slices.npz"


def slice_inputs(w):
    d = {"brainmask": space_file(w.subject, w.space, "brainmask")}
    for name, mod in SLICE_SOURCES.items():
        if has(w.subject, MOD_KEY[mod]):
            d[name] = space_file(w.subject, w.space, mod)
    return d


def slices_targets():
    return [slice_file(s, space) for s in mri_subjects() for space in SPACES]


def train_inputs(w):
    d = {"train": [slice_file(s, w.space) for s in subjects_for(w.input, "train")]}
    if config["train"]["validate_every"]:
        val = subjects_for(w.input, "validation")
        d["validation"] = [slice_file(s, w.space) for s in val]
    return d


def model_dir(space, model_input, loss):
    return MODELS / f"space-{space}" / f"input-{model_input}" / f"loss-{loss}"


def train_targets():
    return [
        model_dir(space, i, loss) / "generator.safetensors"
        for space in SPACES
        for i in INPUTS
        for loss in LOSSES
    ]


# --- evaluation ---


def conditions():
    return [(s, i, lo) for s in SPACES for i in INPUTS for lo in LOSSES]


def all_metric_files():
    return [
        METRICS_DIR / f"space-{s}" / f"input-{i}" / f"loss-{lo}" / f"sub-{subj}_metrics.tsv"
        for s, i, lo in conditions()
        for subj in subjects_for(i, EVAL_SPLITS)
    ]


def prediction_targets():
    """Synthetic SPECT volumes of every scored and predict-split subject, per condition."""
    out = []
    for s, i, lo in conditions():
        subjects = subjects_for(i, EVAL_SPLITS)
        subjects += subjects_for(i, "predict", need_spect=False)
        out += [
            PRED / f"space-{s}" / f"input-{i}" / f"loss-{lo}" / f"sub-{x}_synthspect.nii.gz"
            for x in subjects
        ]
    return out


def noiseless_subjects():
    if not config["simulate"]["enabled"]:
        return []
    return [s for s in COHORT.subjects(EVAL_SPLITS) if has(s, "spect")]


def baseline_inputs(w):
    d = {f"train_{i}": [slice_file(s, w.space) for s in subjects_for(i, "train")] for i in INPUTS}
    d["eval"] = [slice_file(s, w.space) for s in COHORT.subjects(EVAL_SPLITS) if has(s, "spect")]
    if noiseless_subjects():
        d["noiseless"] = [
            PRE
            / f"sub-{s}"
            / f"space-{w.space}"
            / f"sub-{s}_space-{w.space}_desc-noiseless_spect.nii.gz"
            for s in noiseless_subjects()
        ]
        d["spectmask"] = [space_file(s, w.space, "spectmask") for s in noiseless_subjects()]
    return d


def montage_subjects():
    n = config["evaluate"]["montage_subjects"]
    picks = []
    for split in EVAL_SPLITS:
        picks += [s for s in COHORT.subjects(split) if has(s, "spect")][:n]
    return picks


def montage_inputs(w):
    d = {"slices": [slice_file(s, w.space) for s in montage_subjects()]}
    d["synth"] = [
        PRED / f"space-{w.space}" / f"input-{i}" / f"loss-{w.loss}" / f"sub-{s}_synthslices.npz"
        for s in montage_subjects()
        for i in INPUTS
        if s in subjects_for(i, EVAL_SPLITS)
    ]
    return d


def evaluate_targets():
    figs = [FIGS / f"fig{n}.png" for n in ("5_space", "6_loss", "7_input")]
    montages = [FIGS / f"montage_space-{s}_loss-{lo}.png" for s in SPACES for lo in LOSSES]
    tables = [
        TABLES / f for f in ("metrics.csv", "table4.csv", "table4.md", "tests.csv", "baselines.csv")
    ]
    return [*tables, *figs, *montages, OUT / "results_summary.md", *prediction_targets()]


# --- SISCOM ---


def siscom_conditions(subject):
    """(label, synthetic interictal volume) of the native-space conditions scoring this subject."""
    return [
        (
            f"{i}/{lo}",
            PRED
            / "space-native"
            / f"input-{i}"
            / f"loss-{lo}"
            / f"sub-{subject}_synthspect.nii.gz",
        )
        for i in INPUTS
        for lo in LOSSES
        if "native" in SPACES and subject in subjects_for(i, EVAL_SPLITS)
    ]


def siscom_subjects():
    if not config["siscom"]["enabled"] or "native" not in SPACES:
        return []
    return [s for s in COHORT.subjects(EVAL_SPLITS) if has(s, "ictal") and has(s, "spect")]


def siscom_inputs(w):
    s = w.subject
    d = {
        "ictal": space_file(s, "native", "ictal"),
        "brainmask": space_file(s, "native", "brainmask"),
        "spectmask": space_file(s, "native", "spectmask"),
        "t1w": space_file(s, "native", "T1w"),
        "spect": space_file(s, "native", "spect"),
        "slices": slice_file(s, "native"),
        "synth": [path for _, path in siscom_conditions(s)],
    }
    if has(s, "pet"):
        d["pet"] = space_file(s, "native", "pet")
    if config["simulate"]["enabled"]:
        d["truth"] = (
            BIDS / "derivatives" / "simulation" / f"sub-{s}" / f"sub-{s}_desc-truth_transforms.json"
        )
    return d


def siscom_targets():
    if not siscom_subjects():
        return []
    group = [
        OUT / "siscom" / f
        for f in ("siscom_localisation.csv", "siscom_summary.csv", "siscom_localisation.png")
    ]
    return group + [OUT / "siscom" / f"sub-{s}" / f"sub-{s}_siscom.png" for s in siscom_subjects()]
