"""QC picture of a simulated subject: the three modalities side by side."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import nibabel as nib  # noqa: E402
import numpy as np  # noqa: E402


def _views(path: Path) -> list[np.ndarray]:
    """Axial, coronal and sagittal mid-slices in RAS display orientation."""
    img = nib.as_closest_canonical(nib.load(path))
    data = np.asarray(img.dataobj, dtype=np.float32)
    cx, cy, cz = (s // 2 for s in data.shape)
    return [np.rot90(data[:, :, cz]), np.rot90(data[:, cy, :]), np.rot90(data[cx, :, :])]


def simulation_qc(paths: dict[str, Path], subject: str, split: str, out_png: Path) -> None:
    names = [n for n in ("T1w", "pet", "spect", "ictal") if paths[n].exists()]
    fig, axes = plt.subplots(3, len(names), figsize=(3.2 * len(names), 9), squeeze=False)
    for col, name in enumerate(names):
        views = _views(paths[name])
        vmax = np.percentile(np.concatenate([v.ravel() for v in views]), 99.5)
        cmap = "gray" if name == "T1w" else "hot"
        for row, view in enumerate(views):
            axes[row, col].imshow(view, cmap=cmap, vmin=0, vmax=vmax, interpolation="nearest")
            axes[row, col].set_axis_off()
        zooms = nib.load(paths[name]).header.get_zooms()[:3]
        codes = "".join(nib.aff2axcodes(nib.load(paths[name]).affine))
        axes[0, col].set_title(
            f"{name}\n{codes} {'x'.join(f'{z:.1f}' for z in zooms)} mm", fontsize=9
        )
    fig.suptitle(f"sub-{subject} ({split}): mid-slices in scanner space (axial, coronal, sagittal)")
    fig.tight_layout()
    out_png.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_png.with_name(out_png.stem + ".tmp.png")
    fig.savefig(tmp, dpi=80)
    plt.close(fig)
    tmp.replace(out_png)
