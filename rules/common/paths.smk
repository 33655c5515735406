# Paths of a subject's images: raw inputs and their derivatives.


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


def working_grid(subject, suffix):
    """The subject's T1w brain (suffix T1w) or its mask (mask) on the registration grid."""
    return L.working_grid(prefix(subject, "t1w"), suffix)


def space_image(subject, role, space):
    """A subject's image of one role resampled into a space (BIDS label)."""
    desc = "preproc" if role == "ictal" else "brain"
    return L.in_space(prefix(subject, role), ROLE[role].suffix, space, desc)


def space_mask(subject, role, space):
    return L.mask_in_space(prefix(subject, role), space)


def to_template_xfm(subject):
    return L.to_template_xfm(prefix(subject, "t1w"))
