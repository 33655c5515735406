"""Every path and name of a run, in one place: inputs, BIDS-Derivatives outputs, work folders,
wildcards and condition names. Rules and jobs build paths from here; nothing else spells them.

Output folder (``out_dir``) is a BIDS-Derivatives dataset::

    dataset_description.json, .bidsignore
    sub-<label>/[ses-<label>/]<anat|pet|spect>/    one image of the subject, in the session of
        sub-<label>[_ses-<label>][_acq-<ictal|interictal>]_<desc-...|space-...|from-...>_<suffix>
    sub-<label>/spect/                              synthetic SPECT (subject level: it is made
        sub-<label>_acq-interictal_space-<space>_desc-<condition>_spect.nii.gz   from MRI/PET)
    slices/ models/ metrics/ tables/ figures/ qc/ siscom/ inputs/ logs/ benchmarks/ regions/
    templates/ (MNI152 at 2 mm from nilearn; the simulator's head model)
    registration/ (each T1w brain and mask on the registration working grid)
                                                    work files and group results (.bidsignore)

An *image prefix* (wildcard ``prefix``) names one input image of one subject, e.g.
``sub-P001/ses-2/spect/sub-P001_ses-2_acq-interictal``; everything derived from that image
extends it. Subject-level files use the wildcard ``subject`` (the label without ``sub-``).

A *condition* (wildcard ``condition``) is a `desc-` label: 'synth' + input + loss, e.g.
``synthMriPetL1Bce``; a 2D twin appends ``2d`` (train.compare_2d). Training runs
(train.seeds): run 0 of a condition has the plain label; run k >= 1 (the same condition
retrained with seed train.seed + k) appends ``Run<k>``, e.g. ``synthMriPetL1BceRun1`` for the
second run. So a study of one run keeps its names, and adding runs renames nothing. 2D twins
are trained once (run 0 only).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

# --- vocabulary --------------------------------------------------------------------------------

ROLES = ("t1w", "pet", "spect", "ictal")  # the input images of a subject
# Which roles a model input needs.
INPUT_ROLES = {"mri": ("t1w",), "pet": ("pet",), "mri_pet": ("t1w", "pet")}
MODEL_INPUTS = tuple(INPUT_ROLES)
LOSSES = ("l1_bce", "l1_bce_ssim")
SPLITS = ("train", "test", "validation", "predict")


@dataclass(frozen=True)
class Role:
    datatype: str  # BIDS datatype folder
    suffix: str  # BIDS suffix
    entities: str  # fixed entities this tool adds to tell roles apart ("" or "_acq-...")


ROLE = {
    "t1w": Role("anat", "T1w", ""),
    "pet": Role("pet", "pet", ""),
    "spect": Role("spect", "spect", "_acq-interictal"),
    "ictal": Role("spect", "spect", "_acq-ictal"),
}

# The study's two spaces (config names) and their BIDS `space-` labels. nilearn's MNI152 files are
# the ICBM152 2009 release a, *symmetric* (mni_icbm152_*_tal_nlin_sym_09a; the arrays are mirror
# images), although its docstring says asymmetrical: TemplateFlow's MNI152NLin2009aSym.
TEMPLATE = "MNI152NLin2009aSym"
SPACE_LABEL = {"native": "T1w", "template": TEMPLATE}
SPACE_NAME = {label: name for name, label in SPACE_LABEL.items()}
# NIfTI sform/qform codes: 1 scanner anatomical (the MRI's own world), 4 MNI152.
XFORM_CODE = {"T1w": 1, TEMPLATE: 4}

_LABEL = "[A-Za-z0-9]+"


def prefix_pattern(role: str | None = None) -> str:
    """The regular expression of an image prefix (of one role, or of any)."""
    roles = [ROLE[role]] if role else list(ROLE.values())
    kinds = "|".join(f"{r.datatype}/sub-{_LABEL}(_ses-{_LABEL})?{r.entities}" for r in roles)
    return rf"sub-{_LABEL}/(ses-{_LABEL}/)?({kinds})"


# Slice files, one per modality: the input channels (mri, pet) and the target (spect), each
# cut from the image of one role.
SLICE_SOURCES = {"mri": "t1w", "pet": "pet", "spect": "spect"}
SLICE_TARGET = "spect"

WILDCARDS = {
    "subject": _LABEL,
    "modality": "|".join(SLICE_SOURCES),
    "prefix": prefix_pattern(),
    "suffix": "T1w|pet|spect",
    "space": "|".join(SPACE_LABEL.values()),
    "scan": "ictal|interictal",
}

# Demo (simulated) cohort: where the simulator writes each role (no sessions).
DEMO_INPUT = {
    "t1w": "sub-{subject}/anat/sub-{subject}_T1w.nii.gz",
    "pet": "sub-{subject}/pet/sub-{subject}_trc-FDG_pet.nii.gz",
    "spect": "sub-{subject}/spect/sub-{subject}_acq-interictal_spect.nii.gz",
    "ictal": "sub-{subject}/spect/sub-{subject}_acq-ictal_spect.nii.gz",
}
SIMULATION_DIR = "derivatives/simulation"


def camel(text: str) -> str:
    """'mri_pet' -> 'MriPet' (BIDS labels are alphanumeric)."""
    return "".join(part.capitalize() for part in text.split("_"))


# desc suffix of a 2D twin: a condition retrained with context 0 on the same 2.5D slice files,
# to compare 2D and 2.5D synthesis in one run (train.compare_2d)
TWIN_2D = "2d"


def condition_desc(model_input: str, loss: str, twin_2d: bool = False) -> str:
    """A condition's `desc-` label (model folders, synthetic SPECT): 'synth' + input + loss
    (+ '2d' for a 2D twin), e.g. synthMriPetL1BceSsim, synthMriPetL1Bce2d."""
    return f"synth{camel(model_input)}{camel(loss)}{TWIN_2D if twin_2d else ''}"


CONDITIONS = {
    condition_desc(i, lo, twin): (i, lo)
    for i in MODEL_INPUTS
    for lo in LOSSES
    for twin in (False, True)
}


def parse_condition(desc: str) -> tuple[str, str]:
    """(model input, loss) of a condition's desc label (of any training run)."""
    if desc not in CONDITIONS:
        desc = split_run(desc)[0]
    return CONDITIONS[desc]


