# Shared by every stage: the cohort, the layout (every path comes from workflow_scripts/layout.py)
# and the input functions of the rules.

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


# --- images of a subject: raw inputs and their derivatives ---


def prefix(subject, role):
    return COHORT.prefix(subject, role)


def image_of(w):
    """(subject, role) of an image-level job, checked against the cohort."""
    subject, session, role = names.parse_prefix(w.prefix)
    if not COHORT.has(subject, role) or COHORT.session(subject, role) != session:
        raise ValueError(f"{w.prefix}: not an input image of this cohort")
    return subject, role


def raw_input(w):
    subject, role = image_of(w)
    return COHORT.path(subject, role)


def brain(subject, role):
    return L.brain(prefix(subject, role), ROLE[role].suffix)


def brain_mask(subject, role):
    return L.brain_mask(prefix(subject, role))


def space_image(subject, role, space):
    """A subject's image of one role resampled into a space (BIDS label)."""
    desc = "preproc" if role == "ictal" else "brain"
    return L.in_space(prefix(subject, role), ROLE[role].suffix, space, desc)


def space_mask(subject, role, space):
    return L.mask_in_space(prefix(subject, role), space)


def to_template_xfm(subject):
    return L.to_template_xfm(prefix(subject, "t1w"))


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


def has(subject, role):
    """The subject has this input (t1w, pet, spect, ictal) and it passed the input check, and so
    did its T1w: both spaces are built around the MRI, so without it nothing else is usable."""
    return COHORT.has(subject, role) and usable(input_report(subject), list({role, "t1w"}))


def subjects_for(model_input, splits, need_spect=True):
    """Subjects of these splits whose images for a model input (and SPECT) passed the check."""
    keys = list(INPUT_ROLES[model_input]) + (["spect"] if need_spect else [])
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
        L.description(),
        *simulate_targets(),
        *preprocess_targets(),
        *slices_targets(),
        *train_targets(),
        *evaluate_targets(),
        *siscom_targets(),
        *regions_targets(),
    ]


def subject_inputs(w):
    return {r: COHORT.path(w.subject, r) for r in names.ROLES if COHORT.has(w.subject, r)}


# --- final targets of each stage (rule all) ---


def simulate_targets():
    if not config["simulate"]["enabled"]:
        return []
    return [L.bids / "participants.tsv", *[L.qc_simulate(s) for s in COHORT.subjects()]]


def preprocess_targets():
    """Every subject's volumes in every space, for the roles it has, and QC images."""
    files = []
    for s in mri_subjects():
        for space in SPACES:
            roles = ["t1w", *[r for r in ("pet", "spect") if has(s, r)]]
            roles += ["ictal"] if space == NATIVE and has(s, "ictal") else []
            files += [space_image(s, r, space) for r in roles]
            files += [space_mask(s, r, space) for r in ("t1w", "spect") if r in roles]
            files.append(L.qc_preprocess(s, space))
    return files


# --- preprocessing input functions ---


def grid_mask(subject, space):
    """The brain mask a space's grid is centred on: the subject's MRI brain, or the template's."""
    return L.template_mask() if space == TEMPLATE else brain_mask(subject, "t1w")


def space_inputs(role):
    """Inputs of resampling a role's image into a space: image, its mask, and the transforms."""

    def inputs(w):
        subject, _ = image_of(w)
        d = {
            "image": (
                L.reoriented(w.prefix, ROLE[role].suffix)
                if role == "ictal"
                else brain(subject, role)
            ),
            "grid_mask": grid_mask(subject, w.space),
        }
        if role in ("t1w", "spect"):
            d["mask"] = brain_mask(subject, role)
        if role != "t1w":
            d["xfm"] = L.to_mri_xfm(w.prefix)
        if w.space == TEMPLATE:
            d["template_xfm"] = to_template_xfm(subject)
        return d

    return inputs


def qc_inputs(w):
    d = {"mri": space_image(w.subject, "t1w", w.space)}
    for role in ("pet", "spect"):
        if has(w.subject, role):
            d[role] = space_image(w.subject, role, w.space)
    return d


# --- slices and training ---

# One slice file per subject, space and modality (layout.SLICE_SOURCES): a reader lists only the
# modalities it reads, so e.g. an MRI-only model does not depend on any PET setting.


