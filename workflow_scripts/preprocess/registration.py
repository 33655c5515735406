"""Registration with ANTs (antspyx) and resampling onto the study grids.

- native space: PET/SPECT -> the subject's skull-stripped MRI, rigid (6 dof), Mattes mutual
  information, multi-resolution; the MRI is first resampled to a 2 mm working grid (PET and SPECT
  carry no finer detail), which is what makes 1 mm data fast without losing accuracy.
- template space: MRI -> MNI152 (nilearn's ICBM 2009 brain), affine (12 dof); PET and SPECT
  reach the template through their rigid MRI transform composed with the MRI's affine.
Transforms are ANTs .mat files: with them any result maps back to the subject's scanner space.
ANTs works in LPS physical coordinates; files on disk are NIfTI (RAS), nibabel/ITK convert.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import shutil
import sys
import tempfile
import time
import types
from pathlib import Path

import nibabel as nib
import numpy as np
from nibabel.affines import apply_affine

from workflow_scripts.masks import dice
from workflow_scripts.nifti_io import atomic_path, save_nifti

log = logging.getLogger(__name__)

WORKING_MM = 2.0  # resolution at which PET/SPECT are registered to the MRI
# ANTs seeds its random metric sampling from the clock unless given a seed: fix it, so a rerun
# gives the same transforms (exactly so with one ITK thread, which is what the rules ask for).
RANDOM_SEED = 1


class RegistrationError(RuntimeError):
    """A registration whose result fails the similarity check."""


def set_threads(threads: int) -> None:
    """ITK reads this when a filter starts: one job's threads, so parallel jobs don't fight."""
    os.environ["ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS"] = str(max(1, int(threads)))


# The parts of antspyx these jobs use. Its package __init__ also imports its learning,
# plotting and deep-learning modules (scikit-learn, statsmodels, matplotlib): 2.3 s of CPU in
# every registration job, against 0.4 s for these.
_ANTS_PARTS = ("ants.core", "ants.ops", "ants.registration")


def _ants() -> types.ModuleType:
    """antspyx, loading only _ANTS_PARTS: the package is set up without running its __init__,
    their public names are put on it, and any other attribute loads the whole package first
    (so a later `import ants` elsewhere in the process still sees everything). Where that fails
    (another antspyx layout), the plain import."""
    if "ants" in sys.modules:
        return sys.modules["ants"]
    spec = importlib.util.find_spec("ants")
    pkg = importlib.util.module_from_spec(spec)
    sys.modules["ants"] = pkg
    try:
        for name in _ANTS_PARTS:  # as its __init__ does: `from .<part> import *`, in order
            part = importlib.import_module(name)
            public = [a for a in vars(part) if not a.startswith("_")]
            for attr in getattr(part, "__all__", public):
                setattr(pkg, attr, getattr(part, attr))
    except Exception as err:  # noqa: BLE001 (any failure: the supported way)
        log.debug("antspyx partial load failed (%s): importing the whole package", err)
        for name in [m for m in sys.modules if m == "ants" or m.startswith("ants.")]:
            del sys.modules[name]
        import ants

        return ants

    def whole_package(attr: str):
        del pkg.__getattr__  # run __init__ once; its submodules are already loaded
        spec.loader.exec_module(pkg)
        return getattr(pkg, attr)

    pkg.__getattr__ = whole_package
    return pkg


def grid_image(centre_ras: np.ndarray, shape, voxel_mm: float) -> nib.Nifti1Image:
    """An empty RAS-aligned grid of `shape` voxels of `voxel_mm`, centred on `centre_ras`."""
    affine = np.diag([voxel_mm, voxel_mm, voxel_mm, 1.0])
    affine[:3, 3] = np.asarray(centre_ras) - voxel_mm * (np.asarray(shape) - 1) / 2.0
    return nib.Nifti1Image(np.zeros(tuple(shape), np.float32), affine)


def mask_centroid(mask_img: nib.Nifti1Image) -> np.ndarray:
    ijk = np.argwhere(np.asarray(mask_img.dataobj) > 0).mean(axis=0)
    return apply_affine(mask_img.affine, ijk)


def template_brain(voxel_mm: float = 1.0) -> nib.Nifti1Image:
    """nilearn's MNI152 (ICBM 2009) brain T1, shipped with the package (no download)."""
    from nilearn import datasets

    return datasets.load_mni152_template(resolution=1 if voxel_mm < 1.5 else 2)


