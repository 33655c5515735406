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


def simulate_targets():
    if not config["simulate"]["enabled"]:
        return []
    return [L.bids / "participants.tsv", *[L.qc_simulate(s) for s in COHORT.subjects()]]