def slice_inputs(modality=None):
    """Inputs of a slice job: the MRI brain mask (which decides the cut) and one modality's
    image (modality None: the wildcard's)."""

    def inputs(w):
        role = SLICE_SOURCES[modality or w.modality]
        return {
            "brainmask": space_mask(w.subject, "t1w", w.space),
            "image": space_image(w.subject, role, w.space),
        }

    return inputs


def input_modalities(model_input):
    """The slice modalities a model input reads (mri_pet: mri, pet)."""
    return [
        m
        for m, role in SLICE_SOURCES.items()
        if m != SLICE_TARGET and role in INPUT_ROLES[model_input]
    ]


def subject_modalities(subject):
    """Every slice modality of a subject: those whose image passed the input check."""
    return [m for m, role in SLICE_SOURCES.items() if has(subject, role)]


def slice_files(subjects, space, modalities):
    """The slice files of these subjects and modalities, subject by subject."""
    return [L.slices(s, space, m) for s in subjects for m in modalities]


def slices_targets():
    return [
        L.slices(s, space, m)
        for s in mri_subjects()
        for space in SPACES
        for m in subject_modalities(s)
    ]


def condition_of(w):
    """The condition of a job as tables name it: space (config name), input, loss."""
    model_input, loss = names.parse_condition(w.condition)
    context = 0 if names.is_2d_twin(w.condition) else config["slices"]["context"]
    cond = {"space": SPACE_NAME[w.space], "input": model_input, "loss": loss, "context": context}
    # only runs k >= 1 say which run they are: run-0 jobs keep their params (no rerun)
    run = names.run_of(w.condition)
    return {**cond, "run": run} if run else cond


def train_inputs(w):
    """A model's training (and validation) slices: its input modalities and the target only."""
    model_input = condition_of(w)["input"]
    mods = [*input_modalities(model_input), SLICE_TARGET]
    d = {"train": slice_files(subjects_for(model_input, "train"), w.space, mods)}
    if config["train"]["validate_every"]:
        d["validation"] = slice_files(subjects_for(model_input, "validation"), w.space, mods)
    return d


def train_targets():
    models = [(space, c) for space in SPACES for c in CONDITIONS] + [(NATIVE, c) for c in TWINS_2D]
    return [L.model_dir(space, c) / "generator.safetensors" for space, c in models]


# --- evaluation ---


def conditions():
    """(space label, condition desc, model input) of every trained condition."""
    return [
        (space, names.condition_desc(i, lo), i) for space in SPACES for i in INPUTS for lo in LOSSES
    ]


def all_metric_files(kind="slices"):
    return [
        L.metrics(subj, space, c, kind)
        for space, c, i in conditions()
        for subj in subjects_for(i, EVAL_SPLITS)
    ]


def twins_2d():
    """(condition desc, model input) of the 2D twins."""
    return [(c, names.parse_condition(c)[0]) for c in TWINS_2D]


def twin_metric_files():
    """Volume metrics of the 2D twins (their slice metrics stay out of Table 4)."""
    return [
        L.metrics(subj, NATIVE, c, "volume")
        for c, i in twins_2d()
        for subj in subjects_for(i, EVAL_SPLITS)
    ]


def synthesised_subjects(model_input):
    """Scored and predict-split subjects: every one gets a synthetic SPECT."""
    return subjects_for(model_input, EVAL_SPLITS) + subjects_for(
        model_input, "predict", need_spect=False
    )


def prediction_targets():
    """Synthetic SPECT volumes of every scored and predict-split subject, per condition, and in
    native space also resampled into the subject's own ictal / interictal SPECT scans."""
    out = []
    for space, c, i in conditions():
        for x in synthesised_subjects(i):
            out.append(L.synthetic(x, space, c))
            if space == NATIVE:
                out += [L.synthetic_in_scan(x, scan, c) for scan in scans_of(x)]
    out += [L.synthetic(x, NATIVE, c) for c, i in twins_2d() for x in synthesised_subjects(i)]
    return out


SCAN_ROLE = {"ictal": "ictal", "interictal": "spect"}


def scans_of(subject):
    """The subject's own SPECT scans (ictal, interictal) that passed the input check."""
    return [scan for scan, role in SCAN_ROLE.items() if has(subject, role)]


