"""Regional perfusion and left-right asymmetry of synthetic and real SPECT.

The atlas (no download): nilearn ships the MNI152 (ICBM 2009a symmetric) brain mask and grey
matter probability map, not a labelled atlas. The built-in atlas labels the grey matter
(probability >= GM_MIN_PROBABILITY, inside the brain mask) by coordinate rules in MNI mm,
checked in this order (the first that holds wins), each split at x = 0 (x < 0 left, x > 0
right, the midline plane unlabelled):

- cerebellum: y < -42 and z < -15 (below the tentorium);
- deep grey (caudate, putamen, pallidum, thalamus): |x| <= 30, -36 <= y <= 26, -12 <= z <= 24;
- insula: 30 < |x| <= 42, -30 <= y <= 25, -15 <= z <= 22;
- temporal: -68 < y <= 28, below the Sylvian line z < -5 - 0.4 y, and lateral (|x| > 25) or
  medial temporal (z < -10 and y < 5);
- occipital: y <= -68 (the parieto-occipital / pre-occipital line);
- parietal: behind the central sulcus line y < -5 - 0.45 z;
- frontal: the rest.
These are lobar approximations of a few millimetres, adequate at SPECT resolution (~10 mm), not a
replacement for an anatomical atlas: config `evaluate.atlas` takes your own.

Per subject the atlas reaches a native grid through the inverse of the subject's affine
T1w -> MNI152 transform (nearest neighbour); each region is restricted to the scoring mask (MRI
brain mask x real SPECT mask). Uptake is relative to each volume's own mean in that mask;
asymmetry index AI = 200 (L - R) / (L + R) %, positive when the left is higher.
"""

from __future__ import annotations

import logging
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
from nibabel.affines import apply_affine

log = logging.getLogger(__name__)

REGIONS = ("frontal", "parietal", "temporal", "occipital", "insula", "deep_grey", "cerebellum")
HEMISPHERES = ("L", "R", "none")
GM_MIN_PROBABILITY = 0.3  # grey matter probability that counts as grey matter
LABEL_COLUMNS = ["index", "name", "hemisphere"]


class AtlasError(ValueError):
    """An atlas image or label table that cannot be used (the message names the file)."""


