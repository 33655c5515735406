# Input functions, params and targets of training (rules/train.smk), and the extra training
# runs (train.seeds).


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