def predict_inputs(w):
    """A synthetic SPECT's inputs: the model and the subject's input images, never its SPECT."""
    d = {
        "weights": L.model_dir(w.space, w.condition) / "generator.safetensors",
        "subjects": L.model_dir(w.space, w.condition) / "subjects.json",
        "brainmask": space_mask(w.subject, "t1w", w.space),
    }
    for channel, role in SLICE_SOURCES.items():
        if role in INPUT_ROLES[condition_of(w)["input"]]:
            d[channel] = space_image(w.subject, role, w.space)
    return d


def prediction_sources(w):
    """The space images a synthetic SPECT is made from (named in its sidecar)."""
    roles = INPUT_ROLES[condition_of(w)["input"]]
    return [str(space_image(w.subject, r, w.space)) for r in roles]


def synthesis_figure_subjects():
    """Held-out and predict subjects of the native space, each with a three-plane figure."""
    if NATIVE not in SPACES:
        return []
    return sorted({x for i in INPUTS for x in synthesised_subjects(i)})


def native_conditions_of(subject):
    """(label, condition desc) of the native-space conditions that synthesise this subject."""
    return [
        (f"{i}/{lo}", names.condition_desc(i, lo))
        for i in INPUTS
        for lo in LOSSES
        if NATIVE in SPACES and subject in synthesised_subjects(i)
    ]


def figure_conditions_of(subject):
    """native_conditions_of, then the 2D twins synthesising this subject; with twins, labels
    say which is which (.../2.5D, .../2D)."""
    twins = [
        (f"{i}/{names.parse_condition(c)[1]}/2D", c)
        for c, i in twins_2d()
        if subject in synthesised_subjects(i)
    ]
    if not twins:
        return native_conditions_of(subject)
    return [(f"{label}/2.5D", c) for label, c in native_conditions_of(subject)] + twins


def synthesis_figure_inputs(w):
    s = w.subject
    d = {"t1w": space_image(s, "t1w", NATIVE)}
    d.update(
        {scan: space_image(s, role, NATIVE) for scan, role in SCAN_ROLE.items() if has(s, role)}
    )
    d["synth"] = [L.synthetic(s, NATIVE, c) for _, c in figure_conditions_of(s)]
    return d


def ceiling_subjects():
    """Scored subjects whose expected SPECT is known (simulated cohort): Monte Carlo ceiling."""
    if not config["simulate"]["enabled"]:
        return []
    return [s for s in COHORT.subjects(EVAL_SPLITS) if has(s, "spect")]


def all_ceiling_files(kind="slices"):
    return [L.ceiling_metrics(s, space, kind) for space in SPACES for s in ceiling_subjects()]


def baseline_inputs(w):
    """Per model input its training subjects' slices; the held-out subjects' slices of every
    input modality of the study they have, and their target."""
    d = {
        f"train_{i}": slice_files(
            subjects_for(i, "train"), w.space, [*input_modalities(i), SLICE_TARGET]
        )
        for i in INPUTS
    }
    studied = {m for i in INPUTS for m in input_modalities(i)} | {SLICE_TARGET}
    d["eval"] = [
        L.slices(s, w.space, m)
        for s in COHORT.subjects(EVAL_SPLITS)
        if has(s, "spect")
        for m in subject_modalities(s)
        if m in studied
    ]
    return d


def montage_subjects():
    n = config["evaluate"]["montage_subjects"]
    picks = []
    for split in EVAL_SPLITS:
        picks += [s for s in COHORT.subjects(split) if has(s, "spect")][:n]
    return picks


def montage_inputs(w):
    # every modality the subject has: the figure shows the inputs beside the real SPECT
    d = {
        "slices": [
            L.slices(s, w.space, m) for s in montage_subjects() for m in subject_modalities(s)
        ]
    }
    d["synth"] = [
        L.synth_slices(s, w.space, names.condition_desc(i, w.loss))
        for s in montage_subjects()
        for i in INPUTS
        if s in subjects_for(i, EVAL_SPLITS)
    ]
    return d


def evaluate_targets():
    figs = [L.figures / f"fig{n}.png" for n in ("5_space", "6_loss", "7_input")]
    montages = [L.montage(s, lo) for s in SPACES for lo in LOSSES]
    tables = [
        L.tables / f
        for f in (
            "metrics.csv",
            "volume_metrics.csv",
            "table4.csv",
            "table4.md",
            "tests.csv",
            "baselines.csv",
            "ceiling.csv",
        )
    ]
    synthesis = [L.synthesis_figure(s) for s in synthesis_figure_subjects()]
    return [
        *tables,
        *figs,
        *montages,
        *synthesis,
        L.out / "results_summary.md",
        L.seed_variance(),
        *prediction_targets(),
    ]


