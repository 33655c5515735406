"""Reading input images safely and writing outputs atomically, without identifying headers.

Every input NIfTI goes through :func:`load_volume`, which either returns a clean 3D float32
image or raises :class:`InputImageError` naming the subject and the file. Every output goes
through :func:`save_nifti` / :func:`write_json`: written to a temporary name in the target folder
and renamed, so a killed job never leaves a file that looks complete.
"""

from __future__ import annotations

import gzip
import json
import logging
import zlib
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np

from model.atomic import atomic_path  # the one atomic writer (model/ may not import us)

log = logging.getLogger(__name__)

# Header text fields that may carry names, dates or site ids; cleared on every output.
SCRUBBED_FIELDS = ("descrip", "aux_file", "db_name", "intent_name")


class InputImageError(ValueError):
    """An input image that cannot be used; the message names subject and file."""


def _fail(subject: str, modality: str, path: Path, why: str) -> InputImageError:
    return InputImageError(f"sub-{subject} {modality} {path}: {why}")


def load_volume(
    path: str | Path, subject: str, modality: str, *, pet_4d: str = "mean"
) -> nib.Nifti1Image:
    """Load and validate one input image; returns a 3D float32 NIfTI in its own scanner space.

    Handled with a log line: 4D PET (frames averaged when pet_4d == "mean"), a trailing
    singleton 4th axis, sform/qform disagreement (sform wins), scl_slope/inter (applied).
    Refused: missing, unreadable or truncated file, not NIfTI, 2D, other 4D, non-finite voxels,
    all-zero image, negative SPECT counts, singular affine.
    """
    path = Path(path)
    if not path.is_file():
        raise _fail(subject, modality, path, "file not found")
    try:
        img = nib.load(path)
    except Exception as err:  # nibabel raises several types for bad files
        raise _fail(subject, modality, path, f"not a readable NIfTI ({err})") from err
    if not isinstance(img, nib.Nifti1Image | nib.Nifti2Image):
        raise _fail(subject, modality, path, f"not a NIfTI image ({type(img).__name__})")
    try:
        data = np.asarray(img.dataobj, dtype=np.float32)  # applies scl_slope / scl_inter
    except (OSError, EOFError, ValueError, zlib.error, gzip.BadGzipFile) as err:
        raise _fail(subject, modality, path, f"truncated or corrupt data ({err})") from err
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim == 4:
        if modality == "pet" and pet_4d == "mean":
            log.warning(
                "sub-%s %s %s: 4D image with %d frames, averaged to 3D",
                subject,
                modality,
                path,
                data.shape[3],
            )
            data = data.mean(axis=3)
        else:
            raise _fail(
                subject,
                modality,
                path,
                f"4D image {data.shape} (expected 3D; dynamic PET can be averaged with "
                "preprocess.pet_4d=mean)",
            )
    if data.ndim != 3 or min(data.shape) < 2:
        raise _fail(subject, modality, path, f"not a 3D volume (shape {data.shape})")
    bad = ~np.isfinite(data)
    if bad.any():
        raise _fail(subject, modality, path, f"{int(bad.sum())} NaN/Inf voxels")
    if not np.any(data):
        raise _fail(subject, modality, path, "image is all zeros")
    if modality in ("spect", "ictal") and data.min() < 0:
        raise _fail(
            subject,
            modality,
            path,
            f"negative SPECT counts (min {data.min():.3g}); expected counts >= 0",
        )
    affine = _trusted_affine(img, subject, modality, path)
    out = nib.Nifti1Image(data, affine)
    out.set_sform(affine, code=1)
    out.set_qform(affine, code=1)
    return out


def _trusted_affine(img, subject: str, modality: str, path: Path) -> np.ndarray:
    hdr = img.header
    sform, scode = hdr.get_sform(coded=True)
    qform, qcode = hdr.get_qform(coded=True)
    if scode and qcode and not np.allclose(sform, qform, atol=1e-3):
        log.warning(
            "sub-%s %s %s: sform and qform disagree; using the sform", subject, modality, path
        )
    affine = sform if scode else (qform if qcode else img.affine)
    if abs(np.linalg.det(affine[:3, :3])) < 1e-6:
        raise _fail(subject, modality, path, "singular affine (voxel size or orientation missing)")
    return np.asarray(affine, dtype=np.float64)


def nifti_image(data: np.ndarray, affine: np.ndarray, code: int = 1) -> nib.Nifti1Image:
    """The image save_nifti writes: sform = qform (`code`), units mm and s, identifying fields
    cleared."""
    img = nib.Nifti1Image(data, affine)
    img.set_sform(affine, code=code)
    img.set_qform(affine, code=code)
    img.header.set_xyzt_units("mm", "sec")  # affines are in mm; BIDS validators warn if unset
    for field in SCRUBBED_FIELDS:
        img.header[field] = b""
    return img


def save_nifti(
    img: nib.Nifti1Image | np.ndarray,
    path: str | Path,
    affine: np.ndarray | None = None,
    dtype: Any = None,
    code: int = 1,
) -> Path:
    """Write a NIfTI atomically with sform = qform, units mm and s, and identifying fields
    cleared. `code`: the sform/qform code, 1 (scanner anatomical) unless the grid is a
    template's (4, MNI)."""
    path = Path(path)
    if isinstance(img, np.ndarray):
        if affine is None:
            raise ValueError("save_nifti: an array needs an affine")
        data = img
    else:
        affine = img.affine
        data = np.asanyarray(img.dataobj)
    img = nifti_image(data if dtype is None else data.astype(dtype), affine, code)
    suffix = ".nii.gz" if path.name.endswith(".gz") else ".nii"
    with atomic_path(path, suffix) as tmp:
        nib.save(img, tmp)
    return path


def write_json(obj: Any, path: str | Path) -> Path:
    """Write JSON atomically (numpy scalars and arrays converted)."""
    path = Path(path)

    def default(o):
        if isinstance(o, np.ndarray):
            return o.tolist()
        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, Path):
            return str(o)
        raise TypeError(f"not JSON serialisable: {type(o).__name__}")

    with atomic_path(path, ".json") as tmp:
        tmp.write_text(json.dumps(obj, indent=2, default=default) + "\n")
    return path


def write_text(text: str, path: str | Path) -> Path:
    """Write a text file atomically."""
    path = Path(path)
    with atomic_path(path, path.suffix or ".txt") as tmp:
        tmp.write_text(text)
    return path


def save_figure(fig, path: str | Path, dpi: int = 80, **savefig: Any) -> Path:
    """Write a matplotlib figure atomically (a failed job leaves no half-written PNG), then
    close it."""
    import matplotlib.pyplot as plt

    path = Path(path)
    with atomic_path(path, path.suffix or ".png") as tmp:
        fig.savefig(tmp, dpi=dpi, **savefig)
    plt.close(fig)
    return path
