"""SISCOM of one subject with every interictal source, in native (MRI) space.

Every source is analysed on the same axial slices (the synthetic SPECT covers every slice that
meets the brain, so the slab is the brain's) and on one mask: the ictal SPECT's own mask x the
MRI brain mask (`maps.analysis_mask`). The real interictal scan's mask is not used, so its
values outside that mask change nothing, and every source is normalised over the same voxels.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from nibabel.affines import apply_affine

from workflow_scripts.masks import dice
from workflow_scripts.nifti_io import load_volume, save_nifti
from workflow_scripts.siscom.maps import (
    SiscomMap,
    analysis_mask,
    focus_cluster_rank,
    peak_of,
    siscom_map,
    slice_thickness,
)
from workflow_scripts.siscom.sources import REAL, source_kind, source_slug


def zmap_path(out_dir: str | Path, subject: str, source: str) -> Path:
    """Thresholded z map of one source (beside the subject's table)."""
    return Path(out_dir) / f"sub-{subject}_interictal-{source_slug(source)}_siscom.nii.gz"


def built_source_path(out_dir: str | Path, subject: str, source: str) -> Path:
    """An interictal source computed for this subject (e.g. PET mapped to SPECT uptake)."""
    return Path(out_dir) / f"sub-{subject}_interictal-{source_slug(source)}.nii.gz"


def load_on_grid(
    path: str | Path, subject: str, what: str, shape: tuple, affine: np.ndarray
) -> np.ndarray:
    """An image that must lie on the native ictal grid, clipped at 0 (resampled counts may
    undershoot slightly); a clear error naming subject and file when it does not."""
    img = load_volume(path, subject, what)
    if img.shape != shape or not np.allclose(img.affine, affine, atol=1e-3):
        raise ValueError(
            f"sub-{subject} {what} {path}: grid {img.shape} does not match the native ictal "
            f"SPECT grid {shape} (all native-space images must share one grid)"
        )
    return np.clip(np.asarray(img.dataobj, dtype=np.float64), 0, None)


def run_subject(
    subject: str,
    ictal: str | Path,
    brainmask: str | Path,
    ictalmask: str | Path,
    interictals: dict[str, str | Path],
    slab_z: np.ndarray,
    out_dir: str | Path,
    *,
    z_threshold: float,
    min_cluster_mm3: float,
    split: str = "",
    focus_mm: np.ndarray | None = None,
    focus_radius_mm: float | None = None,
) -> pd.DataFrame:
    """SISCOM with each interictal source on the slab of axial slices `slab_z`; writes each
    thresholded z map (NIfTI, full grid, 0 off the slab) to out_dir and returns one row per
    source."""
    ictal_img = load_volume(ictal, subject, "native ictal SPECT")
    affine, shape = ictal_img.affine, ictal_img.shape
    voxel_mm3 = float(abs(np.linalg.det(affine[:3, :3])))
    zs = np.unique(np.asarray(slab_z, dtype=int))
    if zs.size == 0 or zs[0] < 0 or zs[-1] >= shape[2]:
        raise ValueError(f"sub-{subject}: slab slices {zs.tolist()} outside the grid {shape}")
    ict = np.clip(np.asarray(ictal_img.dataobj, dtype=np.float64), 0, None)[:, :, zs]
    mask = analysis_mask(
        load_on_grid(ictalmask, subject, "native ictal SPECT mask", shape, affine)[:, :, zs],
        load_on_grid(brainmask, subject, "native brain mask", shape, affine)[:, :, zs],
    )
    weight = slice_thickness(zs)
    focus_in_slab = None
    if focus_mm is not None:
        k_focus = apply_affine(np.linalg.inv(affine), focus_mm)[2]
        focus_in_slab = bool(zs[0] - 0.5 <= k_focus <= zs[-1] + 0.5)

    maps: dict[str, SiscomMap] = {}
    rows: list[dict[str, Any]] = []
    for source, path in interictals.items():
        inter = load_on_grid(path, subject, f"interictal ({source})", shape, affine)[:, :, zs]
        m = siscom_map(ict, inter, mask, voxel_mm3, z_threshold, min_cluster_mm3, weight)
        maps[source] = m
        full = np.zeros(shape, np.float32)
        full[:, :, zs] = m.z * (m.labels > 0)
        save_nifti(full, zmap_path(out_dir, subject, source), affine=affine)
        peak = peak_of(m, zs, affine)
        top = m.labels == 1
        row: dict[str, Any] = {
            "subject": f"sub-{subject}",
            "split": split,
            "source": source,
            "kind": source_kind(source),
            "slab_slices": int(zs.size),
            "slab_first_z": int(zs[0]),
            "slab_last_z": int(zs[-1]),
            "mask_voxels": int(mask.sum()),
            "n_clusters": m.n_clusters,
            "top_cluster_mm3": float((top.sum(axis=(0, 1)) * weight).sum() * voxel_mm3),
            "peak_zscore": float(m.z[top].max()) if top.any() else np.nan,
            "peak_x_mm": peak[0] if peak is not None else np.nan,
            "peak_y_mm": peak[1] if peak is not None else np.nan,
            "peak_z_mm": peak[2] if peak is not None else np.nan,
        }
        if focus_mm is not None:
            row["focus_in_slab"] = focus_in_slab
            row["focus_distance_mm"] = (
                float(np.linalg.norm(peak - focus_mm)) if peak is not None else np.nan
            )
            rank = focus_cluster_rank(
                m, zs, affine, np.asarray(focus_mm, float), focus_radius_mm or 10.0
            )
            row["top_cluster_contains_focus"] = rank == 1
            # a lower-ranked cluster at the focus: found, but not where a reader looks first
            row["focus_cluster_rank"] = rank if rank is not None else np.nan
        rows.append(row)
    table = pd.DataFrame(rows)
    if REAL in maps:
        real = maps[REAL]
        peaks = table[["peak_x_mm", "peak_y_mm", "peak_z_mm"]].to_numpy(float)
        real_peak = peaks[list(maps).index(REAL)]
        table["dice_with_real"] = [dice(maps[s].labels > 0, real.labels > 0) for s in maps]
        table["peak_distance_to_real_mm"] = np.linalg.norm(peaks - real_peak, axis=1)
        # concordant: the top clusters of this source and of real SISCOM overlap
        table["concordant_with_real"] = [
            bool(np.logical_and(maps[s].labels == 1, real.labels == 1).any()) for s in maps
        ]
    return table