def twin_desc(pair: str) -> str:
    """The desc label of the 2D twin of 'input/loss' (train.compare_2d names them so)."""
    model_input, loss = pair.split("/")
    return condition_desc(model_input, loss, twin_2d=True)


def is_2d_twin(desc: str) -> bool:
    """Whether a condition's desc label names a 2D twin."""
    return desc == condition_desc(*parse_condition(desc), twin_2d=True)


# desc suffix of training run k >= 1 (train.seeds): `Run<k>`, k 0-based, so run 0 keeps the
# plain label; 2D twins have run 0 only
RUN = "Run"
_RUN_SUFFIX = re.compile(rf"(?P<base>[A-Za-z0-9]+?)(?:{RUN}(?P<run>[1-9][0-9]*))?")


def run_desc(desc: str, run: int) -> str:
    """The desc label of training run `run` (0-based) of a run-0 condition label."""
    if run < 0 or split_run(desc) != (desc, 0):
        raise ValueError(f"no run {run} of {desc!r}: give a run-0 condition and a run >= 0")
    if run and is_2d_twin(desc):
        raise ValueError(f"{desc!r} is a 2D twin: twins are trained once (run 0)")
    return f"{desc}{RUN}{run}" if run else desc


def split_run(desc: str) -> tuple[str, int]:
    """(run-0 condition label, run index) of a condition's desc label."""
    m = _RUN_SUFFIX.fullmatch(desc)
    base, run = (m["base"], int(m["run"] or 0)) if m else (desc, 0)
    if base not in CONDITIONS or (run and is_2d_twin(base)):
        raise ValueError(f"unknown condition {desc!r}; known: {sorted(CONDITIONS)} + {RUN}<k>")
    return base, run


def run_of(desc: str) -> int:
    """The training run index (0-based) of a condition's desc label."""
    return split_run(desc)[1]


WILDCARDS["condition"] = "|".join(
    [f"(?:{'|'.join(c for c in CONDITIONS if not is_2d_twin(c))})(?:{RUN}[1-9][0-9]*)?"]
    + [c for c in CONDITIONS if is_2d_twin(c)]
)


def condition_name(space: str, model_input: str, loss: str) -> str:
    """How tables and figures name a condition (config space names): native/mri/l1_bce."""
    return f"{space}/{model_input}/{loss}"


def image_prefix(subject: str, role: str, session: str | None = None) -> str:
    """The BIDS prefix (folder and entities, no suffix) of a subject's image of one role."""
    r = ROLE[role]
    ses_dir = f"ses-{session}/" if session else ""
    ses = f"_ses-{session}" if session else ""
    return f"sub-{subject}/{ses_dir}{r.datatype}/sub-{subject}{ses}{r.entities}"


