"""Preprocessing against the simulator's truth: skull strip, SPECT mask and registration accuracy,
lossless reorientation, the BET backends, and failures that must not pass silently."""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from workflow_scripts.masks import dice
from workflow_scripts.nifti_io import save_nifti
from workflow_scripts.preprocess import registration as reg
from workflow_scripts.preprocess.reorient import reorient
from workflow_scripts.preprocess.skullstrip import (
    SkullStripError,
    make_bet,
    resolve_backend,
    skull_strip,
)
from workflow_scripts.preprocess.spect_mask import spect_brain_mask
from workflow_scripts.simulate import bids_paths, simulate_subject, truth_dir

CFG = {
    "shrink_factors": [4, 2, 1],
    "smoothing_sigmas": [2, 1, 0],
    "iterations": [100, 50, 25],
    "sampling": 0.2,
    "min_mask_dice": 0.75,
}


def truth_on(img_path: Path, truth_mask: Path) -> np.ndarray:
    """The truth mask (scanner grid) in the voxel order of a reoriented image."""
    return np.asarray(nib.as_closest_canonical(nib.load(truth_mask)).dataobj) > 0


@pytest.fixture(scope="module")
def subject(tmp_path_factory):
    """One simulated subject at 2 mm, preprocessed up to the rigid registrations."""
    root = tmp_path_factory.mktemp("pre")
    bids = root / "bids"
    simulate_subject("05", "train", 21, bids, ictal=False, voxel_scale=2.0)
    raw = bids_paths(bids, "05")
    out, records = {}, {}
    for mod in ("T1w", "pet", "spect"):
        out[mod] = root / f"{mod}_reoriented.nii.gz"
        reorient(raw[mod], out[mod], "05", mod)
    for mod, frac in (("T1w", 0.5), ("pet", 0.5)):
        records[mod] = skull_strip(
            out[mod],
            root / f"{mod}_brain.nii.gz",
            root / f"{mod}_mask.nii.gz",
            subject="05",
            modality=mod,
            backend="python",
            frac=frac,
        )
    spect = nib.load(out["spect"])
    mask, _ = spect_brain_mask(spect, subject="05")
    save_nifti(mask.astype(np.uint8), root / "spect_mask.nii.gz", affine=spect.affine)
    save_nifti(spect.get_fdata() * mask, root / "spect_brain.nii.gz", affine=spect.affine)
    return {"root": root, "bids": bids, "raw": raw, "re": out, "records": records}


def test_reorientation_is_lossless(subject):
    raw, re = nib.load(subject["raw"]["T1w"]), nib.load(subject["re"]["T1w"])
    assert nib.aff2axcodes(raw.affine) != ("R", "A", "S") and nib.aff2axcodes(re.affine) == (
        "R",
        "A",
        "S",
    )
    assert sorted(raw.shape) == sorted(re.shape)
    assert np.isclose(raw.get_fdata().sum(), re.get_fdata().sum())  # no interpolation
    ijk = np.array([10, 20, 30])
    world = raw.affine @ np.append(ijk, 1)
    back = np.round(np.linalg.inv(re.affine) @ world).astype(int)[:3]
    assert re.get_fdata()[tuple(back)] == raw.get_fdata()[tuple(ijk)]


def test_skull_strip_and_spect_mask_dice(subject):
    root, tdir = subject["root"], truth_dir(subject["bids"], "05")
    t1 = dice(
        np.asarray(nib.load(root / "T1w_mask.nii.gz").dataobj) > 0,
        truth_on(subject["re"]["T1w"], tdir / "sub-05_space-T1w_desc-brain_mask.nii.gz"),
    )
    pet = dice(
        np.asarray(nib.load(root / "pet_mask.nii.gz").dataobj) > 0,
        truth_on(subject["re"]["pet"], tdir / "sub-05_space-pet_desc-brain_mask.nii.gz"),
    )
    spect = dice(
        np.asarray(nib.load(root / "spect_mask.nii.gz").dataobj) > 0,
        truth_on(subject["re"]["spect"], tdir / "sub-05_space-spect_desc-brain_mask.nii.gz"),
    )
    assert t1 >= 0.95, t1
    assert pet >= 0.90, pet
    assert spect >= 0.90, spect
    side = subject["records"]["T1w"]
    assert side["backend"] == "python" and 500 < side["brain_volume_ml"] < 2500


