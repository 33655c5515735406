"""SISCOM (ictal minus interictal SPECT co-registered to MRI) with real, synthetic or PET
'interictal' images, and how well each localises the seizure focus.

Everything is in the subject's native space (registered to the MRI by preprocessing).

Slab: every source -- real, PET and synthetic -- is analysed on the same axial slices (the
synthetic SPECT covers every slice that meets the brain, so the slab is the brain's), and on one common
mask (MRI brain mask x SPECT mask: the real interictal file is already multiplied by its SPECT
mask, so normalising the others over a larger region would not be comparable). The sampled
slices are analysed as a stack: neighbouring sampled slices count as adjacent for clustering
(the skipped slices between them are unknown, not empty), and each sampled slice stands for the
thickness it represents, so cluster volumes are in true mm^3 also when slices are sparse.

Steps per source: normalise ictal and interictal to their mean counts in the mask, subtract,
z-score the difference within the mask (its mean and SD there; SD 0 means no difference and no
cluster), keep voxels with z >= threshold in face-connected clusters of >= `min_cluster_mm3`.
The top cluster is the one with the largest summed z; its peak is its voxel of highest z.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pandas as pd
from scipy import ndimage

from workflow_scripts.nifti_io import load_volume, save_nifti, write_text

log = logging.getLogger(__name__)

REAL, PET = "real", "pet"  # sources that are not synthetic conditions


@dataclass
class SiscomMap:
    """One SISCOM on the slab stack (X, Y, N): z map (0 outside the mask) and cluster labels
    (0 = none, 1 = top cluster, 2... by decreasing summed z)."""

    z: np.ndarray
    labels: np.ndarray

    @property
    def n_clusters(self) -> int:
        return int(self.labels.max())


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


def _world(ijk: np.ndarray, z_indices: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """World mm of (M, 3) stack indices (k = position in the sampled slices)."""
    vox = np.asarray(ijk, float).reshape(-1, 3).copy()
    vox[:, 2] = np.asarray(z_indices)[vox[:, 2].astype(int)]
    return vox @ affine[:3, :3].T + affine[:3, 3]


def peak_of(m: SiscomMap, z_indices: np.ndarray, affine: np.ndarray) -> np.ndarray | None:
    """World (mm) position of the top cluster's highest z, None without clusters."""
    top = m.labels == 1
    if not top.any():
        return None
    ijk = np.unravel_index(np.argmax(np.where(top, m.z, -np.inf)), m.z.shape)
    return _world(np.array(ijk), z_indices, affine)[0]


