"""Write one simulated subject as BIDS, with its ground truth under derivatives/simulation.

Truth file `derivatives/simulation/sub-XX/sub-XX_desc-truth_transforms.json`:
- "images": {"T1w"|"pet"|"spect"|"ictal": {"world_from_anatomy": 4x4}}: a point p of the
  subject's anatomy frame (mm) lies at W @ p in that image's scanner world (mm). A point x_T1 in
  T1w world therefore lies at inv(W_T1) then W_pet in PET world: x_pet = W_pet @ inv(W_T1) @ x_T1.
- "focus_anatomy_mm", "focus_radius_mm": the ictal onset focus (the truth for SISCOM), and for
  validation subjects "cavity_anatomy_mm", "cavity_radius_mm" (anatomy frame).
- "effects": every drawn effect size and site (PET zone, propagation, day-to-day factors,
  tracer region table) and the settings they were drawn from; see docs/simulation.md.
"""

from __future__ import annotations

import importlib.metadata
import logging
import time
from pathlib import Path

import numpy as np

from workflow_scripts.inputs.cohort import SPLITS
from workflow_scripts.layout import SIMULATION_DIR, Layout
from workflow_scripts.nifti_io import save_nifti, write_json, write_text
from workflow_scripts.simulate.effects import EffectSettings
from workflow_scripts.simulate.modalities import (
    PET_FWHM_MM,
    SPECT_FWHM_MM,
    SubjectModel,
    activity_maps,
    draw_subject,
    sample_on_grid,
    subject_tissues,
)
from workflow_scripts.simulate.tracer_regions import table as tracer_table
from workflow_scripts.simulation_truth import point_in_world

log = logging.getLogger(__name__)

# Counts scale: mean expected counts in pure grey matter of the interictal SPECT.
SPECT_GM_COUNTS = 300.0
PET_GM_KBQ = 9.0  # kBq/mL in grey matter
T1_WM_SIGNAL = 900.0


def _bias_field(shape, rng: np.random.Generator, strength: float = 0.15) -> np.ndarray:
    """Smooth multiplicative field: a random low-order polynomial over the field of view."""
    axes = [np.linspace(-1, 1, n, dtype=np.float32) for n in shape]
    x, y, z = np.meshgrid(*axes, indexing="ij", sparse=True)
    c = rng.uniform(-1, 1, 6)
    field = c[0] * x + c[1] * y + c[2] * z + c[3] * x * y + c[4] * y * z + c[5] * z**2
    field = field / (np.abs(field).max() + 1e-6)
    return (1.0 + strength * field).astype(np.float32)


def bids_paths(bids: Path, subject: str) -> dict[str, Path]:
    """The demo's image files of a subject (names from workflow_scripts.layout)."""
    layout = Layout(Path(), Path(bids))
    mods = {"T1w": "t1w", "pet": "pet", "spect": "spect", "ictal": "ictal"}
    return {mod: layout.demo_input(role, subject) for mod, role in mods.items()}


def truth_dir(bids: Path, subject: str) -> Path:
    return Layout(Path(), Path(bids)).simulation_truth(subject).parent


