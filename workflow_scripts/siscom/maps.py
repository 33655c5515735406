"""The SISCOM maths on a stack of axial slices, independent of files and sources.

Steps per source: normalise ictal and interictal to their mean counts in the analysis mask,
subtract, z-score the difference within the mask (its mean and SD there; SD 0 means no
difference and no cluster), keep voxels with z >= threshold in face-connected clusters of >=
`min_cluster_mm3`. The top cluster is the one with the largest summed z; its peak is its voxel
of highest z.

The sampled slices are analysed as a stack: neighbouring sampled slices count as adjacent for
clustering (the skipped slices between them are unknown, not empty), and each sampled slice
stands for the thickness it represents, so cluster volumes are in true mm^3 also when slices are
sparse.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from nibabel.affines import apply_affine
from scipy import ndimage

log = logging.getLogger(__name__)


@dataclass
class SiscomMap:
    """One SISCOM on the slab stack (X, Y, N): z map (0 outside the mask) and cluster labels
    (0 = none, 1 = top cluster, 2... by decreasing summed z)."""

    z: np.ndarray
    labels: np.ndarray

    @property
    def n_clusters(self) -> int:
        return int(self.labels.max())


def analysis_mask(ictal_mask: np.ndarray, mri_mask: np.ndarray) -> np.ndarray:
    """Where every source is analysed: the ictal SPECT's own mask x the MRI brain mask. The real
    interictal scan's mask never enters: it is the reference some sources are compared with, and
    a synthetic or flat source has no such scan."""
    return (np.asarray(ictal_mask) > 0) & (np.asarray(mri_mask) > 0)


def slice_thickness(z_indices: np.ndarray) -> np.ndarray:
    """Thickness (in voxels) each sampled slice stands for: half the gap to each neighbour
    (one-sided at the ends). 1 everywhere for contiguous slices."""
    z = np.asarray(z_indices, dtype=float)
    if z.size == 1:
        return np.ones(1)
    gaps = np.diff(z)
    before = np.concatenate([[gaps[0]], gaps])
    after = np.concatenate([gaps, [gaps[-1]]])
    return (before + after) / 2


def siscom_map(
    ictal: np.ndarray,
    interictal: np.ndarray,
    mask: np.ndarray,
    voxel_mm3: float,
    z_threshold: float = 2.0,
    min_cluster_mm3: float = 500.0,
    slice_weight: np.ndarray | None = None,
) -> SiscomMap:
    """SISCOM of one ictal/interictal pair on a (X, Y, N) stack; `slice_weight` (N,) is the
    thickness each slice stands for (default 1: a contiguous volume)."""
    mask = mask.astype(bool)
    z = np.zeros(ictal.shape, np.float32)
    labels = np.zeros(ictal.shape, np.int32)
    empty = SiscomMap(z, labels)
    if mask.sum() < 10:
        log.warning("SISCOM: only %d voxels in the mask; no clusters", int(mask.sum()))
        return empty
    ict_mean, inter_mean = ictal[mask].mean(), interictal[mask].mean()
    if ict_mean <= 0 or inter_mean <= 0:
        log.warning(
            "SISCOM: no counts in the mask (ictal %.3g, interictal %.3g)", ict_mean, inter_mean
        )
        return empty
    diff = ictal[mask] / ict_mean - interictal[mask] / inter_mean
    sd = diff.std()
    if not np.isfinite(sd) or sd < 1e-9 * max(1.0, float(np.abs(diff).max())):
        return empty  # identical after normalisation: nothing to z-score, no cluster
    z[mask] = (diff - diff.mean()) / sd
    lab, n = ndimage.label(z >= z_threshold)  # face connectivity; z is 0 outside the mask
    if n == 0:
        return empty
    weight = np.ones(ictal.shape[2]) if slice_weight is None else np.asarray(slice_weight, float)
    voxel_vol = np.broadcast_to(weight * voxel_mm3, ictal.shape)
    idx = np.arange(1, n + 1)
    size_mm3 = ndimage.sum(voxel_vol, lab, idx)
    mass = ndimage.sum(z, lab, idx)
    kept = sorted(
        ((m, i) for i, m, s in zip(idx, mass, size_mm3, strict=True) if s >= min_cluster_mm3),
        reverse=True,
    )
    for rank, (_, i) in enumerate(kept, start=1):
        labels[lab == i] = rank
    return SiscomMap(z, labels)


def world(ijk: np.ndarray, z_indices: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """World mm of (M, 3) stack indices (k = position in the sampled slices)."""
    vox = np.asarray(ijk, float).reshape(-1, 3).copy()
    vox[:, 2] = np.asarray(z_indices)[vox[:, 2].astype(int)]
    return apply_affine(affine, vox)


def peak_of(m: SiscomMap, z_indices: np.ndarray, affine: np.ndarray) -> np.ndarray | None:
    """World (mm) position of the top cluster's highest z, None without clusters."""
    top = m.labels == 1
    if not top.any():
        return None
    ijk = np.unravel_index(np.argmax(np.where(top, m.z, -np.inf)), m.z.shape)
    return world(np.array(ijk), z_indices, affine)[0]


def focus_cluster_rank(
    m: SiscomMap, z_indices: np.ndarray, affine: np.ndarray, centre: np.ndarray, radius_mm: float
) -> int | None:
    """Rank of the best cluster reaching into the focus (a ball of `radius_mm` around its
    centre): 1 = the top cluster finds it; None = no cluster does."""
    vox = np.argwhere(m.labels > 0)
    if not len(vox):
        return None
    near = np.linalg.norm(world(vox, z_indices, affine) - centre, axis=1) <= radius_mm
    if not near.any():
        return None
    return int(m.labels[tuple(vox[near].T)].min())