def _lobe(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Index into REGIONS of each MNI point (the rules of the module docstring)."""
    ax = np.abs(x)
    rules = [
        ("cerebellum", (y < -42) & (z < -15)),
        ("deep_grey", (ax <= 30) & (y >= -36) & (y <= 26) & (z >= -12) & (z <= 24)),
        ("insula", (ax > 30) & (ax <= 42) & (y >= -30) & (y <= 25) & (z >= -15) & (z <= 22)),
        (
            "temporal",
            (y > -68) & (y <= 28) & (z < -5 - 0.4 * y) & ((ax > 25) | ((z < -10) & (y < 5))),
        ),
        ("occipital", y <= -68),
        ("parietal", y < -5 - 0.45 * z),
    ]
    lobe = np.full(x.shape, REGIONS.index("frontal"), dtype=np.int16)
    for name, where in reversed(rules):  # earlier rules win: paint them last
        lobe[where] = REGIONS.index(name)
    return lobe


def builtin_labels() -> pd.DataFrame:
    rows = [
        (2 * r + 1 + h, name, side)
        for r, name in enumerate(REGIONS)
        for h, side in enumerate(("L", "R"))
    ]
    return pd.DataFrame(rows, columns=LABEL_COLUMNS)


def world_coordinates(shape: tuple[int, ...], affine: np.ndarray) -> np.ndarray:
    """(3, *shape) world mm of every voxel centre."""
    ijk = np.moveaxis(np.indices(shape[:3]), 0, -1)
    return np.moveaxis(apply_affine(affine, ijk), -1, 0)


def build_atlas(grid: nib.Nifti1Image) -> tuple[nib.Nifti1Image, pd.DataFrame]:
    """The built-in lobar atlas on a template-space grid (label image, label table)."""
    from nilearn import datasets, image

    voxel = float(np.abs(grid.affine[:3, :3]).max())
    res = 1 if voxel < 1.5 else 2
    gm = datasets.load_mni152_gm_template(resolution=res)
    if voxel > res:  # a coarse grid: average the map over the voxel before sampling it
        gm = image.smooth_img(gm, fwhm=voxel)
    gm = image.resample_to_img(gm, grid, interpolation="linear")
    brain = image.resample_to_img(
        datasets.load_mni152_brain_mask(resolution=res), grid, interpolation="nearest"
    )
    grey = (np.asarray(gm.dataobj) >= GM_MIN_PROBABILITY) & (np.asarray(brain.dataobj) > 0.5)
    x, y, z = world_coordinates(grid.shape, grid.affine)
    labels = 2 * _lobe(x, y, z) + np.where(x < 0, 1, 2)
    labels = np.where(grey & (x != 0), labels, 0).astype(np.int16)
    return nib.Nifti1Image(labels, grid.affine), builtin_labels()


def read_label_table(path: str | Path) -> pd.DataFrame:
    """An atlas's TSV (index, name, hemisphere L/R/none), checked."""
    try:
        table = pd.read_csv(path, sep="\t", dtype={"name": str, "hemisphere": str})
    except (OSError, ValueError) as e:
        raise AtlasError(f"atlas labels {path}: cannot read as a TSV ({e})") from e
    missing = [c for c in LABEL_COLUMNS if c not in table.columns]
    if missing:
        raise AtlasError(f"atlas labels {path}: missing column(s) {missing}; need {LABEL_COLUMNS}")
    index = pd.to_numeric(table["index"], errors="coerce")
    if index.isna().any() or (index != index.round()).any() or (index <= 0).any():
        raise AtlasError(f"atlas labels {path}: `index` must be positive integers")
    if index.duplicated().any():
        raise AtlasError(
            f"atlas labels {path}: index listed twice: {sorted(index[index.duplicated()])}"
        )
    bad = sorted(set(table["hemisphere"]) - set(HEMISPHERES))
    if bad:
        raise AtlasError(f"atlas labels {path}: hemisphere must be one of {HEMISPHERES}, got {bad}")
    if table.duplicated(["name", "hemisphere"]).any():
        raise AtlasError(f"atlas labels {path}: a (name, hemisphere) pair is listed twice")
    return table.assign(index=index.astype(int))[LABEL_COLUMNS]


def check_atlas(
    img: nib.Nifti1Image, table: pd.DataFrame, image_path: str | Path, labels_path=None
) -> np.ndarray:
    """The label array of an atlas image: 3D, integer, every label in its table."""
    data = np.asanyarray(img.dataobj)
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise AtlasError(f"atlas image {image_path}: must be 3D, has shape {data.shape}")
    if not np.issubdtype(data.dtype, np.integer):
        if not np.all(np.isfinite(data)) or not np.allclose(data, np.rint(data)):
            raise AtlasError(f"atlas image {image_path}: values must be integer labels")
        data = np.rint(data)
    data = data.astype(np.int32)
    if (data < 0).any():
        raise AtlasError(f"atlas image {image_path}: negative labels")
    unlisted = sorted(set(np.unique(data).tolist()) - {0} - set(table["index"]))
    if unlisted:
        raise AtlasError(
            f"atlas image {image_path}: labels {unlisted} are not in its label table"
            + (f" {labels_path}" if labels_path else "")
        )
    return data


def load_user_atlas(
    image_path: str | Path, labels_path: str | Path, grid: nib.Nifti1Image
) -> tuple[nib.Nifti1Image, pd.DataFrame]:
    """A user's label image (MNI152NLin2009aSym) and TSV, checked, onto the study grid."""
    from nilearn import image

    table = read_label_table(labels_path)
    try:
        img = nib.load(image_path)
    except Exception as e:  # nibabel raises several types for a bad file
        raise AtlasError(f"atlas image {image_path}: cannot read as NIfTI ({e})") from e
    data = check_atlas(img, table, image_path, labels_path)
    src = nib.Nifti1Image(data.astype(np.int32), img.affine)
    on_grid = image.resample_to_img(src, grid, interpolation="nearest")
    return nib.Nifti1Image(np.asarray(on_grid.dataobj).astype(np.int16), grid.affine), table


def require_every_label(labels: np.ndarray, table: pd.DataFrame, where: str) -> None:
    empty = [int(i) for i in table["index"] if not (labels == i).any()]
    if empty:
        names = table.set_index("index").loc[empty]
        raise AtlasError(
            f"{where}: labels {empty} ({', '.join(names['name'] + '_' + names['hemisphere'])}) "
            "have no voxel on the study grid (a finer preprocess.grid, or a coarser atlas)"
        )


def region_label(name: str, hemisphere: str) -> str:
    return name if hemisphere == "none" else f"{name}_{hemisphere}"