def simulate_subject(
    subject: str,
    split: str,
    seed: int,
    out_bids: str | Path,
    ictal: bool = True,
    voxel_scale: float = 1.0,
    qc_png: str | Path | None = None,
    effects: dict | EffectSettings | None = None,
    template: str | Path | None = None,
) -> dict:
    """Simulate and write one subject; returns the truth dictionary.

    voxel_scale > 1 coarsens the anatomy and the MRI/PET grids (e.g. 3 for fast tests); the
    default writes the stated resolutions (T1w 1 mm). `effects`: config `simulate.effects`
    (None: the defaults, the harder cohort). `template`: the head model file of this
    voxel_scale (rule simulate_template); None builds it in process (the same arrays).
    """
    if split not in SPLITS:
        raise ValueError(f"sub-{subject}: split {split!r} is not one of {SPLITS} ({out_bids})")
    if not subject.isalnum() or voxel_scale <= 0:
        raise ValueError(
            f"sub-{subject}: needs an alphanumeric id and voxel_scale > 0, got {voxel_scale}"
        )
    if not isinstance(effects, EffectSettings):
        try:
            effects = EffectSettings.from_config(effects)
        except (TypeError, ValueError) as err:
            raise ValueError(f"sub-{subject}: bad simulate.effects ({out_bids}): {err}") from err
    t0 = time.perf_counter()
    bids = Path(out_bids)
    model, head = draw_subject(subject, split, seed, voxel_scale, ictal, effects, template)
    rng = np.random.default_rng(seed + 1_000_003)  # noise stream, separate from the anatomy
    tissues, brain = subject_tissues(model, head)
    maps = activity_maps(model, head, tissues, names=tuple(model.grids))
    gm_level = {"pet": 4.0, "spect": 2.5, "ictal": 2.5}
    # Day-to-day: the ictal scan's injected dose and timing scale all its counts.
    count_factor = {"spect": 1.0, "ictal": model.effects.ictal_global_factor}
    paths = bids_paths(bids, subject)
    tdir = truth_dir(bids, subject)
    images = {}
    brain_01 = brain.view(np.uint8)  # 0/1: interpolated as the float 0/1 volume, in double
    for name, grid in model.grids.items():
        signal, mask = sample_on_grid([maps[name], brain_01], head, model, grid)
        mask = mask > 0.5
        if name == "T1w":
            data = signal * _bias_field(grid.shape, rng) * T1_WM_SIGNAL
            noise = rng.normal(0, 0.025 * T1_WM_SIGNAL, (2, *grid.shape)).astype(np.float32)
            data = np.sqrt((data + noise[0]) ** 2 + noise[1] ** 2)  # Rician magnitude noise
            data = np.clip(np.round(data), 0, 32767).astype(np.int16)
        elif name == "pet":
            data = signal * (PET_GM_KBQ / gm_level["pet"])
            data = data + rng.normal(0, 0.03 * PET_GM_KBQ, grid.shape) * (signal > 0.02)
            data = np.clip(data, 0, None).astype(np.float32)
        else:
            expected = signal * (SPECT_GM_COUNTS / gm_level["spect"] * count_factor[name])
            data = rng.poisson(np.clip(expected, 0, None)).astype(np.int16)
            if name == "spect":
                save_nifti(
                    expected.astype(np.float32),
                    Layout(Path(), bids).simulation_noiseless(subject),
                    affine=grid.affine,
                )
        save_nifti(data, paths[name], affine=grid.affine)
        if name != "ictal":
            mask_path = tdir / f"sub-{subject}_space-{name}_desc-brain_mask.nii.gz"
            save_nifti(mask.astype(np.uint8), mask_path, affine=grid.affine)
            _write_mask_sidecar(mask_path, paths[name], bids)
        images[name] = data
    truth = _truth(model)
    write_json(truth, Layout(Path(), bids).simulation_truth(subject))
    _write_sidecars(model, truth, paths)
    if qc_png is not None:
        from workflow_scripts.simulate.qc import as_read_back, simulation_qc

        written = {n: as_read_back(images[n], model.grids[n].affine) for n in images}
        simulation_qc(paths, subject, split, Path(qc_png), truth, images=written)
    log.info("sub-%s simulated in %.1f s", subject, time.perf_counter() - t0)
    return truth


def _truth(model: SubjectModel) -> dict:
    d = model.deformation
    truth = {
        "subject": model.subject,
        "split": model.split,
        "seed": model.seed,
        "convention": "x_image_world = world_from_anatomy @ p_anatomy (mm, homogeneous)",
        "images": {
            name: {"world_from_anatomy": g.world_from_anatomy.tolist(), "affine": g.affine.tolist()}
            for name, g in model.grids.items()
        },
        "focus_anatomy_mm": d.inverse(model.focus_template_mm).ravel().tolist(),
        "focus_template_mm": model.focus_template_mm.tolist(),
        "focus_radius_mm": model.focus_radius_mm,
    }
    if model.cavity_template_mm is not None:
        truth["cavity_anatomy_mm"] = d.inverse(model.cavity_template_mm).ravel().tolist()
        truth["cavity_radius_mm"] = model.cavity_radius_mm
    truth["effects"] = _effects_truth(model)
    return truth


