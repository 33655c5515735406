# Input functions and targets of the evaluation rules (rules/evaluate.smk).


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
