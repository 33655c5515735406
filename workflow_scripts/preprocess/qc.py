"""Registration QC: edges of the MRI drawn over PET and SPECT in the same space."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import nibabel as nib  # noqa: E402
import numpy as np  # noqa: E402
from skimage import feature  # noqa: E402

from workflow_scripts.nifti_io import save_figure  # noqa: E402


def _planes(data: np.ndarray, centre: tuple[int, int, int]) -> list[np.ndarray]:
    cx, cy, cz = centre
    return [np.rot90(data[:, :, cz]), np.rot90(data[:, cy, :]), np.rot90(data[cx, :, :])]


def registration_qc(
    mri: str | Path, others: dict[str, str], out_png: str | Path, title: str
) -> None:
    """One row per image (MRI, then PET, SPECT...), three planes through the brain centre."""
    mri_data = np.asarray(nib.load(mri).dataobj, dtype=np.float32)
    inside = np.argwhere(mri_data > 0)
    centre = (
        tuple(int(c) for c in inside.mean(axis=0))
        if len(inside)
        else tuple(s // 2 for s in mri_data.shape)
    )
    mri_planes = _planes(mri_data, centre)
    edges = [feature.canny(p, sigma=1.5) for p in mri_planes]
    rows = [("MRI", mri_planes, "gray")] + [
        (name, _planes(np.asarray(nib.load(path).dataobj, dtype=np.float32), centre), "hot")
        for name, path in others.items()
    ]
    fig, axes = plt.subplots(len(rows), 3, figsize=(9, 3 * len(rows)), squeeze=False)
    for r, (name, planes, cmap) in enumerate(rows):
        vmax = max(float(np.percentile(np.concatenate([p.ravel() for p in planes]), 99.5)), 1e-6)
        for c, plane in enumerate(planes):
            ax = axes[r, c]
            ax.imshow(plane, cmap=cmap, vmin=0, vmax=vmax, interpolation="nearest")
            if r > 0:
                overlay = np.ma.masked_where(~edges[c], edges[c])
                ax.imshow(overlay, cmap="cool", alpha=0.9, interpolation="nearest")
            ax.set_axis_off()
        axes[r, 0].set_title(name, loc="left", fontsize=10)
    fig.suptitle(f"{title}: MRI edges (cyan) over each modality")
    fig.tight_layout()
    save_figure(fig, out_png, dpi=70)
