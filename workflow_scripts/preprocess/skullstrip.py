"""Skull stripping of MRI and PET: FSL BET through nipype, or a pure-Python BET.

Both backends are nipype interfaces with BET's names (in_file, out_file, frac, mask ->
out_file, mask_file), so the rule code is the same whichever runs. `auto` picks FSL when `bet`
is on PATH. The backend that ran is recorded in the output sidecar.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import shutil
from pathlib import Path

os.environ.setdefault("NIPYPE_NO_ET", "1")  # no version check over the network

import nibabel as nib  # noqa: E402
import numpy as np  # noqa: E402
from nipype.interfaces.base import (
    BaseInterface,
    BaseInterfaceInputSpec,
    File,
    TraitedSpec,
    traits,
)

from workflow_scripts.masks import fill_holes, largest_component
from workflow_scripts.nifti_io import save_nifti

log = logging.getLogger(__name__)

# Plausible brain volumes (ml): outside this range the extraction failed.
MIN_BRAIN_ML, MAX_BRAIN_ML = 500.0, 2500.0


class SkullStripError(RuntimeError):
    """Skull stripping produced an empty or implausible brain."""


class PythonBETInputSpec(BaseInterfaceInputSpec):
    in_file = File(exists=True, mandatory=True, desc="image to skull strip")
    out_file = File(mandatory=True, desc="brain-extracted image")
    frac = traits.Range(0.0, 1.0, value=0.5, usedefault=True, desc="fractional intensity threshold")
    mask = traits.Bool(True, usedefault=True, desc="also write the binary brain mask")
    iterations = traits.Int(1000, usedefault=True, desc="surface deformation iterations")


class PythonBETOutputSpec(TraitedSpec):
    out_file = File(exists=True)
    mask_file = File(exists=True)


class PythonBET(BaseInterface):
    """BET's surface-evolution algorithm (Smith 2002) as implemented by `brainextractor`, run by
    its fast subclass (workflow_scripts.preprocess.bet_surface: the same surface, several times faster)."""

    input_spec = PythonBETInputSpec
    output_spec = PythonBETOutputSpec

    def _mask_path(self) -> Path:
        out = Path(self.inputs.out_file)
        ext = nifti_extension(out)
        return out.with_name(out.name[: -len(ext)] + "_mask" + ext)

    def _run_interface(self, runtime):
        from workflow_scripts.preprocess.bet_surface import FastBrainExtractor

        img = nib.load(self.inputs.in_file)
        data = np.asarray(img.dataobj, dtype=np.float32)
        with contextlib.redirect_stdout(io.StringIO()):  # the library prints progress
            extractor = FastBrainExtractor(nib.Nifti1Image(data, img.affine), bt=self.inputs.frac)
            extractor.run(iterations=self.inputs.iterations)
            mask = extractor.compute_mask().astype(bool)
        save_nifti((data * mask).astype(np.float32), self.inputs.out_file, affine=img.affine)
        save_nifti(mask.astype(np.uint8), self._mask_path(), affine=img.affine)
        return runtime

    def _list_outputs(self):
        return {"out_file": str(Path(self.inputs.out_file)), "mask_file": str(self._mask_path())}


def resolve_backend(backend: str) -> str:
    """auto -> fsl when FSL's `bet` is on PATH, else python."""
    if backend == "auto":
        return "fsl" if shutil.which("bet") else "python"
    if backend == "fsl" and not shutil.which("bet"):
        raise SkullStripError(
            "preprocess.skullstrip.backend=fsl but `bet` is not on PATH "
            "(install FSL, use --use-conda with envs/fsl.yaml, or set backend: python)"
        )
    return backend


def nifti_extension(path: str | Path) -> str:
    name = Path(path).name
    for ext in (".nii.gz", ".nii"):
        if name.endswith(ext):
            return ext
    raise ValueError(f"{path}: not a NIfTI file name (.nii or .nii.gz)")


def make_bet(backend: str, in_file: str, out_file: str, frac: float, robust: bool = True):
    """A configured BET interface of the chosen backend (not yet run); its outputs are
    compressed or not as `out_file` is named (.nii.gz, .nii)."""
    if backend == "fsl":
        from nipype.interfaces import fsl

        bet = fsl.BET(in_file=in_file, out_file=out_file, frac=frac, mask=True)
        bet.inputs.robust = robust
        bet.inputs.output_type = "NIFTI_GZ" if nifti_extension(out_file) == ".nii.gz" else "NIFTI"
        return bet
    return PythonBET(in_file=in_file, out_file=out_file, frac=frac, mask=True)


def skull_strip(
    in_file: str | Path,
    out_file: str | Path,
    mask_file: str | Path,
    *,
    subject: str,
    modality: str,
    backend: str = "auto",
    frac: float = 0.5,
    robust: bool = True,
) -> dict:
    """Run BET, keep the largest connected brain component, check its volume, write brain and
    mask; returns the method's record (for the sidecar)."""
    ran = resolve_backend(backend)
    img = nib.load(in_file)
    tmp_dir = Path(out_file).parent / f".bet-{Path(out_file).name}"
    tmp_dir.mkdir(parents=True, exist_ok=True)
    try:
        # uncompressed: only the mask is read back, and gzip of a 1 mm brain costs ~0.5 s
        bet = make_bet(ran, str(in_file), str(tmp_dir / "brain.nii"), frac, robust)
        log.info("sub-%s %s: skull strip with %s (%s)", subject, modality, ran, _cmdline(bet))
        try:
            result = bet.run()
        except Exception as err:  # BET on an image without a head fails in many ways
            raise SkullStripError(
                f"sub-{subject} {modality} {in_file}: skull strip ({ran}, frac={frac}) failed: "
                f"{type(err).__name__}: {str(err).splitlines()[0][:200] if str(err) else ''}; "
                "no plausible brain (ml) could be extracted — check the image"
            ) from err
        mask = np.asarray(nib.load(result.outputs.mask_file).dataobj) > 0
        mask = fill_holes(largest_component(mask))
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
    voxel_ml = float(np.prod(img.header.get_zooms()[:3])) / 1000.0
    volume_ml = float(mask.sum()) * voxel_ml
    if not MIN_BRAIN_ML <= volume_ml <= MAX_BRAIN_ML:
        raise SkullStripError(
            f"sub-{subject} {modality} {in_file}: skull strip ({ran}, frac={frac}) gave a brain of "
            f"{volume_ml:.0f} ml, outside {MIN_BRAIN_ML:.0f}-{MAX_BRAIN_ML:.0f} ml; check the image "
            "or adjust preprocess.skullstrip.frac"
        )
    data = np.asarray(img.dataobj, dtype=np.float32)
    save_nifti((data * mask).astype(np.float32), out_file, affine=img.affine)
    save_nifti(mask.astype(np.uint8), mask_file, affine=img.affine)
    return {
        "subject": subject,
        "modality": modality,
        "backend": ran,
        "frac": frac,
        "robust": robust if ran == "fsl" else None,
        "brain_volume_ml": round(volume_ml, 1),
        "source": str(in_file),
    }


def _cmdline(bet) -> str:
    try:
        return bet.cmdline
    except AttributeError:
        return "brainextractor (python)"
