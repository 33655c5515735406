"""Time one subject's preprocessing, step by step, at the demo grid and the paper's 1 mm grid,
with the accuracy figures beside the times (truth from the simulator).

    python benchmarks/preprocess.py [--threads 2] [--skip-default]

"before" is antspyx's default `Rigid` (full resolution, default iterations) for the two
native-space registrations; "after" is spectsynth's setting (2 mm working grid, 3 levels).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import yaml

from workflow_scripts.layout import Layout
from workflow_scripts.masks import dice
from workflow_scripts.nifti_io import save_nifti
from workflow_scripts.preprocess import registration as reg
from workflow_scripts.preprocess.reorient import reorient
from workflow_scripts.preprocess.skullstrip import skull_strip
from workflow_scripts.preprocess.spaces import study_grid, template_files, working_resolution
from workflow_scripts.preprocess.spect_mask import spect_brain_mask
from workflow_scripts.simulate import bids_paths, simulate_subject, truth_dir
from workflow_scripts.simulation_truth import read_truth

ROOT = Path(__file__).resolve().parents[1]


def timed(times: dict, name: str, fn, *args, **kwargs):
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    times[name] = times.get(name, 0.0) + time.perf_counter() - t0
    return out


def landmark_error(xfm: Path, mod: str, truth: dict, mri_mask: Path) -> float:
    w = {k: np.array(v["world_from_anatomy"]) for k, v in truth["images"].items()}
    centre = reg.mask_centroid(nib.load(mri_mask))
    pts = centre + np.array(
        [[x, y, z] for x in (-25, 25) for y in (-25, 25) for z in (-25, 25)], float
    )
    true = (w[mod] @ np.linalg.inv(w["T1w"]) @ np.c_[pts, np.ones(8)].T).T[:, :3]
    return float(np.linalg.norm(reg.map_points(xfm, pts) - true, axis=1).mean())


def default_rigid(fixed: Path, moving: Path) -> float:
    import ants

    t0 = time.perf_counter()
    ants.registration(ants.image_read(str(fixed)), ants.image_read(str(moving)), "Rigid")
    return time.perf_counter() - t0


def run(threads: int, skip_default: bool) -> None:
    cfg = yaml.safe_load((ROOT / "config.yaml").read_text())
    paper = yaml.safe_load((ROOT / "paper.yaml").read_text())
    reg.set_threads(threads)
    work = Path(tempfile.mkdtemp(prefix="spectsynth-bench-"))
    t0 = time.perf_counter()
    simulate_subject("01", "train", 101, work / "bids", ictal=False)
    print(f"simulate one subject (T1w 1 mm): {time.perf_counter() - t0:.1f} s")
    raw = bids_paths(work / "bids", "01")
    truth = read_truth(Layout(Path(), work / "bids").simulation_truth("01"))
    times: dict[str, float] = {}
    files = {}
    for mod in ("T1w", "pet", "spect"):
        files[mod] = work / f"{mod}.nii.gz"
        timed(times, "reorient", reorient, raw[mod], files[mod], "01", mod)
    for mod in ("T1w", "pet"):
        sk = cfg["preprocess"]["skullstrip"]
        timed(
            times,
            f"skullstrip {mod}",
            skull_strip,
            files[mod],
            work / f"{mod}_brain.nii.gz",
            work / f"{mod}_mask.nii.gz",
            work / f"{mod}.json",
            subject="01",
            modality=mod,
            backend=sk["backend"],
            frac=sk["frac_mri"] if mod == "T1w" else sk["frac_pet"],
        )
    spect = nib.load(files["spect"])
    mask, _ = timed(times, "spect mask", spect_brain_mask, spect, subject="01")
    save_nifti(mask.astype(np.uint8), work / "spect_mask.nii.gz", affine=spect.affine)
    save_nifti(spect.get_fdata() * mask, work / "spect_brain.nii.gz", affine=spect.affine)
    accuracy = {}
    tdir = truth_dir(work / "bids", "01")
    for mod, key in (("T1w", "T1w"), ("pet", "pet")):
        truth_mask = (
            np.asarray(
                nib.as_closest_canonical(
                    nib.load(tdir / f"sub-01_space-{key}_desc-brain_mask.nii.gz")
                ).dataobj
            )
            > 0
        )
        accuracy[f"Dice skull strip {mod}"] = dice(
            np.asarray(nib.load(work / f"{mod}_mask.nii.gz").dataobj) > 0, truth_mask
        )
    truth_mask = (
        np.asarray(
            nib.as_closest_canonical(
                nib.load(tdir / "sub-01_space-spect_desc-brain_mask.nii.gz")
            ).dataobj
        )
        > 0
    )
    accuracy["Dice SPECT mask"] = dice(mask, truth_mask)
    fixed, fixed_mask = nib.load(work / "T1w_brain.nii.gz"), nib.load(work / "T1w_mask.nii.gz")
    for label, grid_cfg in (
        ("demo", cfg["preprocess"]["grid"]),
        ("paper 1 mm", paper["preprocess"]["grid"]),
    ):
        working = working_resolution(grid_cfg)
        t_native = 0.0
        for mod in ("pet", "spect"):
            t1 = time.perf_counter()
            moving_mask = work / ("pet_mask.nii.gz" if mod == "pet" else "spect_mask.nii.gz")
            reg.register(
                fixed,
                nib.load(work / f"{mod}_brain.nii.gz"),
                work / f"{mod}.mat",
                kind="Rigid",
                cfg=cfg["preprocess"]["registration"],
                label=mod,
                fixed_mask=fixed_mask,
                moving_mask=nib.load(moving_mask),
                working_mm=working,
            )
            t_native += time.perf_counter() - t1
            accuracy[f"landmark error {mod}->MRI ({label}), mm"] = landmark_error(
                work / f"{mod}.mat", mod, truth, work / "T1w_mask.nii.gz"
            )
        times[f"native registrations PET+SPECT ({label})"] = t_native
        template_files(work / "mni_t1w.nii.gz", work / "mni_mask.nii.gz")
        template = nib.load(work / "mni_t1w.nii.gz")
        timed(
            times,
            f"template affine MRI->MNI ({label})",
            reg.register,
            template,
            fixed,
            work / "mni.mat",
            kind="Affine",
            cfg=cfg["preprocess"]["registration"],
            label="mni",
            fixed_mask=nib.load(work / "mni_mask.nii.gz"),
            moving_mask=fixed_mask,
            working_mm=working,
        )
        for space in ("native", "template"):
            centre = "mni_mask" if space == "template" else "T1w_mask"
            grid = study_grid(grid_cfg, str(work / f"{centre}.nii.gz"))
            for mod in ("T1w", "pet", "spect"):
                xfms = ([str(work / "mni.mat")] if space == "template" else []) + (
                    [str(work / f"{mod}.mat")] if mod != "T1w" else []
                )
                timed(
                    times,
                    f"resample 3 images x 2 spaces ({label})",
                    reg.resample,
                    work / f"{mod}_brain.nii.gz",
                    grid,
                    xfms,
                    work / f"out_{space}_{mod}.nii.gz",
                )
    if not skip_default:
        t = sum(
            default_rigid(work / "T1w_brain.nii.gz", work / f"{m}_brain.nii.gz")
            for m in ("pet", "spect")
        )
        times["native registrations PET+SPECT, antspyx default Rigid at 1 mm (before)"] = t
    print(f"\nthreads: {threads}")
    for name, seconds in times.items():
        print(f"{name:75s} {seconds:7.1f} s")
    print()
    for name, value in accuracy.items():
        print(f"{name:75s} {value:7.3f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--skip-default", action="store_true", help="do not time antspyx's default Rigid"
    )
    args = parser.parse_args()
    run(args.threads, args.skip_default)