def _effects_truth(model: SubjectModel) -> dict:
    """Every drawn effect (template and anatomy frames) and the settings it was drawn from."""
    d, e = model.deformation, model.effects

    def anatomy(point: np.ndarray) -> list[float]:
        return d.inverse(point).ravel().tolist()

    propagation = None
    if e.propagation is not None:
        p = e.propagation
        propagation = {
            "anatomy_mm": anatomy(p.template_mm),
            "template_mm": p.template_mm.tolist(),
            "radius_mm": p.radius_mm,
            "increase": p.increase,
            "distance_from_focus_mm": float(
                np.linalg.norm(p.template_mm - model.focus_template_mm)
            ),
        }
    return {
        "ictal_increase": e.ictal_increase,
        "interictal_hypoperfusion": e.interictal_hypoperfusion,
        "pet_hypometabolism": e.pet_hypometabolism,
        "pet_focus_anatomy_mm": anatomy(e.pet_focus_template_mm),
        "pet_focus_template_mm": e.pet_focus_template_mm.tolist(),
        "pet_focus_radius_mm": e.pet_focus_radius_mm,
        "pet_focus_offset_mm": float(
            np.linalg.norm(e.pet_focus_template_mm - model.focus_template_mm)
        ),
        "propagation": propagation,
        "ictal_global_factor": e.ictal_global_factor,
        "ictal_regional_sd": model.settings.day_to_day_regional,
        "tracer_regions": tracer_table() if model.settings.tracer_regions else [],
        "settings": model.settings.as_dict(),
        "frames": "template_mm: MNI152 frame; anatomy_mm: the subject's anatomy frame",
    }


def focus_world(truth: dict, image: str) -> np.ndarray:
    """The focus centre in an image's scanner world (mm)."""
    return point_in_world(truth, image, "focus_anatomy_mm")


def _package_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _software_version() -> str:
    return _package_version("spectsynth")


# Every acquisition parameter below is a *nominal* value of the protocol the simulator imitates
# (no MR physics, no photon transport, no reconstruction is simulated); SIMULATION_NOTE says so in
# each sidecar. Keys that cannot apply are left out (see write_dataset's README).
SIMULATION_NOTE = (
    "Simulated image (spectsynth). Acquisition parameters are nominal values of the clinical "
    "protocol the simulation imitates; no scanner, pulse sequence or reconstruction was simulated."
)
NOT_APPLICABLE = "n/a (simulated data)"

# FDG-PET: a static brain scan, 10 min starting 30 min after a bolus injection at time zero.
F18_HALF_LIFE_S = 6586.2
PET_INJECTED_MBQ = 185.0
PET_SCAN_START_S = 1800.0
PET_FRAME_DURATION_S = 600.0
FDG_MOLECULAR_WEIGHT_G_PER_MOL = 181.15


def frame_decay_correction_factor(start_s: float, duration_s: float, half_life_s: float) -> float:
    """Factor that corrects a frame's mean activity for decay back to time zero.

    The frame integrates A0 exp(-lambda t) over [start, start + duration]; its mean is
    A0 exp(-lambda start) (1 - exp(-lambda duration)) / (lambda duration).
    """
    lam = np.log(2.0) / half_life_s
    kept = np.exp(-lam * start_s) * -np.expm1(-lam * duration_s) / (lam * duration_s)
    return float(1.0 / kept)


def _institution() -> dict:
    return {
        "InstitutionName": NOT_APPLICABLE,
        "InstitutionAddress": NOT_APPLICABLE,
        "InstitutionalDepartmentName": NOT_APPLICABLE,
        "DeviceSerialNumber": NOT_APPLICABLE,
        "StationName": NOT_APPLICABLE,
        "SoftwareVersions": f"spectsynth {_software_version()}",
    }


