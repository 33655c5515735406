# Input functions, params and targets of the SISCOM rules (rules/siscom.smk).


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