def landmarks(mask_path: Path) -> np.ndarray:
    """8 points spread over the brain: centroid +/- 25 mm along each axis combination."""
    centre = reg.mask_centroid(nib.load(mask_path))
    offsets = np.array([[x, y, z] for x in (-25, 25) for y in (-25, 25) for z in (-25, 25)], float)
    return centre + offsets


@pytest.mark.parametrize("mod", ["pet", "spect"])
def test_rigid_registration_landmark_error(subject, mod, tmp_path):
    root = subject["root"]
    moving_mask = root / ("pet_mask.nii.gz" if mod == "pet" else "spect_mask.nii.gz")
    xfm = tmp_path / f"{mod}.mat"
    reg.set_threads(1)

    def register(out: Path) -> dict:
        return reg.register(
            nib.load(root / "T1w_brain.nii.gz"),
            nib.load(root / f"{mod}_brain.nii.gz"),
            out,
            kind="Rigid",
            cfg=CFG,
            label=f"sub-05 {mod}",
            fixed_mask=nib.load(root / "T1w_mask.nii.gz"),
            moving_mask=nib.load(moving_mask),
        )

    record = register(xfm)
    if mod == "spect":  # seeded metric sampling: a rerun gives the same transform
        register(tmp_path / "again.mat")
        assert (tmp_path / "again.mat").read_bytes() == xfm.read_bytes()
    truth = json.loads(
        (truth_dir(subject["bids"], "05") / "sub-05_desc-truth_transforms.json").read_text()
    )
    w = {k: np.array(v["world_from_anatomy"]) for k, v in truth["images"].items()}
    pts = landmarks(root / "T1w_mask.nii.gz")
    true = (w[mod] @ np.linalg.inv(w["T1w"]) @ np.c_[pts, np.ones(8)].T).T[:, :3]
    error = np.linalg.norm(reg.map_points(xfm, pts) - true, axis=1).mean()
    assert error <= 2.0, (error, record)
    assert record["mask_dice"] >= 0.85


def test_moving_image_on_the_working_grid_keeps_accuracy(subject, tmp_path):
    """moving_working_mm (the MRI -> template registration) registers a resampled copy of the
    moving image: its voxel size is recorded and the transform still maps the subject's own
    landmarks to where the simulator put them (here the 2 mm MRI onto its PET, at 3 mm)."""
    root = subject["root"]
    xfm = tmp_path / "mri_to_pet.mat"
    reg.set_threads(1)
    record = reg.register(
        nib.load(root / "pet_brain.nii.gz"),
        nib.load(root / "T1w_brain.nii.gz"),
        xfm,
        kind="Rigid",
        cfg=CFG,
        label="sub-05 T1w -> pet",
        fixed_mask=nib.load(root / "pet_mask.nii.gz"),
        moving_mask=nib.load(root / "T1w_mask.nii.gz"),
        working_mm=3.0,
        moving_working_mm=3.0,
    )
    assert record["voxel_mm"]["moving"] == pytest.approx(3.0)
    truth = json.loads(
        (truth_dir(subject["bids"], "05") / "sub-05_desc-truth_transforms.json").read_text()
    )
    w = {k: np.array(v["world_from_anatomy"]) for k, v in truth["images"].items()}
    pts = landmarks(root / "T1w_mask.nii.gz")  # world points of the MRI ...
    in_pet = (w["pet"] @ np.linalg.inv(w["T1w"]) @ np.c_[pts, np.ones(8)].T).T[:, :3]
    # ... seen from the PET (the fixed space here) map back onto themselves
    error = np.linalg.norm(reg.map_points(xfm, in_pet) - pts, axis=1).mean()
    assert error <= 2.0, (error, record)