def t1w_sidecar() -> dict:
    """T1w: nominal 3 T MPRAGE (TE 2.98 ms, flip 9 deg, 240 Hz/pixel over 256 readout points)."""
    return {
        "Modality": "MR",
        "Manufacturer": "spectsynth simulator",
        "ManufacturersModelName": "spectsynth simulated MRI",
        **_institution(),
        "MagneticFieldStrength": 3,
        "MRAcquisitionType": "3D",
        "PulseSequenceType": "MPRAGE-like (simulated)",
        "PulseSequenceDetails": "none: T1-weighted contrast simulated from tissue maps",
        "ScanningSequence": "GR_IR",
        "SequenceVariant": "SK_SP_MP",
        "SequenceName": "simulated MPRAGE",
        "EchoTime": 0.00298,
        "FlipAngle": 9,
        "DwellTime": round(1.0 / (240.0 * 256), 9),
        "NonlinearGradientCorrection": False,
        "ReceiveCoilName": NOT_APPLICABLE,
        "ReceiveCoilActiveElements": NOT_APPLICABLE,
        "MatrixCoilMode": NOT_APPLICABLE,
        "CoilCombinationMethod": NOT_APPLICABLE,
    }


def pet_sidecar() -> dict:
    """FDG-PET: every key BIDS-PET requires, plus the recommended ones that apply to a static
    bolus FDG scan (FDG's injected mass, specific and molar activity are not available, as the
    specification allows; infusion and pharmaceutical keys do not apply)."""
    start, duration = PET_SCAN_START_S, PET_FRAME_DURATION_S
    return {
        "Modality": "PT",
        "Manufacturer": "spectsynth simulator",
        "ManufacturersModelName": "spectsynth simulated PET",
        **_institution(),
        "BodyPart": "BRAIN",
        "Units": "kBq/mL",
        # radiochemistry
        "TracerName": "FDG",
        "TracerRadionuclide": "F18",
        "TracerMolecularWeight": FDG_MOLECULAR_WEIGHT_G_PER_MOL,
        "TracerMolecularWeightUnits": "g/mol",
        "InjectedRadioactivity": PET_INJECTED_MBQ,
        "InjectedRadioactivityUnits": "MBq",
        "InjectedMass": "n/a",
        "InjectedMassUnits": "n/a",
        "SpecificRadioactivity": "n/a",
        "SpecificRadioactivityUnits": "n/a",
        "ModeOfAdministration": "bolus",
        "InjectedVolume": 5.0,
        "Purity": 99.0,
        # time: time zero is the injection; one static frame
        "TimeZero": "10:00:00",
        "InjectionStart": 0.0,
        "InjectionEnd": 10.0,
        "ScanStart": start,
        "FrameTimesStart": [start],
        "FrameDuration": [duration],
        # reconstruction: the simulator's image model, a Gaussian resolution of PET_FWHM_MM
        "AcquisitionMode": "static (simulated)",
        "ImageDecayCorrected": True,
        "ImageDecayCorrectionTime": 0.0,
        "DecayCorrectionFactor": [
            round(frame_decay_correction_factor(start, duration, F18_HALF_LIFE_S), 6)
        ],
        "ReconMethodName": "none: simulated activity image (no reconstruction)",
        "ReconMethodParameterLabels": ["none"],
        "ReconMethodParameterUnits": ["none"],
        "ReconMethodParameterValues": [0],
        "ReconMethodImplementationVersion": f"spectsynth {_software_version()}",
        "ReconFilterType": "Gaussian",
        "ReconFilterSize": PET_FWHM_MM,
        "AttenuationCorrection": "none: attenuation was not simulated",
        "AttenuationCorrectionMethodReference": NOT_APPLICABLE,
        "ScaleFactor": [1.0],
        "ScatterFraction": [0.0],
        "RandomRate": [0.0],
        "DoseCalibrationFactor": 1.0,
    }


