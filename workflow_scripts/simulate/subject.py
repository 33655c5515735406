"""Write one simulated subject as BIDS, with its ground truth under derivatives/simulation.

Truth file `derivatives/simulation/sub-XX/sub-XX_desc-truth_transforms.json`:
- "images": {"T1w"|"pet"|"spect"|"ictal": {"world_from_anatomy": 4x4}}: a point p of the
  subject's anatomy frame (mm) lies at W @ p in that image's scanner world (mm). A point x_T1 in
  T1w world therefore lies at inv(W_T1) then W_pet in PET world: x_pet = W_pet @ inv(W_T1) @ x_T1.
- "focus_anatomy_mm", "focus_radius_mm", and for validation subjects "cavity_anatomy_mm",
  "cavity_radius_mm" (anatomy frame).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from workflow_scripts.cohort import SPLITS
from workflow_scripts.nifti_io import save_nifti, write_json, write_text
from workflow_scripts.simulate.modalities import (
    SubjectModel,
    activity_maps,
    draw_subject,
    sample_on_grid,
    subject_tissues,
)

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
    s = f"sub-{subject}"
    return {
        "T1w": bids / s / "anat" / f"{s}_T1w.nii.gz",
        "pet": bids / s / "pet" / f"{s}_trc-FDG_pet.nii.gz",
        "spect": bids / s / "spect" / f"{s}_acq-interictal_spect.nii.gz",
        "ictal": bids / s / "spect" / f"{s}_acq-ictal_spect.nii.gz",
    }


def truth_dir(bids: Path, subject: str) -> Path:
    return bids / "derivatives" / "simulation" / f"sub-{subject}"


def simulate_subject(
    subject: str,
    split: str,
    seed: int,
    out_bids: str | Path,
    ictal: bool = True,
    voxel_scale: float = 1.0,
    qc_png: str | Path | None = None,
) -> dict:
    """Simulate and write one subject; returns the truth dictionary.

    voxel_scale > 1 coarsens the anatomy and the MRI/PET grids (e.g. 3 for fast tests); the
    default writes the stated resolutions (T1w 1 mm).
    """
    if split not in SPLITS:
        raise ValueError(f"sub-{subject}: split {split!r} is not one of {SPLITS} ({out_bids})")
    if not subject.isalnum() or voxel_scale <= 0:
        raise ValueError(
            f"sub-{subject}: needs an alphanumeric id and voxel_scale > 0, got {voxel_scale}"
        )
    t0 = time.perf_counter()
    bids = Path(out_bids)
    model, head = draw_subject(subject, split, seed, voxel_scale, ictal)
    rng = np.random.default_rng(seed + 1_000_003)  # noise stream, separate from the anatomy
    tissues, brain = subject_tissues(model, head)
    maps = activity_maps(model, head, tissues)
    gm_level = {"pet": 4.0, "spect": 2.5, "ictal": 2.5}
    paths = bids_paths(bids, subject)
    tdir = truth_dir(bids, subject)
    images = {}
    for name, grid in model.grids.items():
        signal, mask = sample_on_grid([maps[name], brain.astype(np.float32)], head, model, grid)
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
            expected = signal * (SPECT_GM_COUNTS / gm_level["spect"])
            data = rng.poisson(np.clip(expected, 0, None)).astype(np.int16)
            if name == "spect":
                save_nifti(
                    expected.astype(np.float32),
                    tdir / f"sub-{subject}_acq-interictal_desc-noiseless_spect.nii.gz",
                    affine=grid.affine,
                )
        save_nifti(data, paths[name], affine=grid.affine)
        if name != "ictal":
            space = name
            save_nifti(
                mask.astype(np.uint8),
                tdir / f"sub-{subject}_space-{space}_desc-brain_mask.nii.gz",
                affine=grid.affine,
            )
        images[name] = data
    truth = _truth(model)
    write_json(truth, tdir / f"sub-{subject}_desc-truth_transforms.json")
    _write_sidecars(model, truth, paths)
    if qc_png is not None:
        from workflow_scripts.simulate.qc import simulation_qc

        simulation_qc(paths, subject, split, Path(qc_png), truth)
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
    return truth


def focus_world(truth: dict, image: str) -> np.ndarray:
    """The focus centre in an image's scanner world (mm)."""
    w = np.array(truth["images"][image]["world_from_anatomy"])
    return w[:3, :3] @ np.array(truth["focus_anatomy_mm"]) + w[:3, 3]


def _write_sidecars(model: SubjectModel, truth: dict, paths: dict[str, Path]) -> None:
    common = {"Manufacturer": "spectsynth simulator", "SimulationSeed": model.seed}
    sidecars = {
        "T1w": {
            "Modality": "MR",
            "MRAcquisitionType": "3D",
            "PulseSequenceType": "MPRAGE-like (simulated)",
            "FocusCentreWorldMM": focus_world(truth, "T1w").round(2).tolist(),
        },
        "pet": {
            "Modality": "PT",
            "TracerName": "FDG",
            "Units": "kBq/mL",
            "ReconFilterSize": 5.0,
        },
        "spect": {
            "Modality": "NM",
            "TracerName": "HMPAO",
            "Units": "counts",
            "Acquisition": "interictal",
        },
        "ictal": {
            "Modality": "NM",
            "TracerName": "HMPAO",
            "Units": "counts",
            "Acquisition": "ictal",
        },
    }
    for name, path in paths.items():
        if name in model.grids:
            side = {**common, **sidecars[name]}
            write_json(side, path.with_name(path.name.replace(".nii.gz", ".json")))


def write_dataset(bids: str | Path, participants: list[tuple[str, str]], seed: int) -> None:
    """participants.tsv (with split), dataset_description.json and the derivatives description."""
    bids = Path(bids)
    rng = np.random.default_rng(seed)
    lines = ["participant_id\tsplit\tage\tsex"]
    for pid, split in participants:
        lines.append(f"{pid}\t{split}\t{int(rng.integers(18, 65))}\t{rng.choice(['F', 'M'])}")
    bids.mkdir(parents=True, exist_ok=True)
    write_text("\n".join(lines) + "\n", bids / "participants.tsv")
    write_json(
        {
            "Name": "spectsynth simulated epilepsy cohort",
            "BIDSVersion": "1.9.0",
            "DatasetType": "raw",
            "License": "CC0",
            "GeneratedBy": [{"Name": "spectsynth", "Description": "rules/simulate.smk"}],
        },
        bids / "dataset_description.json",
    )
    write_json(
        {
            "Name": "spectsynth simulation ground truth",
            "BIDSVersion": "1.9.0",
            "DatasetType": "derivative",
            "GeneratedBy": [{"Name": "spectsynth"}],
        },
        bids / "derivatives" / "simulation" / "dataset_description.json",
    )


def simulate_job(smk) -> None:
    """Snakemake entry (rule simulate_subject)."""
    simulate_subject(
        smk.wildcards.subject,
        smk.params.split,
        smk.params.seed,
        smk.params.bids,
        ictal=smk.params.ictal,
        voxel_scale=smk.params.voxel_scale,
        qc_png=smk.output.qc,
    )


def dataset_job(smk) -> None:
    """Snakemake entry (rule simulate_dataset)."""
    write_dataset(smk.params.bids, smk.params.participants, smk.params.seed)