def test_registrations_from_the_working_grid_files_are_the_same(subject, tmp_path):
    """rule working_grid writes the MRI and its mask on the working grid once; registering from
    those files (fixed, as for PET/SPECT -> MRI; moving, as for MRI -> MNI152) gives the very
    transform, byte for byte, and the same overlap as resampling the MRI in the job."""
    root = subject["root"]
    mri, mri_mask = root / "T1w_brain.nii.gz", root / "T1w_mask.nii.gz"
    grid, grid_mask = tmp_path / "grid_T1w.nii.gz", tmp_path / "grid_mask.nii.gz"
    reg.set_threads(1)
    reg.write_working_grid(mri, mri_mask, 3.0, grid, grid_mask)  # the 2 mm MRI at 3 mm
    assert nib.load(grid).header.get_zooms() == pytest.approx((3.0, 3.0, 3.0))
    pet, pet_mask = nib.load(root / "pet_brain.nii.gz"), nib.load(root / "pet_mask.nii.gz")

    def both(out: str, **kw) -> tuple[dict, bytes]:
        record = reg.register(
            kind="Rigid", cfg=CFG, label=out, transform_out=tmp_path / out, working_mm=3.0, **kw
        )
        return record, (tmp_path / out).read_bytes()

    as_fixed = [
        both(name, fixed=fixed, moving=pet, fixed_mask=fixed_mask, moving_mask=pet_mask)
        for name, fixed, fixed_mask in (
            ("job.mat", nib.load(mri), nib.load(mri_mask)),
            ("files.mat", grid, grid_mask),
        )
    ]
    as_moving = [
        both(name, fixed=pet, moving=moving, fixed_mask=pet_mask, moving_mask=nib.load(mri_mask),
             moving_working_mm=3.0)
        for name, moving in (("job_moving.mat", nib.load(mri)), ("files_moving.mat", grid))
    ]  # fmt: skip
    for (job, job_xfm), (files, files_xfm) in (as_fixed, as_moving):
        assert job_xfm == files_xfm
        assert job["mask_dice"] == files["mask_dice"] and job["voxel_mm"] == files["voxel_mm"]


def test_failed_registration_is_caught(subject, tmp_path):
    """A PET whose header halves its voxel size (a real archive fault) cannot be aligned by a
    rigid transform; the overlap check must stop it instead of shipping it."""
    root = subject["root"]
    pet = nib.load(root / "pet_brain.nii.gz")
    bad_affine = pet.affine.copy()
    bad_affine[:3, :3] *= 0.5
    bad = nib.Nifti1Image(pet.get_fdata(), bad_affine)
    bad_mask = nib.Nifti1Image(nib.load(root / "pet_mask.nii.gz").get_fdata(), bad_affine)
    with pytest.raises(reg.RegistrationError, match="sub-05 pet.*similarity check"):
        reg.register(
            nib.load(root / "T1w_brain.nii.gz"),
            bad,
            tmp_path / "bad.mat",
            kind="Rigid",
            cfg=CFG,
            label="sub-05 pet",
            fixed_mask=nib.load(root / "T1w_mask.nii.gz"),
            moving_mask=bad_mask,
        )
    assert not (tmp_path / "bad.mat").exists()


def test_empty_skull_strip_is_an_error(tmp_path):
    img = np.zeros((40, 40, 40), np.float32)
    img[18:22, 18:22, 18:22] = 100  # 64 ml of 'head': no plausible brain inside
    path = tmp_path / "tiny.nii.gz"
    nib.save(nib.Nifti1Image(img, np.diag([1, 1, 1, 1.0])), path)
    with pytest.raises(SkullStripError, match="sub-x T1w .*tiny.nii.gz.*ml"):
        skull_strip(
            path,
            tmp_path / "b.nii.gz",
            tmp_path / "m.nii.gz",
            subject="x",
            modality="T1w",
            backend="python",
            frac=0.5,
        )
    assert not (tmp_path / "b.nii.gz").exists()