def focus_cluster_rank(
    m: SiscomMap, z_indices: np.ndarray, affine: np.ndarray, centre: np.ndarray, radius_mm: float
) -> int | None:
    """Rank of the best cluster reaching into the focus (a ball of `radius_mm` around its
    centre): 1 = the top cluster finds it; None = no cluster does."""
    vox = np.argwhere(m.labels > 0)
    if not len(vox):
        return None
    near = np.linalg.norm(_world(vox, z_indices, affine) - centre, axis=1) <= radius_mm
    if not near.any():
        return None
    return int(m.labels[tuple(vox[near].T)].min())


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice of two boolean masks; NaN when both are empty."""
    total = int(a.sum()) + int(b.sum())
    return float(2 * np.logical_and(a, b).sum() / total) if total else float("nan")


def source_slug(source: str) -> str:
    """File-name part of a source: 'real', 'pet' or 'synth_input-mri_loss-l1_bce'."""
    if source in (REAL, PET):
        return source
    model_input, loss = source.split("/")
    return f"synth_input-{model_input}_loss-{loss}"


def source_kind(source: str) -> str:
    return {REAL: "real interictal SPECT", PET: "PET (baseline)"}.get(source, "synthetic")


def _load_on_grid(
    path: str | Path, subject: str, what: str, shape: tuple, affine: np.ndarray
) -> np.ndarray:
    # Modality names other than "spect"/"ictal": resampled counts may undershoot slightly below
    # 0 (clipped here) and must not be refused as "negative SPECT counts".
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
    interictals: dict[str, str | Path],
    slab_z: np.ndarray,
    out_dir: str | Path,
    *,
    z_threshold: float,
    min_cluster_mm3: float,
    spectmask: str | Path | None = None,
    focus_mm: np.ndarray | None = None,
    focus_radius_mm: float | None = None,
) -> pd.DataFrame:
    """SISCOM with each interictal source ('real', 'pet', 'input/loss' conditions) on the slab
    of axial slices `slab_z`; writes each thresholded z map (NIfTI, full grid, 0 off the slab)
    to out_dir and returns one row per source."""
    out_dir = Path(out_dir)
    ictal_img = load_volume(ictal, subject, "native ictal SPECT")
    affine, shape = ictal_img.affine, ictal_img.shape
    voxel_mm3 = float(abs(np.linalg.det(affine[:3, :3])))
    zs = np.unique(np.asarray(slab_z, dtype=int))
    if zs.size == 0 or zs[0] < 0 or zs[-1] >= shape[2]:
        raise ValueError(f"sub-{subject}: slab slices {zs.tolist()} outside the grid {shape}")
    ict = np.clip(np.asarray(ictal_img.dataobj, dtype=np.float64), 0, None)[:, :, zs]
    mask = _load_on_grid(brainmask, subject, "native brain mask", shape, affine)[:, :, zs] > 0
    if spectmask is not None:
        mask &= _load_on_grid(spectmask, subject, "native SPECT mask", shape, affine)[:, :, zs] > 0
    weight = slice_thickness(zs)
    focus_in_slab = None
    if focus_mm is not None:
        k_focus = (np.linalg.inv(affine) @ np.append(focus_mm, 1.0))[2]
        focus_in_slab = bool(zs[0] - 0.5 <= k_focus <= zs[-1] + 0.5)

    maps: dict[str, SiscomMap] = {}
    rows: list[dict[str, Any]] = []
    for source, path in interictals.items():
        inter = _load_on_grid(path, subject, f"interictal ({source})", shape, affine)[:, :, zs]
        m = siscom_map(ict, inter, mask, voxel_mm3, z_threshold, min_cluster_mm3, weight)
        maps[source] = m
        full = np.zeros(shape, np.float32)
        full[:, :, zs] = m.z * (m.labels > 0)
        save_nifti(
            full,
            out_dir / f"sub-{subject}_interictal-{source_slug(source)}_siscom.nii.gz",
            affine=affine,
        )
        peak = peak_of(m, zs, affine)
        top = m.labels == 1
        row: dict[str, Any] = {
            "subject": f"sub-{subject}",
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


def focus_from_truth(truth_json: str | Path) -> tuple[np.ndarray, float]:
    """Simulated focus centre in T1w world mm (= native-space world) and its radius."""
    truth = json.loads(Path(truth_json).read_text())
    w = np.asarray(truth["images"]["T1w"]["world_from_anatomy"], float)
    focus = w[:3, :3] @ np.asarray(truth["focus_anatomy_mm"], float) + w[:3, 3]
    return focus, float(truth["focus_radius_mm"])


def _overlay_slice(
    maps: dict[str, Path], affine: np.ndarray, slab_z: np.ndarray, focus_mm: np.ndarray | None
) -> int:
    """Sampled axial slice to draw: nearest the focus, else through real SISCOM's peak."""
    zs = np.unique(np.asarray(slab_z, dtype=int))
    if focus_mm is not None:
        k = (np.linalg.inv(affine) @ np.append(focus_mm, 1.0))[2]
        return int(zs[np.argmin(np.abs(zs - k))])
    ref = np.asarray(nib.load(maps.get(REAL, next(iter(maps.values())))).dataobj)
    if not ref.any():
        return int(zs[len(zs) // 2])
    return int(np.unravel_index(np.argmax(ref), ref.shape)[2])


def overlay_png(
    t1w: str | Path,
    maps: dict[str, Path],
    slab_z: np.ndarray,
    focus_mm: np.ndarray | None,
    out_png: str | Path,
    title: str,
    z_threshold: float = 2.0,
) -> None:
    """Thresholded SISCOM z maps over the MRI, one panel per interictal source."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    mri_img = nib.load(t1w)
    mri = np.asarray(mri_img.dataobj, dtype=np.float32)
    k = _overlay_slice(maps, mri_img.affine, slab_z, focus_mm)
    fig, axes = plt.subplots(1, len(maps), figsize=(2.4 * len(maps), 2.9), squeeze=False)
    for ax, (name, path) in zip(axes[0], maps.items(), strict=True):
        z = np.asarray(nib.load(path).dataobj)[:, :, k]
        ax.imshow(np.rot90(mri[:, :, k]), cmap="gray")
        ax.imshow(
            np.rot90(np.ma.masked_where(z <= 0, z)),
            cmap="autumn",
            vmin=z_threshold,
            vmax=z_threshold + 3,
            alpha=0.85,
        )
        if focus_mm is not None:  # rot90: voxel (i, j) is drawn at (i, ny - 1 - j)
            ijk = np.linalg.inv(mri_img.affine) @ np.append(focus_mm, 1.0)
            ax.plot(ijk[0], mri.shape[1] - 1 - ijk[1], "c+", markersize=12, mew=2)
        ax.set_title(name, fontsize=8)
        ax.set_axis_off()
    marker = "; + = true focus" if focus_mm is not None else ""
    fig.suptitle(f"{title} (axial slice {k}, z >= {z_threshold:g}{marker})", fontsize=9)
    fig.tight_layout()
    _save_fig(fig, out_png)


def _save_fig(fig, out_png: str | Path) -> None:
    import matplotlib.pyplot as plt

    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_png.with_name(f".{out_png.stem}.tmp.png")
    fig.savefig(tmp, dpi=80)
    plt.close(fig)
    tmp.replace(out_png)


def siscom_job(smk) -> None:
    """Snakemake entry (rule siscom): one subject, every interictal source."""
    from workflow_scripts.slices import brain_slices

    s = smk.wildcards.subject
    cfg = smk.params.settings
    sources: dict[str, str] = {REAL: smk.input.spect}
    if "pet" in smk.input.keys():
        sources[PET] = smk.input.pet
    for label, path in zip(smk.params.conditions, smk.input.synth, strict=True):
        sources[label] = path
    focus, radius = (
        focus_from_truth(smk.input.truth) if "truth" in smk.input.keys() else (None, None)
    )
    # the synthetic SPECT covers every slice that meets the brain: so does every source
    slab_z = brain_slices(np.asarray(nib.load(smk.input.brainmask).dataobj) > 0)
    out_dir = Path(smk.output.table).parent
    table = run_subject(
        s,
        smk.input.ictal,
        smk.input.brainmask,
        sources,
        slab_z,
        out_dir,
        z_threshold=cfg["z_threshold"],
        min_cluster_mm3=cfg["min_cluster_mm3"],
        spectmask=smk.input.spectmask,
        focus_mm=focus,
        focus_radius_mm=radius,
    )
    log.info(
        "sub-%s: SISCOM on %d brain slices (%d-%d)", s, len(slab_z), slab_z.min(), slab_z.max()
    )
    write_text(table.to_csv(sep="\t", index=False, float_format="%.4g"), smk.output.table)
    maps = {
        src: out_dir / f"sub-{s}_interictal-{source_slug(src)}_siscom.nii.gz" for src in sources
    }
    overlay_png(
        smk.input.t1w,
        maps,
        slab_z,
        focus,
        smk.output.png,
        f"sub-{s} SISCOM by interictal source",
        cfg["z_threshold"],
    )


def summarise(table: pd.DataFrame) -> pd.DataFrame:
    """Per source: how often it localises, and how close it comes to real SISCOM."""
    agg: dict[str, tuple[str, str]] = {"n_subjects": ("subject", "nunique")}
    truth = (
        "top_cluster_contains_focus" in table and table["top_cluster_contains_focus"].notna().any()
    )
    if truth:
        agg["focus_found_fraction"] = ("top_cluster_contains_focus", "mean")
        agg["focus_in_any_cluster_fraction"] = ("focus_in_any_cluster", "mean")
        agg["median_focus_distance_mm"] = ("focus_distance_mm", "median")
    if "dice_with_real" in table:
        agg["concordant_with_real_fraction"] = ("concordant_with_real", "mean")
        agg["mean_dice_with_real"] = ("dice_with_real", "mean")
        agg["median_peak_distance_to_real_mm"] = ("peak_distance_to_real_mm", "median")
    tab = table.copy()
    if truth:
        tab["focus_in_any_cluster"] = tab["focus_cluster_rank"].notna().astype(float)
    for col in ("top_cluster_contains_focus", "concordant_with_real"):
        if col in tab:
            tab[col] = tab[col].astype(float)
    order = list(dict.fromkeys(table["source"]))  # real, pet, then the conditions
    summary = tab.groupby("source", sort=False).agg(**agg).reindex(order).reset_index()
    summary.insert(1, "kind", [source_kind(s) for s in summary["source"]])
    if truth and REAL in order:
        real_found = summary.loc[summary["source"] == REAL, "focus_found_fraction"].iloc[0]
        # the question of the report: does this source find the focus as often as real SISCOM?
        summary["finds_focus_as_often_as_real"] = summary["focus_found_fraction"] >= real_found
    return summary


def summary_plot(table: pd.DataFrame, out_png: str | Path) -> None:
    """Per subject and source: distance of the top-cluster peak from the focus (or from real
    SISCOM's peak without truth) and Dice with real SISCOM; one row per condition."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    truth = "focus_distance_mm" in table and table["focus_distance_mm"].notna().any()
    dist_col = "focus_distance_mm" if truth else "peak_distance_to_real_mm"
    panels = [c for c in (dist_col, "dice_with_real") if c in table]
    order = list(dict.fromkeys(table["source"]))[::-1]
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
    _save_fig(fig, out_png)


def summary_job(smk) -> None:
    """Snakemake entry (rule siscom_summary): group table, summary and plot."""
    table = pd.concat([pd.read_csv(f, sep="\t") for f in smk.input], ignore_index=True)
    write_text(table.to_csv(index=False, float_format="%.4g"), smk.output.table)
    write_text(summarise(table).to_csv(index=False, float_format="%.4g"), smk.output.summary)
    summary_plot(table, smk.output.png)
