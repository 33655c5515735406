"""SISCOM (ictal minus interictal SPECT co-registered to MRI) with real, synthetic or PET
'interictal' images, and how well each localises the seizure focus.

All images are in the subject's native space (registered to the MRI by preprocessing). The
comparison is restricted to the axial slab the synthetic SPECT covers (its sampled slices) so
that every variant is judged on the same voxels. Steps: normalise ictal and interictal to their
mean counts in the brain, subtract, z-score the difference within the brain, keep voxels with
z >= threshold in clusters of at least `min_cluster_mm3`; the top cluster is the one with the
largest summed z, its peak the voxel of highest z.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
from scipy import ndimage

from workflow_scripts.nifti_io import save_nifti, write_text

log = logging.getLogger(__name__)


def siscom_map(
    ictal: np.ndarray,
    interictal: np.ndarray,
    brain: np.ndarray,
    voxel_mm3: float,
    z_threshold: float = 2.0,
    min_cluster_mm3: float = 500.0,
) -> tuple[np.ndarray, np.ndarray]:
    """(z map inside the brain, labelled clusters kept, 0 = none, 1 = top cluster)."""
    brain = brain.astype(bool) & (interictal > 0) & (ictal > 0)
    z = np.zeros(ictal.shape, np.float32)
    labels = np.zeros(ictal.shape, np.int32)
    if brain.sum() < 10:
        return z, labels
    diff = ictal / ictal[brain].mean() - interictal / interictal[brain].mean()
    sd = diff[brain].std()
    if not np.isfinite(sd) or sd < 1e-9:  # identical images: no difference, no cluster
        return z, labels
    z[brain] = (diff[brain] - diff[brain].mean()) / sd
    lab, n = ndimage.label((z >= z_threshold) & brain)
    if n == 0:
        return z, labels
    idx = np.arange(1, n + 1)
    size_mm3 = ndimage.sum(np.ones_like(z), lab, idx) * voxel_mm3
    mass = ndimage.sum(z, lab, idx)
    keep = [(m, i) for i, m, s in zip(idx, mass, size_mm3, strict=True) if s >= min_cluster_mm3]
    for rank, (_, i) in enumerate(sorted(keep, reverse=True), start=1):
        labels[lab == i] = rank
    return z, labels


def peak_of(z: np.ndarray, labels: np.ndarray, affine: np.ndarray) -> np.ndarray | None:
    """World (mm) position of the top cluster's highest z."""
    top = labels == 1
    if not top.any():
        return None
    ijk = np.unravel_index(np.argmax(np.where(top, z, -np.inf)), z.shape)
    return affine[:3, :3] @ np.array(ijk, float) + affine[:3, 3]


def contains(labels: np.ndarray, affine: np.ndarray, centre: np.ndarray, radius_mm: float) -> bool:
    """Does the top cluster reach within `radius_mm` of the focus centre?"""
    top = np.argwhere(labels == 1)
    if not len(top):
        return False
    world = top @ affine[:3, :3].T + affine[:3, 3]
    return bool((np.linalg.norm(world - centre, axis=1) <= radius_mm).any())


def dice(a: np.ndarray, b: np.ndarray) -> float:
    total = a.sum() + b.sum()
    return float(2 * np.logical_and(a, b).sum() / total) if total else float("nan")


def slab_mask(shape, z_indices) -> np.ndarray:
    slab = np.zeros(shape, bool)
    slab[:, :, np.asarray(z_indices, int)] = True
    return slab


def run_subject(
    subject: str,
    ictal: str | Path,
    brainmask: str | Path,
    interictals: dict[str, str | Path],
    slab_z,
    out_dir: str | Path,
    *,
    z_threshold: float,
    min_cluster_mm3: float,
    focus_mm: np.ndarray | None = None,
    focus_radius_mm: float | None = None,
) -> pd.DataFrame:
    """SISCOM with each interictal source ('real', 'pet', conditions); one row per source."""
    out_dir = Path(out_dir)
    ictal_img = nib.load(ictal)
    affine = ictal_img.affine
    voxel_mm3 = float(abs(np.linalg.det(affine[:3, :3])))
    ict = np.asarray(ictal_img.dataobj, dtype=np.float64)
    brain = (np.asarray(nib.load(brainmask).dataobj) > 0) & slab_mask(ict.shape, slab_z)
    results, clusters = [], {}
    for source, path in interictals.items():
        inter = np.asarray(nib.load(path).dataobj, dtype=np.float64)
        z, labels = siscom_map(ict, inter, brain, voxel_mm3, z_threshold, min_cluster_mm3)
        clusters[source] = labels > 0
        save_nifti(
            (z * (labels > 0)).astype(np.float32),
            out_dir / f"sub-{subject}_interictal-{source}_siscom.nii.gz",
            affine=affine,
        )
        peak = peak_of(z, labels, affine)
        row = {
            "subject": f"sub-{subject}",
            "source": source,
            "n_clusters": int(labels.max()),
            "top_cluster_mm3": float((labels == 1).sum() * voxel_mm3),
            "peak_z": float(z[labels == 1].max()) if (labels == 1).any() else np.nan,
            "peak_x": peak[0] if peak is not None else np.nan,
            "peak_y": peak[1] if peak is not None else np.nan,
            "peak_z_mm": peak[2] if peak is not None else np.nan,
        }
        if focus_mm is not None:
            row["focus_distance_mm"] = (
                float(np.linalg.norm(peak - focus_mm)) if peak is not None else np.nan
            )
            row["top_cluster_contains_focus"] = contains(
                labels, affine, focus_mm, focus_radius_mm or 10.0
            )
        results.append(row)
    table = pd.DataFrame(results)
    if "real" in clusters:
        real_peak = table.loc[
            table["source"] == "real", ["peak_x", "peak_y", "peak_z_mm"]
        ].to_numpy()[0]
        table["dice_with_real"] = [dice(clusters[s], clusters["real"]) for s in table["source"]]
        table["peak_distance_to_real_mm"] = np.linalg.norm(
            table[["peak_x", "peak_y", "peak_z_mm"]].to_numpy() - real_peak, axis=1
        )
    return table