def to_ants(img: nib.Nifti1Image, tmp: Path, name: str):
    path = tmp / f"{name}.nii"  # uncompressed: gzip of a 1 mm head costs ~1 s CPU, for nothing
    nib.save(nib.Nifti1Image(np.asarray(img.dataobj, dtype=np.float32), img.affine), path)
    return _ants().image_read(str(path))


# An image to register: a nibabel image, or the path of one already on its working grid
# (write_working_grid), which is read as it is.
Image = nib.Nifti1Image | Path


def on_working_grid(img: Image, working_mm: float | None, tmp: Path, name: str):
    """The ANTs image registered: a working-grid file as written; a nibabel image resampled
    (linear) to working_mm when finer."""
    ants = _ants()
    if isinstance(img, Path):
        return ants.image_read(str(img))
    img_a = to_ants(img, tmp, name)
    if working_mm and min(img_a.spacing) < working_mm - 1e-6:
        img_a = ants.resample_image(img_a, (working_mm,) * 3, use_voxels=False, interp_type=0)
    return img_a


def mask_on(mask: Image, grid, tmp: Path, name: str):
    """A brain mask on an ANTs image's grid (nearest neighbour); a working-grid file as written."""
    ants = _ants()
    if isinstance(mask, Path):
        return ants.image_read(str(mask))
    return ants.resample_image_to_target(
        to_ants(mask, tmp, name), grid, interp_type="nearestNeighbor"
    )


def write_working_grid(
    image: str | Path, mask: str | Path, working_mm: float, out_image: str | Path, out_mask
) -> None:
    """An image and its brain mask on the working grid, as register() would make them, written
    once for the several registrations that share them (a subject's MRI: resampling its 1 mm
    head was a quarter of each registration job). ANTs writes and reads these files back
    exactly (values, origin, spacing, direction), so a registration from them is the same."""
    ants = _ants()
    tmp = Path(tempfile.mkdtemp(prefix="spectsynth-grid-"))
    try:
        grid = on_working_grid(nib.load(image), working_mm, tmp, "image")
        on_grid = mask_on(nib.load(mask), grid, tmp, "mask")
        for img_a, out in ((grid, out_image), (on_grid, out_mask)):
            with atomic_path(out, ".nii.gz") as staged:
                ants.image_write(img_a, str(staged))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def register(
    fixed: Image,
    moving: Image,
    transform_out: str | Path,
    *,
    kind: str,
    cfg: dict,
    label: str,
    fixed_mask: Image,
    moving_mask: nib.Nifti1Image,
    working_mm: float | None = WORKING_MM,
    moving_working_mm: float | None = None,
) -> dict:
    """Register moving to fixed (kind: Rigid | Affine) and write the ANTs transform.

    The similarity check warps the moving image's own brain mask onto the fixed grid; its Dice
    with the fixed brain mask must reach cfg['min_mask_dice'] (a registration that did not
    converge leaves the brains apart), else RegistrationError names the images.
    `working_mm`: the fixed image is resampled to this grid when finer; `moving_working_mm`:
    the same for the moving image (the MRI to the template: ANTs smooths and shrinks the moving
    image at every level, which for a 1 mm head cost more than the optimisation). An image
    given as a path is already on its working grid (write_working_grid; for the fixed image,
    its mask too).
    """
    ants = _ants()
    t0 = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="spectsynth-reg-"))
    try:
        fixed_a = on_working_grid(fixed, working_mm, tmp, "fixed")
        moving_a = on_working_grid(moving, moving_working_mm, tmp, "moving")
        spacing = (fixed_a.spacing, moving_a.spacing)  # the grids ANTs registers on
        reg = ants.registration(
            fixed=fixed_a,
            moving=moving_a,
            type_of_transform=kind,
            aff_metric="mattes",
            aff_sampling=32,
            aff_random_sampling_rate=cfg["sampling"],
            aff_iterations=tuple(cfg["iterations"]),
            aff_shrink_factors=tuple(cfg["shrink_factors"]),
            aff_smoothing_sigmas=tuple(cfg["smoothing_sigmas"]),
            outprefix=str(tmp / "reg_"),
            random_seed=RANDOM_SEED,
        )
        fwd = reg["fwdtransforms"][0]
        fixed_m = mask_on(fixed_mask, fixed_a, tmp, "fm")
        warped_m = ants.apply_transforms(
            fixed=fixed_a,
            moving=to_ants(moving_mask, tmp, "mm"),
            transformlist=[fwd],
            interpolator="nearestNeighbor",
        )
        overlap = dice(fixed_m.numpy() > 0.5, warped_m.numpy() > 0.5)
        with atomic_path(transform_out) as staged:
            shutil.copyfile(fwd, staged)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    seconds = time.perf_counter() - t0
    record = {
        "kind": kind,
        "mask_dice": round(overlap, 4),
        "seconds": round(seconds, 2),
        "voxel_mm": {"fixed": round(min(spacing[0]), 3), "moving": round(min(spacing[1]), 3)},
    }
    log.info("%s: %s registration, brain-mask Dice %.3f, %.1f s", label, kind, overlap, seconds)
    if not overlap >= cfg["min_mask_dice"]:  # NaN (both masks empty) fails too
        Path(transform_out).unlink(missing_ok=True)
        raise RegistrationError(
            f"{label}: {kind} registration failed the similarity check (brain-mask Dice "
            f"{overlap:.3f} < preprocess.registration.min_mask_dice {cfg['min_mask_dice']}); "
            "inspect the images' orientation and field of view"
        )
    return record