# --- SISCOM ---


def siscom_conditions(subject):
    """(label, synthetic interictal volume) of the native-space conditions scoring this subject."""
    return [(label, L.synthetic(subject, NATIVE, c)) for label, c in native_conditions_of(subject)]


def siscom_subjects():
    if not config["siscom"]["enabled"] or NATIVE not in SPACES:
        return []
    return [s for s in COHORT.subjects(EVAL_SPLITS) if has(s, "ictal") and has(s, "spect")]


def siscom_inputs(w):
    """The analysis mask comes from the ictal SPECT and the MRI, never the real interictal's."""
    s = w.subject
    d = {
        "ictal": space_image(s, "ictal", NATIVE),
        "brainmask": space_mask(s, "t1w", NATIVE),
        "ictalmask": L.siscom_ictal_mask(s),
        "t1w": space_image(s, "t1w", NATIVE),
        "spect": L.siscom_real(s),
        "flat": L.siscom_flat(s),
        "synth": [path for _, path in siscom_conditions(s)],
        # the regional atlas on the subject's grid names the region of each cluster's peak
        "atlas": L.atlas_native(s),
        "atlas_labels": L.atlas("tsv"),
    }
    if has(s, "pet"):
        d["pet"] = space_image(s, "pet", NATIVE)
        d["pet_map"] = L.siscom_pet_map()
    if config["simulate"]["enabled"]:
        d["truth"] = L.simulation_truth(s)
    return d


def siscom_settings(*keys):
    """Only the SISCOM keys a job uses: a new bootstrap setting reruns the summary alone."""
    return sorted_dict({k: config["siscom"][k] for k in keys})


def siscom_flat_subjects(w=None):
    """Training subjects whose SPECT makes the flat interictal (never a scored subject)."""
    return subjects_for("mri", "train")


def siscom_pet_subjects(w=None):
    """Training subjects with PET and SPECT: the PET -> SPECT linear map is fitted on them."""
    return subjects_for("pet", "train")


def siscom_cohort_inputs(w):
    flat, pet = siscom_flat_subjects(), siscom_pet_subjects()
    return {
        "flat_spect": [space_image(t, "spect", TEMPLATE) for t in flat],
        "flat_spectmask": [space_mask(t, "spect", TEMPLATE) for t in flat],
        "flat_brainmask": [space_mask(t, "t1w", TEMPLATE) for t in flat],
        "pet": [space_image(t, "pet", NATIVE) for t in pet],
        "pet_spect": [space_image(t, "spect", NATIVE) for t in pet],
        "pet_spectmask": [space_mask(t, "spect", NATIVE) for t in pet],
        "pet_brainmask": [space_mask(t, "t1w", NATIVE) for t in pet],
    }


def siscom_warp_inputs(w):
    """The cohort's flat image, the ictal's own mask and the unmasked interictal scan, with the
    transforms that take them onto the native grid."""
    s = w.subject
    return {
        "flat": L.siscom_cohort_flat(),
        "template_xfm": to_template_xfm(s),
        "ictal": space_image(s, "ictal", NATIVE),
        "ictal_mask": brain_mask(s, "ictal"),
        "ictal_xfm": L.to_mri_xfm(prefix(s, "ictal")),
        "interictal": L.reoriented(prefix(s, "spect"), "spect"),
        "interictal_xfm": L.to_mri_xfm(prefix(s, "spect")),
    }


def siscom_targets():
    if not siscom_subjects():
        return []
    group = [
        L.siscom / f
        for f in ("siscom_localisation.csv", "siscom_summary.csv", "siscom_localisation.png")
    ]
    return group + [L.siscom_subject(s, "png") for s in siscom_subjects()]


# --- input functions of single rules ---


def register_inputs(w):
    subject, role = image_of(w)
    return {
        "mri": brain(subject, "t1w"),
        "mri_mask": brain_mask(subject, "t1w"),
        "moving": brain(subject, role),
        "moving_mask": brain_mask(subject, role),
    }


def scan_inputs(w):
    """The native synthetic SPECT, and the subject's own scan with its transform to the MRI."""
    role = SCAN_ROLE[w.scan]
    scan = prefix(w.subject, role)
    return {
        "volume": L.synthetic(w.subject, NATIVE, w.condition),
        "reference": L.reoriented(scan, "spect"),
        "xfm": L.to_mri_xfm(scan),
    }