def spect_sidecar(acquisition: str) -> dict:
    """HMPAO SPECT (not a BIDS datatype yet: listed in .bidsignore), in the PET sidecar's style."""
    return {
        "Modality": "NM",
        "Manufacturer": "spectsynth simulator",
        "ManufacturersModelName": "spectsynth simulated SPECT",
        "BodyPart": "BRAIN",
        "TracerName": "HMPAO",
        "TracerRadionuclide": "Tc99m",
        "Units": "counts",
        "Acquisition": acquisition,
        "ReconFilterType": "Gaussian",
        "ReconFilterSize": SPECT_FWHM_MM,
    }


def _write_sidecars(model: SubjectModel, truth: dict, paths: dict[str, Path]) -> None:
    common = {"SimulationSeed": model.seed, "SimulationNote": SIMULATION_NOTE}
    sidecars = {
        "T1w": {
            **t1w_sidecar(),
            "FocusCentreWorldMM": focus_world(truth, "T1w").round(2).tolist(),
        },
        "pet": pet_sidecar(),
        "spect": spect_sidecar("interictal"),
        "ictal": spect_sidecar("ictal"),
    }
    for name, path in paths.items():
        if name in model.grids:
            side = {**sidecars[name], **common}
            write_json(side, path.with_name(path.name.replace(".nii.gz", ".json")))


def _write_mask_sidecar(mask: Path, image: Path, bids: Path) -> None:
    """BIDS-Derivatives sidecar of a brain mask: it lies on the grid of the raw image it names."""
    raw = f"bids:raw:{image.relative_to(bids).as_posix()}"
    write_json(
        {
            "Type": "Brain",
            "Description": "Simulated brain mask (ground truth) on the grid of its raw image",
            "Sources": [raw],
            "SpatialReference": raw,
        },
        mask.with_name(mask.name.replace(".nii.gz", ".json")),
    )


BIDS_VERSION = "1.9.0"
HED_VERSION = "8.3.0"  # bundled with the validator: no download
DEFAULT_AUTHORS = ("spectsynth developers",)

# Non-BIDS content of the raw dataset, for the validator (gitignore-style patterns).
BIDSIGNORE = """\
# SPECT is not a BIDS datatype yet (see README): ictal and interictal SPECT live in spect/.
# No trailing slash: bids-validator 3.0.2 still reports a directory matched by "spect/".
**/spect
"""
# Ground-truth files that no BIDS-Derivatives suffix describes.
DERIVATIVES_BIDSIGNORE = """\
*_desc-noiseless_spect.nii.gz
*_desc-truth_transforms.json
"""

PARTICIPANTS_JSON = {
    "participant_id": {"Description": "Unique participant label"},
    "split": {
        "Description": "Which part of the study the subject belongs to (subject-level split)",
        "Levels": {
            "train": "used to train the SPECT synthesis models",
            "test": "held out; its SPECT is synthesised and compared with the real one",
            "validation": (
                "held out; simulated after a resection (a cavity without uptake), synthesised "
                "and compared with the real SPECT"
            ),
            "predict": "SPECT synthesised from the subject's inputs only; not evaluated",
        },
    },
    "age": {"Description": "Age of the participant at the scans", "Units": "year"},
    "sex": {"Description": "Sex of the participant", "Levels": {"F": "female", "M": "male"}},
}