def test_fsl_backend_command_line_and_auto_choice(tmp_path, monkeypatch):
    src = tmp_path / "in.nii.gz"
    nib.save(nib.Nifti1Image(np.ones((4, 4, 4), np.float32), np.eye(4)), src)
    bet = make_bet("fsl", str(src), str(tmp_path / "out.nii.gz"), 0.4, robust=True)
    # nipype may write the input relative to the working directory
    assert re.fullmatch(r"bet \S*in\.nii\.gz \S*out\.nii\.gz -f 0\.40 -m -R", bet.cmdline), (
        bet.cmdline
    )
    assert bet.inputs.output_type == "NIFTI_GZ"
    assert make_bet("fsl", str(src), str(tmp_path / "out.nii"), 0.4).inputs.output_type == "NIFTI"
    monkeypatch.setenv("PATH", str(tmp_path))
    assert resolve_backend("auto") == "python"
    with pytest.raises(SkullStripError, match="not on PATH"):
        resolve_backend("fsl")
    fake = tmp_path / "bet"
    fake.write_text("#!/bin/sh\nexit 0\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}/usr/bin")
    assert resolve_backend("auto") == "fsl"


def test_template_files_are_nilearns_template_and_mask(tmp_path):
    """Template-space jobs read rule template_files' two files instead of importing nilearn:
    they must hold exactly what nilearn loads (values, dtype, grid), so nothing downstream moves."""
    from workflow_scripts.preprocess.spaces import study_grid, template_files, template_mask

    template_files(tmp_path / "t1w.nii.gz", tmp_path / "mask.nii.gz")
    expected = reg.template_brain(2.0)
    for written, want in (
        (nib.load(tmp_path / "t1w.nii.gz"), expected),
        (nib.load(tmp_path / "mask.nii.gz"), template_mask(expected)),
    ):
        assert np.asanyarray(written.dataobj).dtype == np.asanyarray(want.dataobj).dtype
        assert np.array_equal(np.asanyarray(written.dataobj), np.asanyarray(want.dataobj))
        assert np.array_equal(written.affine, want.affine)
        assert int(written.header["sform_code"]) == 4  # MNI152
    # the template grid is centred on the template's brain, as nilearn's mask places it
    grid = study_grid({"shape": [64, 64, 48], "voxel_mm": 3.0}, str(tmp_path / "mask.nii.gz"))
    centre = reg.mask_centroid(template_mask(expected))
    assert np.allclose(nib.affines.apply_affine(grid.affine, [31.5, 31.5, 23.5]), centre)


def test_registration_loads_only_the_antspyx_it_uses():
    """registration._ants() sets antspyx up without its package __init__ (2.3 s of CPU for
    scikit-learn, statsmodels, matplotlib in every job): the functions it uses are the ones
    the whole package exposes, and any other name loads the whole package."""
    import subprocess
    import sys

    names = """
used = ("registration", "image_read", "apply_transforms", "read_transform", "resample_image",
        "resample_image_to_target")
names = [f"{getattr(ants, n).__module__}.{getattr(ants, n).__qualname__}" for n in used]
"""
    lean = f"""
import json, sys
from workflow_scripts.preprocess import registration as reg
ants = reg._ants()
heavy = sorted({{m.split(".")[0] for m in sys.modules}} & {{"sklearn", "statsmodels", "matplotlib"}})
{names}
import ants as again
print(json.dumps([heavy, names, again is ants, callable(ants.plot), "sklearn" in sys.modules]))
"""
    full = f"import json\nimport ants\n{names}\nprint(json.dumps(names))"
    root = Path(__file__).resolve().parents[1]
    lean_out, full_out = (
        json.loads(
            subprocess.run(
                [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True
            ).stdout
        )
        for code in (lean, full)
    )
    heavy, lean_names, same_module, plot, loaded_later = lean_out
    assert heavy == [] and same_module
    assert lean_names == full_out
    assert plot and loaded_later  # a name outside the parts (ants.plotting): the whole package