def score_inputs(w):
    return {
        "synth": L.synth_slices(w.subject, w.space, w.condition),
        "slices": L.slices(w.subject, w.space, SLICE_TARGET),  # the real SPECT's slices only
        "volume": L.synthetic(w.subject, w.space, w.condition),
        "sd": L.synthetic_sd(w.subject, w.space, w.condition),
        "real": space_image(w.subject, "spect", w.space),
        "brainmask": space_mask(w.subject, "t1w", w.space),
        "spectmask": space_mask(w.subject, "spect", w.space),
    }


def ceiling_inputs(w):
    """The expected SPECT on its raw grid, the real scan's stored transforms, and what the
    ceiling is scored against (as score_inputs)."""
    s = w.subject
    d = {
        "expected": L.simulation_noiseless(s),
        "grid_mask": grid_mask(s, w.space),
        "xfm": L.to_mri_xfm(prefix(s, "spect")),
        "slices": L.slices(s, w.space, SLICE_TARGET),
        "real": space_image(s, "spect", w.space),
        "brainmask": space_mask(s, "t1w", w.space),
        "spectmask": space_mask(s, "spect", w.space),
    }
    if w.space == TEMPLATE:
        d["template_xfm"] = to_template_xfm(s)
    return d


# --- regional perfusion and asymmetry (rules/regions.smk) ---


def regional_conditions(subject):
    """(space label, condition desc, condition) of every condition scoring this subject."""
    return [
        (space, c, {"space": SPACE_NAME[space], "input": i, "loss": names.parse_condition(c)[1]})
        for space, c, i in conditions()
        if subject in subjects_for(i, EVAL_SPLITS)
    ]


def user_atlas_files():
    """The user's atlas image and labels (config evaluate.atlas), when given."""
    given = config["evaluate"]["atlas"].values()
    return [v for v in given if v and str(v).lower() not in ("null", "none")]


def regional_subjects():
    return [s for s in COHORT.subjects(EVAL_SPLITS) if regional_conditions(s)]


def regional_inputs(w):
    """Per space: the atlas, the real SPECT and the scoring masks; the synthetic volumes; the
    simulator's truth (the focus) on the demo cohort."""
    s = w.subject
    conds = regional_conditions(s)
    d = {"labels": L.atlas("tsv"), "synth": [L.synthetic(s, sp, c) for sp, c, _ in conds]}
    for space in sorted({sp for sp, _, _ in conds}):
        d[f"atlas_{space}"] = L.atlas() if space == TEMPLATE else L.atlas_native(s)
        d[f"real_{space}"] = space_image(s, "spect", space)
        d[f"brainmask_{space}"] = space_mask(s, "t1w", space)
        d[f"spectmask_{space}"] = space_mask(s, "spect", space)
    if config["simulate"]["enabled"]:
        d["truth"] = L.simulation_truth(s)
    return d


def regions_targets():
    if not regional_subjects():
        return []
    tables = [L.tables / f for f in ("regional_uptake.csv", "regional_agreement.csv")]
    return [*tables, L.figures / "regional_agreement.png"]


# --- training runs (train.seeds) ---
# Run k >= 1 of a condition retrains it with seed train.seed + k under its own desc label
# (layout: run_desc), synthesises the scored subjects and scores them. SISCOM, regions, the
# figures of single subjects, montages, 2D twins and synth_to_scan stay on run 0.

RUNS = range(1, config["train"]["seeds"])  # the extra runs; run 0 is every other rule's


def train_settings_of(w):
    """train_settings with the job's own seed, train.seed + k: for run 0 the very same params,
    so adding runs retrains nothing of run 0."""
    return {**train_settings(), "seed": config["train"]["seed"] + names.run_of(w.condition)}


def run_conditions():
    """(space label, desc of run k, model input) of every training run k >= 1."""
    return [(space, names.run_desc(c, k), i) for space, c, i in conditions() for k in RUNS]


def run_metric_files(kind="slices"):
    """Scores of the runs k >= 1 (the scored subjects only: predict-split ones have no SPECT)."""
    return [
        L.metrics(subj, space, c, kind)
        for space, c, i in run_conditions()
        for subj in subjects_for(i, EVAL_SPLITS)
    ]
