"""SISCOM pictures: per subject the z maps as clinicians read them (nilearn), and the group
plot of localisation by source."""

from __future__ import annotations

import gc
import warnings
from collections.abc import Mapping
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
from nibabel.affines import apply_affine
from scipy import ndimage

from workflow_scripts.nifti_io import save_figure

DPI = 80


# A peak in white matter or a sulcus is read as the nearest labelled (grey-matter) region, as a
# reader would, but only this close: farther, the peak is named by nothing.
REGION_SEARCH_MM = 10.0


def region_name_at(
    world_mm,
    labels_img: nib.Nifti1Image | None = None,
    names: Mapping[int, str] | None = None,
    max_mm: float = REGION_SEARCH_MM,
) -> str:
    """Name of the atlas region at a world position (mm, the label image's world), or of the
    nearest labelled voxel within `max_mm`; "" without an atlas, outside its grid or farther."""
    if labels_img is None or names is None or world_mm is None:
        return ""
    ijk = np.rint(apply_affine(np.linalg.inv(labels_img.affine), world_mm)).astype(int)
    if np.any(ijk < 0) or np.any(ijk >= np.asarray(labels_img.shape[:3])):
        return ""
    labels = np.asarray(labels_img.dataobj).astype(int)
    if not labels.any():
        return ""
    spacing = np.asarray(labels_img.header.get_zooms()[:3], float)
    dist, nearest = ndimage.distance_transform_edt(
        labels == 0, sampling=spacing, return_indices=True
    )
    if dist[tuple(ijk)] > max_mm:
        return ""
    return names.get(int(labels[tuple(nearest[(slice(None), *ijk)])]), "")


def _mpl():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def panel_title(source: str, peak, region: str, fallback: bool) -> str:
    if fallback:
        return f"{source}: no cluster (cut at real SISCOM's peak)"
    if peak is None:
        return f"{source}: no cluster"
    where = f", {region}" if region else ""
    x, y, z = (float(v) for v in peak)
    return f"{source}: peak ({x:.0f}, {y:.0f}, {z:.0f}) mm{where}"


def subject_figure(
    t1w: str | Path,
    zmaps: Mapping[str, str | Path],
    peaks: Mapping[str, np.ndarray | None],
    out_png: str | Path,
    title: str,
    *,
    z_threshold: float = 2.0,
    focus_mm: np.ndarray | None = None,
    labels_img: nib.Nifti1Image | None = None,
    names: Mapping[int, str] | None = None,
) -> None:
    """One row per source: the thresholded z map over the subject's MRI in three planes cut at
    that source's top-cluster peak (at real SISCOM's peak when the source has no cluster, at the
    image centre when neither has one), colour bar, L/R, peak (native world mm) and region."""
    from nilearn import plotting

    plt = _mpl()
    bg = nib.load(t1w)
    real_peak = peaks.get("real")
    fig, axes = plt.subplots(len(zmaps), 1, figsize=(7.5, 2.1 * len(zmaps)), squeeze=False)
    # one colour scale for every row, so the rows compare
    top = max(float(np.max(np.asarray(nib.load(p).dataobj))) for p in zmaps.values())
    vmax = max(z_threshold + 1.0, np.ceil(top))
    try:
        for ax, (source, path) in zip(axes[:, 0], zmaps.items(), strict=True):
            # nilearn runs gc.collect() on every image it reads (three times a row), and each
            # collection walked the whole figure built so far: ~70 % of this job's time.
            # Frozen objects are skipped (none of them is garbage).
            gc.freeze()
            peak = peaks.get(source)
            fallback = peak is None and real_peak is not None
            cut = peak if peak is not None else real_peak
            with warnings.catch_warnings():  # a source without a cluster has an empty map: fine
                warnings.filterwarnings("ignore", message="empty mask")
                display = plotting.plot_stat_map(
                    str(path),
                    bg_img=bg,
                    display_mode="ortho",
                    cut_coords=None if cut is None else [float(v) for v in cut],
                    colorbar=True,
                    threshold=z_threshold,
                    vmin=0.0,
                    vmax=vmax,
                    cmap="autumn",
                    symmetric_cbar=False,
                    black_bg=True,
                    dim=0,
                    axes=ax,
                    annotate=True,
                    draw_cross=True,
                )
            display.title(
                panel_title(source, peak, region_name_at(peak, labels_img, names), fallback),
                size=9,
                bgcolor="black",
                color="white",
            )
            if focus_mm is not None:
                display.add_markers(
                    [list(map(float, focus_mm))], marker_color="cyan", marker_size=25
                )
    finally:
        gc.unfreeze()

    marker = "; cyan dot = true focus" if focus_mm is not None else ""
    fig.suptitle(f"{title} (z >= {z_threshold:g}{marker})", fontsize=9)
    # nilearn keeps each row's aspect inside its axes: crop the empty page around them
    save_figure(fig, out_png, dpi=DPI, bbox_inches="tight", pad_inches=0.1)


def summary_plot(table: pd.DataFrame, out_png: str | Path) -> None:
    """Per subject and source: distance of the top-cluster peak from the focus (or from real
    SISCOM's peak without truth) and Dice with real SISCOM; one row per source."""
    from workflow_scripts.siscom.summary import source_order

    plt = _mpl()
    truth = "focus_distance_mm" in table and table["focus_distance_mm"].notna().any()
    dist_col = "focus_distance_mm" if truth else "peak_distance_to_real_mm"
    panels = [c for c in (dist_col, "dice_with_real") if c in table]
    order = source_order(table["source"])[::-1]
    fig, axes = plt.subplots(
        1, len(panels), figsize=(4.2 * len(panels), 0.4 * len(order) + 1.6), squeeze=False
    )
    rng = np.random.default_rng(0)
    for ax, col in zip(axes[0], panels, strict=True):
        for y, src in enumerate(order):
            vals = table.loc[table["source"] == src, col].to_numpy(float)
            found = (
                table.loc[table["source"] == src, "top_cluster_contains_focus"].to_numpy(bool)
                if truth
                else np.ones(len(vals), bool)
            )
            jitter = y + rng.uniform(-0.15, 0.15, len(vals))
            ax.scatter(vals[found], jitter[found], s=18, c="#3182bd", zorder=3)
            ax.scatter(vals[~found], jitter[~found], s=18, facecolors="none", edgecolors="#de2d26")
            if np.isfinite(vals).any():
                ax.plot([np.nanmedian(vals)] * 2, [y - 0.3, y + 0.3], c="k", lw=1.5)
        ax.set_yticks(range(len(order)), order, fontsize=8)
        label = {
            "focus_distance_mm": "peak to true focus (mm)",
            "peak_distance_to_real_mm": "peak to real-SISCOM peak (mm)",
            "dice_with_real": "Dice with real-SISCOM clusters",
        }[col]
        ax.set_xlabel(label, fontsize=8)
        if col == "dice_with_real":
            ax.set_xlim(-0.02, 1.02)
        ax.grid(axis="x", alpha=0.3)
    note = "filled: top cluster contains the focus; open: misses it; bar: median" if truth else ""
    fig.suptitle(f"SISCOM localisation by interictal source ({note})", fontsize=8)
    fig.tight_layout()
    save_figure(fig, out_png, dpi=DPI)
