# Input functions and targets of the regional rules (rules/regions.smk).


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
