# Input functions and targets of the preprocessing rules (rules/preprocess.smk).


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


def register_inputs(w):
    subject, role = image_of(w)
    return {
        "mri": brain(subject, "t1w"),
        "mri_grid": working_grid(subject, "T1w"),
        "mri_grid_mask": working_grid(subject, "mask"),
        "moving": brain(subject, role),
        "moving_mask": brain_mask(subject, role),
    }