def resample(
    moving: str | Path,
    reference: nib.Nifti1Image,
    transforms: list[str],
    out_file: str | Path,
    *,
    interpolation: str = "linear",
    dtype=np.float32,
    code: int = 1,
    invert: bool = False,
) -> nib.Nifti1Image:
    """Apply ANTs transforms (fixed <- moving stack, antsApplyTransforms order) onto a grid.
    `code`: the NIfTI sform/qform code of the result (1 scanner anatomical, 4 MNI152).
    `invert`: apply each (linear) transform inverted, e.g. to go from the MRI back to a scan.
    The transforms are linear, so scipy applies them as ITK would, without importing antspyx
    (workflow_scripts/preprocess/linear_resample.py: that import alone outweighs the resampling)."""
    from workflow_scripts.preprocess.linear_resample import resample_linear

    data = resample_linear(
        nib.load(moving), reference, transforms, interpolation=interpolation, invert=invert
    )
    if np.issubdtype(np.dtype(dtype), np.integer):
        data = np.rint(data)
    else:
        data = np.clip(data, 0, None) if data.min() >= -1e-3 else data
    result = nib.Nifti1Image(data.astype(dtype), reference.affine)
    save_nifti(result, out_file, code=code)
    return result


def map_points(transform: str | Path, points_ras: np.ndarray) -> np.ndarray:
    """Map (N, 3) RAS points of the fixed space into the moving space with an ANTs transform."""
    ants = _ants()
    tx = ants.read_transform(str(transform))
    lps = np.asarray(points_ras, dtype=float) * np.array([-1, -1, 1])
    out = np.array([tx.apply_to_point(tuple(p)) for p in lps])
    return out * np.array([-1, -1, 1])


def warp_atlas(atlas: str | Path, reference: str | Path, template_xfm: str | Path, out) -> None:
    """Resample a template-space label image onto a native grid through the inverse of the
    subject's T1w -> MNI152 transform (ANTs, nearest neighbour)."""
    resample(
        atlas,
        nib.load(reference),
        [str(template_xfm)],
        out,
        interpolation="nearestNeighbor",
        dtype=np.int16,
        code=1,
        invert=True,
    )
