"""QC picture of a simulated subject: the modalities side by side, cut through the true focus.

Each column is one image in its own scanner space, shown in RAS display orientation. Rows are
axial, coronal and sagittal slices through the focus centre (marked with a cyan ring), plus, for
post-surgical subjects, an axial slice through the resection cavity (marked in green).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import nibabel as nib  # noqa: E402
import numpy as np  # noqa: E402
from nibabel.affines import apply_affine  # noqa: E402

from workflow_scripts.nifti_io import nifti_image, save_figure  # noqa: E402
from workflow_scripts.simulation_truth import point_in_world  # noqa: E402


def _cuts(img: nib.Nifti1Image, point_mm: np.ndarray) -> tuple[list, list]:
    """Axial, coronal, sagittal slices through a world point, and the point in each slice."""
    img = nib.as_closest_canonical(img)
    data = np.asarray(img.dataobj, dtype=np.float32)
    ijk = apply_affine(np.linalg.inv(img.affine), point_mm)
    i, j, k = (int(np.clip(round(c), 0, n - 1)) for c, n in zip(ijk[:3], data.shape, strict=True))
    # rot90 of a (u, v) slice puts v upwards: the marker sits at column u, row (nv - 1 - v).
    views = [np.rot90(data[:, :, k]), np.rot90(data[:, j, :]), np.rot90(data[i, :, :])]
    nx, ny, nz = data.shape
    marks = [(ijk[0], ny - 1 - ijk[1]), (ijk[0], nz - 1 - ijk[2]), (ijk[1], nz - 1 - ijk[2])]
    return views, marks


def as_read_back(data: np.ndarray, affine: np.ndarray) -> nib.Nifti1Image:
    """The image that nib.load gives for save_nifti(data, path, affine) (its header, its float32
    affine), without writing and inflating the file."""
    return nib.Nifti1Image.from_bytes(nifti_image(data, affine).to_bytes())


def simulation_qc(
    paths: dict[str, Path],
    subject: str,
    split: str,
    out_png: Path,
    truth: dict,
    images: dict[str, nib.Nifti1Image] | None = None,
) -> None:
    """Write the QC PNG atomically (temp name, then rename). `images`: the images just written
    to `paths`, as read back (as_read_back); default: read the files."""
    if images is None:
        names = [n for n in ("T1w", "pet", "spect", "ictal") if paths[n].exists()]
        images = {n: nib.load(paths[n]) for n in names}
    names = [n for n in ("T1w", "pet", "spect", "ictal") if n in images]
    rows = [("focus_anatomy_mm", "cyan", v) for v in ("axial", "coronal", "sagittal")]
    if "cavity_anatomy_mm" in truth:
        rows.append(("cavity_anatomy_mm", "lime", "axial"))
    view_index = {"axial": 0, "coronal": 1, "sagittal": 2}
    fig, axes = plt.subplots(
        len(rows), len(names), figsize=(3.2 * len(names), 3.0 * len(rows)), squeeze=False
    )
    for col, name in enumerate(names):
        img = images[name]
        data = np.asarray(img.dataobj, dtype=np.float32)
        # Window on the brain's upper range so grey/white contrast stays visible.
        vmax = np.percentile(data[data > 0], 99.8) if np.any(data > 0) else 1.0
        cmap = "gray" if name == "T1w" else "hot"
        for row, (key, colour, view) in enumerate(rows):
            voxel_mm = float(np.mean(img.header.get_zooms()[:3]))
            views, marks = _cuts(img, point_in_world(truth, name, key))
            ax = axes[row, col]
            ax.imshow(views[view_index[view]], cmap=cmap, vmin=0, vmax=vmax)
            radius = truth[key.replace("anatomy_mm", "radius_mm")] / voxel_mm
            ax.add_patch(
                plt.Circle(marks[view_index[view]], radius, fill=False, color=colour, lw=0.8)
            )
            ax.set_axis_off()
            if col == 0:
                label = f"{view} through {key.split('_')[0]}"
                ax.text(0.02, 0.98, label, transform=ax.transAxes, color="w", va="top", fontsize=7)
        codes = "".join(nib.aff2axcodes(img.affine))
        zooms = "x".join(f"{z:.1f}" for z in img.header.get_zooms()[:3])
        axes[0, col].set_title(f"{name}  {codes} {zooms} mm  {img.shape}", fontsize=8)
    fig.suptitle(f"sub-{subject} ({split}): each image in its own scanner space")
    fig.tight_layout()
    save_figure(fig, out_png, dpi=80)
