# Input functions and targets of the slice rules (rules/slices.smk).


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