_PREFIX = re.compile(
    rf"sub-(?P<subject>{_LABEL})/(?:ses-(?P<session>{_LABEL})/)?(?P<datatype>anat|pet|spect)/"
    rf"sub-(?P=subject)(?:_ses-(?P=session))?(?:_acq-(?P<acq>ictal|interictal))?$"
)


def parse_prefix(prefix: str) -> tuple[str, str | None, str]:
    """(subject, session or None, role) of an image prefix; ValueError when it is not one."""
    m = _PREFIX.match(prefix)
    if not m:
        raise ValueError(f"not an image prefix of this workflow: {prefix!r}")
    for role, r in ROLE.items():
        if r.datatype == m["datatype"] and r.entities == (f"_acq-{m['acq']}" if m["acq"] else ""):
            return m["subject"], m["session"], role
    raise ValueError(f"no role has datatype {m['datatype']} with acq {m['acq']}: {prefix!r}")


@dataclass(frozen=True)
class Layout:
    """Paths of one run. Methods with wildcard arguments left out return Snakemake patterns."""

    out: Path
    bids: Path

    # ---- group folders (not BIDS; listed in the derivatives' .bidsignore) ----
    @property
    def logs(self) -> Path:
        return self.out / "logs"

    @property
    def benchmarks(self) -> Path:
        return self.out / "benchmarks"

    @property
    def tables(self) -> Path:
        return self.out / "tables"

    @property
    def figures(self) -> Path:
        return self.out / "figures"

    @property
    def siscom(self) -> Path:
        return self.out / "siscom"

    WORK_FOLDERS = ("slices", "models", "metrics", "tables", "figures", "qc", "siscom")
    WORK_FOLDERS += ("inputs", "logs", "benchmarks")
    WORK_FOLDERS += ("regions", "templates", "registration")

    # ---- the template (nilearn's MNI152 at 2 mm), written once per run ----
    def template_t1w(self) -> Path:
        """The MNI152 brain T1 at 2 mm: the fixed image of MRI -> template registration."""
        return self.out / "templates" / f"tpl-{TEMPLATE}_res-02_T1w.nii.gz"

    def template_mask(self) -> Path:
        """The MNI152 brain mask on the 2 mm template's grid: centres the template space grid."""
        return self.out / "templates" / f"tpl-{TEMPLATE}_res-02_desc-brain_mask.nii.gz"

    def description(self) -> Path:
        return self.out / "dataset_description.json"

    def bidsignore(self) -> Path:
        return self.out / ".bidsignore"

    def readme(self) -> Path:
        return self.out / "README"

    # ---- input gate ----
    def inputs_report(self, subject: str = "{subject}") -> Path:
        return self.out / "inputs" / f"sub-{subject}_inputs.json"

    def gate(self) -> Path:
        return self.out / "inputs" / "input_gate.json"

    def excluded_table(self) -> Path:
        return self.tables / "excluded_subjects.tsv"

    # ---- per-image derivatives (wildcards prefix, suffix, space) ----
    def reoriented(self, prefix: str = "{prefix}", suffix: str = "{suffix}") -> Path:
        return self.out / f"{prefix}_desc-reoriented_{suffix}.nii.gz"

    def brain(self, prefix: str = "{prefix}", suffix: str = "{suffix}") -> Path:
        """Skull-stripped (MRI, PET) or histogram-masked (SPECT) image in its own space."""
        return self.out / f"{prefix}_desc-brain_{suffix}.nii.gz"

    def brain_mask(self, prefix: str = "{prefix}") -> Path:
        return self.out / f"{prefix}_desc-brain_mask.nii.gz"

    def working_grid(self, prefix: str = "{prefix}", suffix: str = "{suffix}") -> Path:
        """The T1w brain (suffix T1w) or its brain mask (suffix mask) on the registration working
        grid, made once per subject for its registrations (preprocess/registration.py)."""
        return self.out / "registration" / f"{prefix}_res-working_desc-brain_{suffix}.nii.gz"

    def to_mri_xfm(self, prefix: str = "{prefix}") -> Path:
        """Rigid transform of an image's own (scanner) space to its subject's T1w."""
        return self.out / f"{prefix}_from-orig_to-T1w_mode-image_xfm.mat"

    def to_template_xfm(self, prefix: str = "{prefix}") -> Path:
        return self.out / f"{prefix}_from-T1w_to-{TEMPLATE}_mode-image_xfm.mat"

    def in_space(
        self,
        prefix: str = "{prefix}",
        suffix: str = "{suffix}",
        space: str = "{space}",
        desc="brain",
    ) -> Path:
        """An image resampled onto a space's grid (space: BIDS label)."""
        return self.out / f"{prefix}_space-{space}_desc-{desc}_{suffix}.nii.gz"

    def mask_in_space(self, prefix: str = "{prefix}", space: str = "{space}") -> Path:
        return self.out / f"{prefix}_space-{space}_desc-brain_mask.nii.gz"

    @staticmethod
    def sidecar(image: str | Path) -> Path:
        """The JSON sidecar of a NIfTI (or the record beside a transform)."""
        name = Path(image).name
        for ext in (".nii.gz", ".nii", ".mat"):
            if name.endswith(ext):
                return Path(image).with_name(name[: -len(ext)] + ".json")
        raise ValueError(f"no sidecar convention for {image}")

    # ---- subject-level work files ----
    def slices(
        self, subject: str = "{subject}", space: str = "{space}", modality: str = "{modality}"
    ) -> Path:
        """One modality's slices (mri, pet or spect, the target) of a subject in a space."""
        return self.out / "slices" / f"space-{space}" / f"sub-{subject}_mod-{modality}_slices.npz"

    def qc_preprocess(self, subject: str = "{subject}", space: str = "{space}") -> Path:
        return self.out / "qc" / "preprocess" / f"sub-{subject}_space-{space}_qc.png"

    def qc_simulate(self, subject: str = "{subject}") -> Path:
        return self.out / "qc" / "simulate" / f"sub-{subject}_simulate.png"

    # ---- models and predictions (wildcards space: BIDS label, condition: see condition_desc) ----
    def model_dir(self, space: str = "{space}", condition: str = "{condition}") -> Path:
        return self.out / "models" / f"space-{space}" / f"desc-{condition}"

    def synthetic(self, subject="{subject}", space="{space}", condition="{condition}") -> Path:
        """The synthetic interictal SPECT volume (BIDS derivative, subject level)."""
        return (
            self.out
            / f"sub-{subject}"
            / "spect"
            / f"sub-{subject}_acq-interictal_space-{space}_desc-{condition}_spect.nii.gz"
        )

    def synthetic_sd(self, subject="{subject}", space="{space}", condition="{condition}") -> Path:
        """Its uncertainty map (standard deviation over test-time augmentations)."""
        return (
            self.out
            / f"sub-{subject}"
            / "spect"
            / f"sub-{subject}_acq-interictal_space-{space}_desc-{condition}Sd_spect.nii.gz"
        )

    def synthetic_in_scan(self, subject="{subject}", scan="{scan}", condition="{condition}"):
        """The native synthetic SPECT resampled into the subject's own ictal or interictal
        SPECT scan (custom space label `ictal` / `interictal`, defined in its sidecar)."""
        return (
            self.out
            / f"sub-{subject}"
            / "spect"
            / f"sub-{subject}_acq-interictal_space-{scan}_desc-{condition}_spect.nii.gz"
        )

    def synthesis_figure(self, subject: str = "{subject}") -> Path:
        return self.figures / "synthesis" / f"sub-{subject}_synthesis.png"

    def synth_slices(self, subject="{subject}", space="{space}", condition="{condition}") -> Path:
        return self.model_dir(space, condition) / "synth" / f"sub-{subject}_synthslices.npz"

    def metrics(
        self, subject="{subject}", space="{space}", condition="{condition}", kind="slices"
    ) -> Path:
        """Scores of one synthetic SPECT: kind `slices` (per slice, Table 4) or `volume`."""
        return (
            self.out
            / "metrics"
            / f"space-{space}"
            / f"desc-{condition}"
            / f"sub-{subject}_{kind}.tsv"
        )

    def baselines(self, space: str = "{space}") -> Path:
        return self.out / "metrics" / "baselines" / f"space-{space}.tsv"

    def montage(self, space: str = "{space}", loss: str = "{loss}") -> Path:
        return self.figures / f"montage_space-{space}_loss-{loss}.png"

    def siscom_subject(self, subject: str = "{subject}", ext: str = "tsv") -> Path:
        return self.siscom / f"sub-{subject}" / f"sub-{subject}_siscom.{ext}"

    # ---- simulator (demo cohort only) ----
    def simulation_template(self) -> Path:
        """The simulator's head model and cortex mask (rule simulate_template), read by every
        simulate_subject job instead of each rebuilding it."""
        return self.out / "templates" / "simulator_head.npz"

    def demo_input(self, role: str, subject: str = "{subject}") -> Path:
        return self.bids / DEMO_INPUT[role].format(subject=subject)

    def simulation_truth(self, subject: str = "{subject}") -> Path:
        return (
            self.bids
            / SIMULATION_DIR
            / f"sub-{subject}"
            / f"sub-{subject}_desc-truth_transforms.json"
        )

    def simulation_noiseless(self, subject: str = "{subject}") -> Path:
        return (
            self.bids
            / SIMULATION_DIR
            / f"sub-{subject}"
            / f"sub-{subject}_acq-interictal_desc-noiseless_spect.nii.gz"
        )

    # ---- logs and benchmarks ----
    def log(self, stage: str, name: str) -> Path:
        return self.logs / stage / f"{name}.log"

    def benchmark(self, stage: str, name: str) -> Path:
        """Snakemake's per-job benchmark (wall time, max RSS, CPU), beside the log's name."""
        return self.benchmarks / stage / f"{name}.tsv"

    # ---- regional perfusion and asymmetry (rules/regions.smk) ----
    @property
    def regions(self) -> Path:
        return self.out / "regions"

    def atlas(self, ext: str = "nii.gz") -> Path:
        """The regional atlas on the study's template grid (label image; ext tsv: its labels)."""
        return self.regions / "atlas" / f"space-{TEMPLATE}_desc-regions_dseg.{ext}"

    def atlas_native(self, subject: str = "{subject}") -> Path:
        """The atlas on a subject's T1w-space grid."""
        return self.regions / f"sub-{subject}" / f"sub-{subject}_space-T1w_desc-regions_dseg.nii.gz"

    def regional(self, subject: str = "{subject}") -> Path:
        """Regional uptake and asymmetry of every scored condition of one subject."""
        return self.regions / f"sub-{subject}" / f"sub-{subject}_regional.tsv"

    # ---- Monte Carlo ceiling (simulated cohort) ----
    def ceiling_metrics(self, subject="{subject}", space="{space}", kind="slices") -> Path:
        """Scores of the Monte Carlo ceiling (approximate): kind `slices` or `volume`."""
        return self.out / "metrics" / "ceiling" / f"space-{space}" / f"sub-{subject}_{kind}.tsv"

    # ---- SISCOM sources built from the training cohort (rules/siscom.smk) ----
    def siscom_cohort_flat(self) -> Path:
        """The flat interictal: training subjects' mean relative SPECT, template space."""
        return self.siscom / "cohort" / f"space-{TEMPLATE}_desc-flat_spect.nii.gz"

    def siscom_pet_map(self) -> Path:
        """The PET -> relative SPECT linear map fitted on the training subjects."""
        return self.siscom / "cohort" / "desc-petLinear_map.json"

    def siscom_flat(self, subject: str = "{subject}") -> Path:
        """The flat interictal warped onto a subject's native (T1w) grid."""
        return self.siscom / f"sub-{subject}" / f"sub-{subject}_space-T1w_desc-flat_spect.nii.gz"

    def siscom_ictal_mask(self, subject: str = "{subject}") -> Path:
        """The ictal SPECT's own brain mask on the native grid (SISCOM's analysis mask x MRI)."""
        return (
            self.siscom
            / f"sub-{subject}"
            / f"sub-{subject}_acq-ictal_space-T1w_desc-brain_mask.nii.gz"
        )

    def siscom_real(self, subject: str = "{subject}") -> Path:
        """The real interictal SPECT on the native grid without its own mask (SISCOM masks every
        source alike, with the ictal SPECT's mask x the MRI's)."""
        return (
            self.siscom
            / f"sub-{subject}"
            / f"sub-{subject}_acq-interictal_space-T1w_desc-preproc_spect.nii.gz"
        )

    # ---- training runs (train.seeds) ----
    def seed_variance(self) -> Path:
        """Per condition and primary metric: each run's cohort mean, their mean and SD."""
        return self.tables / "seed_variance.csv"

    # ---- per-rule benchmark table of the run (rules/benchmarks.smk) ----
    def job_benchmarks(self) -> Path:
        """Per rule: jobs, wall time, peak memory and CPU time, from every job's benchmark."""
        return self.tables / "job_benchmarks.csv"