def _readme(n_subjects: int) -> str:
    return f"""\
# spectsynth simulated epilepsy cohort

A simulated dataset of {n_subjects} subjects written by spectsynth (rules/simulate.smk) to run
its pipeline without patient data. Nothing here was acquired from a person or a scanner.

Per subject, from the MNI152 template and tissue maps that nilearn ships, with a random smooth
deformation (so anatomy differs between subjects):

- `anat/sub-<label>_T1w.nii.gz`: T1-weighted MRI (bias field, Rician noise), stored sagittally.
- `pet/sub-<label>_trc-FDG_pet.nii.gz`: static FDG-PET in kBq/mL (grey:white about 4:1, 5 mm
  resolution), one 10-minute frame starting 30 minutes after a bolus injection.
- `spect/sub-<label>_acq-interictal_spect.nii.gz` and `_acq-ictal_spect.nii.gz`: HMPAO SPECT in
  counts (grey:white about 2.5:1, 10 mm resolution, Poisson noise). SPECT is not a BIDS datatype
  yet, so `spect/` is listed in `.bidsignore`; its sidecars follow the PET conventions.

Each image has its own pose, orientation, voxel size and matrix, as in a hospital archive.
Sidecar acquisition parameters are nominal values of the protocol each image imitates (see
`SimulationNote` in every sidecar). PET keys that cannot apply are left out: injected mass per
weight and molar activity (not available for FDG, like InjectedMass and SpecificRadioactivity,
which are "n/a"), infusion keys (bolus injection), pharmaceutical keys (none was given), prompt
and singles rates (no detector was simulated) and the tracer's RadLex and SNOMED codes.

`participants.tsv` gives each subject's `split` (train / test / validation / predict; see
`participants.json`). `derivatives/simulation/` holds the ground truth: brain masks, the
noiseless interictal SPECT and the poses and epileptogenic focus of every image.
"""


def write_dataset(
    bids: str | Path,
    participants: list[tuple[str, str]],
    seed: int,
    *,
    authors: tuple[str, ...] = DEFAULT_AUTHORS,
) -> None:
    """The dataset-level files of the simulated cohort, so that it passes the BIDS validator:
    participants.tsv (with split) and .json, dataset_description.json, README, .bidsignore; and
    derivatives/simulation's dataset_description.json, README and .bidsignore."""
    bids = Path(bids)
    rng = np.random.default_rng(seed)
    lines = ["participant_id\tsplit\tage\tsex"]
    for pid, split in participants:
        lines.append(f"{pid}\t{split}\t{int(rng.integers(18, 65))}\t{rng.choice(['F', 'M'])}")
    bids.mkdir(parents=True, exist_ok=True)
    generated_by = {
        "Name": "spectsynth",
        "Version": _software_version(),
        "Description": "simulated demo cohort (rules/simulate.smk)",
    }
    template = {
        "URL": "https://www.bic.mni.mcgill.ca/ServicesAtlases/ICBM152NLin2009",
        "Version": "MNI152 ICBM 2009 template and tissue maps shipped with nilearn "
        + _package_version("nilearn"),
    }
    write_text("\n".join(lines) + "\n", bids / "participants.tsv")
    write_json(PARTICIPANTS_JSON, bids / "participants.json")
    write_text(_readme(len(participants)), bids / "README")
    write_text(BIDSIGNORE, bids / ".bidsignore")
    write_json(
        {
            "Name": "spectsynth simulated epilepsy cohort",
            "BIDSVersion": BIDS_VERSION,
            "DatasetType": "raw",
            "License": "CC0",
            "Authors": list(authors),
            "GeneratedBy": [generated_by],
            "SourceDatasets": [template],
            "HEDVersion": HED_VERSION,  # no HED annotations; declared as BIDS recommends
        },
        bids / "dataset_description.json",
    )
    deriv = bids / SIMULATION_DIR
    write_json(
        {
            "Name": "spectsynth simulation ground truth",
            "BIDSVersion": BIDS_VERSION,
            "DatasetType": "derivative",
            "License": "CC0",
            "Authors": list(authors),
            "GeneratedBy": [generated_by],
            "SourceDatasets": [{"URL": "bids:raw:"}],
            "DatasetLinks": {"raw": "../../"},
        },
        deriv / "dataset_description.json",
    )
    write_text(
        "# spectsynth simulation ground truth\n\n"
        "Per subject: brain masks on each raw image's grid (`space-<image>`), the noiseless "
        "expected interictal SPECT, and `desc-truth_transforms.json` (image poses, focus and "
        "cavity; see workflow_scripts/simulate/subject.py).\n",
        deriv / "README",
    )
    write_text(DERIVATIVES_BIDSIGNORE, deriv / ".bidsignore")