def overlay_png(
    t1w: str | Path, maps: dict[str, Path], focus_mm, out_png: str | Path, title: str
) -> None:
    """Thresholded SISCOM z maps over the MRI, axial slice through the real SISCOM's peak."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    mri_img = nib.load(t1w)
    mri = np.asarray(mri_img.dataobj, dtype=np.float32)
    first = np.asarray(nib.load(next(iter(maps.values()))).dataobj)
    if focus_mm is not None:
        k = int(round((np.linalg.inv(mri_img.affine) @ np.append(focus_mm, 1))[2]))
    else:
        k = int(np.argmax(first.sum(axis=(0, 1)))) if first.any() else mri.shape[2] // 2
    k = int(np.clip(k, 0, mri.shape[2] - 1))
    fig, axes = plt.subplots(1, len(maps), figsize=(2.6 * len(maps), 3), squeeze=False)
    for ax, (name, path) in zip(axes[0], maps.items(), strict=True):
        z = np.asarray(nib.load(path).dataobj)[:, :, k]
        ax.imshow(np.rot90(mri[:, :, k]), cmap="gray")
        ax.imshow(
            np.rot90(np.ma.masked_where(z <= 0, z)), cmap="autumn", vmin=2, vmax=5, alpha=0.85
        )
        if focus_mm is not None:
            ijk = np.linalg.inv(mri_img.affine) @ np.append(focus_mm, 1)
            ax.plot(ijk[0], mri.shape[1] - 1 - ijk[1], "c+", markersize=12, mew=2)
        ax.set_title(name, fontsize=8)
        ax.set_axis_off()
    fig.suptitle(f"{title} (axial z={k}; + = true focus)", fontsize=9)
    fig.tight_layout()
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_png.with_name(f".{out_png.stem}.tmp.png")
    fig.savefig(tmp, dpi=80)
    plt.close(fig)
    tmp.replace(out_png)


def siscom_job(smk) -> None:
    """Snakemake entry (rule siscom), one subject."""
    from workflow_scripts.slices import load_slices

    s = smk.wildcards.subject
    cfg = smk.config["siscom"]
    sources = {}
    if "spect" in smk.input.keys():
        sources["real"] = smk.input.spect
    if "pet" in smk.input.keys():
        sources["pet"] = smk.input.pet
    for label, path in zip(smk.params.conditions, smk.input.synth, strict=True):
        sources[label] = path
    focus, radius = None, None
    if "truth" in smk.input.keys():
        truth = json.loads(Path(smk.input.truth).read_text())
        w = np.array(truth["images"]["T1w"]["world_from_anatomy"])
        focus = w[:3, :3] @ np.array(truth["focus_anatomy_mm"]) + w[:3, 3]
        radius = float(truth["focus_radius_mm"])
    out_dir = Path(smk.output.table).parent
    table = run_subject(
        s,
        smk.input.ictal,
        smk.input.brainmask,
        sources,
        load_slices(smk.input.slices).z,
        out_dir,
        z_threshold=cfg["z_threshold"],
        min_cluster_mm3=cfg["min_cluster_mm3"],
        focus_mm=focus,
        focus_radius_mm=radius,
    )
    write_text(table.to_csv(sep="\t", index=False, float_format="%.4g"), smk.output.table)
    maps = {src: out_dir / f"sub-{s}_interictal-{src}_siscom.nii.gz" for src in sources}
    overlay_png(smk.input.t1w, maps, focus, smk.output.png, f"sub-{s} SISCOM by interictal source")


def summary_job(smk) -> None:
    """Group table and plot: which interictal source localises like the real one?"""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tables = [pd.read_csv(f, sep="\t") for f in smk.input]
    table = pd.concat(tables, ignore_index=True)
    table.to_csv(smk.output.table + ".tmp", index=False)
    Path(smk.output.table + ".tmp").replace(smk.output.table)
    agg = {
        "n_subjects": ("subject", "nunique"),
        "mean_dice_with_real": ("dice_with_real", "mean"),
        "mean_peak_distance_to_real_mm": ("peak_distance_to_real_mm", "mean"),
    }
    if "top_cluster_contains_focus" in table:
        agg["focus_found_fraction"] = ("top_cluster_contains_focus", "mean")
        agg["mean_focus_distance_mm"] = ("focus_distance_mm", "mean")
    summary = table.groupby("source").agg(**agg).reset_index()
    write_text(summary.to_csv(index=False, float_format="%.4g"), smk.output.summary)
    cols = [c for c in ("focus_found_fraction", "mean_dice_with_real") if c in summary]
    fig, axes = plt.subplots(
        1, len(cols), figsize=(5 * len(cols), 0.45 * len(summary) + 1.5), squeeze=False
    )
    for ax, col in zip(axes[0], cols, strict=True):
        ax.barh(summary["source"], summary[col], color="#6baed6")
        ax.set_xlim(0, 1)
        ax.set_title(col.replace("_", " "))
    fig.tight_layout()
    tmp = Path(smk.output.png).with_name(".siscom_plot.tmp.png")
    fig.savefig(tmp, dpi=80)
    plt.close(fig)
    tmp.replace(smk.output.png)
