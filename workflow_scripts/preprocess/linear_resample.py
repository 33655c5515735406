"""Apply ANTs linear transforms (.mat) to an image without importing antspyx.

`import ants` costs ~2 s of CPU (it pulls in matplotlib, pandas, scikit-learn and statsmodels),
more than the resampling itself on the study grids; the jobs that only resample (into the
spaces, back to a scanner's grid, SISCOM, the ceiling) run dozens of times per study. The
transforms they apply are ITK MatrixOffsetTransforms, which scipy reads (MATLAB v4 files) and
scipy.ndimage applies. The interpolators reproduce ITK's (tests/test_linear_resample.py compares
with antspyx): linear = trilinear with the edge voxel repeated up to half a voxel outside the
image and 0 beyond; nearestNeighbor = the voxel whose centre is nearest, ties rounded up.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import io as sio
from scipy import ndimage

# ITK works in LPS, NIfTI affines are RAS: x and y flip sign.
_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])
# Output voxels mapped per chunk: bounds memory on 1 mm grids (3 x float64 per voxel).
_CHUNK_VOXELS = 2_000_000


def read_ants_affine(path: str | Path) -> np.ndarray:
    """The 4x4 RAS matrix of an ANTs/ITK affine .mat file: fixed-space point -> moving-space point.

    ITK's MatrixOffsetTransform maps x to A (x - c) + c + t, with A and t in the file's
    AffineTransform_*_3_3 entry (9 matrix values row by row, then 3 translations) and the centre
    c in `fixed`, all in LPS millimetres."""
    content = sio.loadmat(str(path))
    key = next((k for k in content if k.startswith("AffineTransform_")), None)
    if key is None or "fixed" not in content:
        raise ValueError(f"{path}: not an ITK affine transform file (keys {sorted(content)})")
    params = np.asarray(content[key], dtype=np.float64).ravel()
    centre = np.asarray(content["fixed"], dtype=np.float64).ravel()
    matrix = params[:9].reshape(3, 3)
    lps = np.eye(4)
    lps[:3, :3] = matrix
    lps[:3, 3] = params[9:12] + centre - matrix @ centre
    return _LPS @ lps @ _LPS


def point_map(transforms: Sequence[str | Path], invert: bool = False) -> np.ndarray:
    """Reference-space RAS point -> moving-space RAS point for an antsApplyTransforms list
    (the first listed acts first on a point; `invert` inverts each transform in place)."""
    total = np.eye(4)
    for path in transforms:
        step = read_ants_affine(path)
        total = (np.linalg.inv(step) if invert else step) @ total
    return total


def resample_linear(
    moving: nib.Nifti1Image,
    reference: nib.Nifti1Image,
    transforms: Sequence[str | Path] = (),
    *,
    interpolation: str = "linear",
    invert: bool = False,
) -> np.ndarray:
    """`moving` on `reference`'s grid through ANTs linear transforms (float32 array).
    interpolation: linear | nearestNeighbor (antsApplyTransforms' names)."""
    if interpolation not in ("linear", "nearestNeighbor"):
        raise ValueError(f"interpolation {interpolation!r}: linear or nearestNeighbor")
    data = np.asarray(moving.dataobj, dtype=np.float32)
    voxel_map = np.linalg.inv(moving.affine) @ point_map(transforms, invert) @ reference.affine
    shape = tuple(reference.shape[:3])
    out = np.empty(int(np.prod(shape)), dtype=np.float32)
    upper = np.asarray(data.shape, dtype=np.float64)[:, None] - 0.5
    for start in range(0, out.size, _CHUNK_VOXELS):
        ijk = np.array(
            np.unravel_index(np.arange(start, min(start + _CHUNK_VOXELS, out.size)), shape)
        )
        coords = voxel_map[:3, :3] @ ijk + voxel_map[:3, 3:4]
        inside = np.all((coords >= -0.5) & (coords <= upper), axis=0)
        if interpolation == "linear":
            values = ndimage.map_coordinates(data, coords, order=1, mode="nearest", prefilter=False)
        else:
            nearest = np.floor(coords + 0.5).astype(np.int64)
            for axis, size in enumerate(data.shape):
                np.clip(nearest[axis], 0, size - 1, out=nearest[axis])
            values = data[tuple(nearest)]
        out[start : start + values.size] = np.where(inside, values, 0.0)
    return out.reshape(shape)
