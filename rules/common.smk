# Shared by every stage: the cohort, path helpers and wildcard constraints.

from pathlib import Path

from workflow_scripts.cohort import build_cohort

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


def bids(subject, modality):
    """Path of one raw input image (modality: t1w, pet, spect, ictal)."""
    return str(COHORT.path(subject, modality))


# --- final targets of each stage (rule all) ---


def simulate_targets():
    if not config["simulate"]["enabled"]:
        return []
    qc = expand(OUT / "qc" / "simulate" / "sub-{subject}_simulate.png", subject=COHORT.subjects())
    return [BIDS / "participants.tsv", *qc]


def preprocess_targets():
    """Every subject's volumes in every space, for the modalities it has, and QC images."""
    files = []
    for s in COHORT.subjects():
        for space in SPACES:
            mods = ["T1w", "brainmask"]
            mods += ["pet"] if COHORT.has(s, "pet") else []
            mods += ["spect", "spectmask"] if COHORT.has(s, "spect") else []
            mods += ["ictal"] if space == "native" and COHORT.has(s, "ictal") else []
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
        if COHORT.has(w.subject, mod):
            d[mod] = space_file(w.subject, w.space, mod)
    return d


# --- slices and training ---

SLICE_SOURCES = {"mri": "T1w", "pet": "pet", "spect": "spect"}


def slice_file(subject, space):
    return SLICES / f"space-{space}" / f"sub-{subject}_slices.npz"


def slice_inputs(w):
    d = {"brainmask": space_file(w.subject, w.space, "brainmask")}
    for name, mod in SLICE_SOURCES.items():
        if COHORT.has(w.subject, MOD_KEY[mod]):
            d[name] = space_file(w.subject, w.space, mod)
    return d


def slices_targets():
    return [slice_file(s, space) for s in COHORT.subjects() for space in SPACES]


def train_inputs(w):
    d = {"train": [slice_file(s, w.space) for s in COHORT.subjects_for_input(w.input, "train")]}
    if config["train"]["validate_every"]:
        val = COHORT.subjects_for_input(w.input, "validation")
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
        for subj in COHORT.subjects_for_input(i, EVAL_SPLITS)
    ]


def prediction_targets():
    """Synthetic SPECT volumes of every scored and predict-split subject, per condition."""
    out = []
    for s, i, lo in conditions():
        subjects = COHORT.subjects_for_input(i, EVAL_SPLITS)
        subjects += COHORT.subjects_for_input(i, "predict", need_spect=False)
        out += [
            PRED / f"space-{s}" / f"input-{i}" / f"loss-{lo}" / f"sub-{x}_synthspect.nii.gz"
            for x in subjects
        ]
    return out


def noiseless_subjects():
    if not config["simulate"]["enabled"]:
        return []
    return [s for s in COHORT.subjects(EVAL_SPLITS) if COHORT.has(s, "spect")]


def baseline_inputs(w):
    d = {
        f"train_{i}": [slice_file(s, w.space) for s in COHORT.subjects_for_input(i, "train")]
        for i in INPUTS
    }
    d["eval"] = [
        slice_file(s, w.space) for s in COHORT.subjects(EVAL_SPLITS) if COHORT.has(s, "spect")
    ]
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
        picks += [s for s in COHORT.subjects(split) if COHORT.has(s, "spect")][:n]
    return picks


def montage_inputs(w):
    d = {"slices": [slice_file(s, w.space) for s in montage_subjects()]}
    d["synth"] = [
        PRED / f"space-{w.space}" / f"input-{i}" / f"loss-{w.loss}" / f"sub-{s}_synthslices.npz"
        for s in montage_subjects()
        for i in INPUTS
        if s in COHORT.subjects_for_input(i, EVAL_SPLITS)
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
        if "native" in SPACES and subject in COHORT.subjects_for_input(i, EVAL_SPLITS)
    ]


def siscom_subjects():
    if not config["siscom"]["enabled"] or "native" not in SPACES:
        return []
    return [
        s for s in COHORT.subjects(EVAL_SPLITS) if COHORT.has(s, "ictal") and COHORT.has(s, "spect")
    ]


def siscom_inputs(w):
    s = w.subject
    d = {
        "ictal": space_file(s, "native", "ictal"),
        "brainmask": space_file(s, "native", "brainmask"),
        "t1w": space_file(s, "native", "T1w"),
        "spect": space_file(s, "native", "spect"),
        "slices": slice_file(s, "native"),
        "synth": [path for _, path in siscom_conditions(s)],
    }
    if COHORT.has(s, "pet"):
        d["pet"] = space_file(s, "native", "pet")
    if config["simulate"]["enabled"]:
        d["truth"] = (
            BIDS / "derivatives" / "simulation" / f"sub-{s}" / f"sub-{s}_desc-truth_transforms.json"
        )
    return d


def siscom_targets():
    if not siscom_subjects():
        return []
    return [
        OUT / "siscom" / f
        for f in ("siscom_localisation.csv", "siscom_summary.csv", "siscom_localisation.png")
    ]
