"""The paper's figures: violin plots of Figs. 5-7 and example-slice montages of Figs. 3-4."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from workflow_scripts.evaluate.metrics import PRIMARY_METRICS, TESTED  # noqa: E402
from workflow_scripts.nifti_io import save_figure  # noqa: E402

INPUT_ORDER = ["mri", "pet", "mri_pet"]
UNITS = {
    "RMSE": "RMSE, Table 4 repro. [-1, 1]",
    "SSIM": "SSIM, Table 4 repro. [-1, 1]",
    "PSNR": "PSNR (dB), Table 4 repro. [-1, 1]",
    "MAE_rel": "MAE, brain, rel. uptake",
    "PSNR_rel_dB": "PSNR (dB), brain, range 3",
    "SSIM_rel": "SSIM, brain, rel. uptake",
}
# Violin rows: the paper's tested metrics (RMSE is PSNR's other face), then the primary
# per-slice brain-masked metrics where the table has them.
VIOLIN_METRICS = (*TESTED["table4"], *PRIMARY_METRICS)


def _rows(metrics: pd.DataFrame) -> list[str]:
    return [m for m in VIOLIN_METRICS if m in metrics.columns and metrics[m].notna().any()]


def _save(fig, path: str | Path) -> None:
    save_figure(fig, path, dpi=90, bbox_inches="tight")


def _mark(ax, tests: pd.DataFrame, metric: str, x_of, alpha: float, top: float) -> None:
    """Stars over groups whose paired test is significant: * slice level (as the paper),
    dagger subject level after Holm correction."""
    for _, row in tests[(tests["metric"] == metric)].iterrows():
        x = x_of(row)
        if x is None:
            continue
        label = ""
        if row["level"] == "slice" and row["p"] < alpha:
            label = "*"
        if row["level"] == "subject" and row["p_holm"] < alpha:
            label = "\u2020"
        if label:
            dx = -0.08 if row["level"] == "slice" else 0.08
            ax.text(x + dx, top, label, ha="center", va="bottom", fontsize=13, color="black")


def _violins(ax, data: pd.DataFrame, metric: str, inputs: list[str], **style) -> None:
    """One metric's distribution per model input (quartiles inside, cut at the data)."""
    sns.violinplot(
        data=data,
        x="input",
        y=metric,
        order=inputs,
        inner="quart",
        cut=0,
        linewidth=0.8,
        ax=ax,
        **style,
    )


def violin_figure(
    metrics: pd.DataFrame,
    tests: pd.DataFrame,
    hue: str,
    facet: str,
    figure: str,
    out_png: str | Path,
    alpha: float = 0.01,
) -> None:
    """One row per metric; x = input modality, colour = the compared factor (hue), one column
    per level of `facet` (e.g. loss for Fig. 5)."""
    facets = sorted(metrics[facet].unique())
    inputs = [i for i in INPUT_ORDER if i in set(metrics["input"])]
    rows = _rows(metrics)
    fig, axes = plt.subplots(
        len(rows), len(facets), figsize=(4.2 * len(facets), 3.1 * len(rows)), squeeze=False
    )
    for c, level in enumerate(facets):
        sub = metrics[metrics[facet] == level]
        t = (
            tests[(tests["figure"] == figure) & (tests[f"a_{facet}"] == level)]
            if not tests.empty
            else tests
        )
        for r, m in enumerate(rows):
            ax = axes[r, c]
            _violins(ax, sub, m, inputs, hue=hue, density_norm="width")
            top = sub[m].max()
            ax.set_ylim(top=top + 0.12 * (top - sub[m].min() + 1e-9))
            if not t.empty:
                _mark(
                    ax,
                    t,
                    m,
                    lambda row: inputs.index(row["a_input"]) if row["a_input"] in inputs else None,
                    alpha,
                    top,
                )
            ax.set_title(f"{facet} = {level}" if r == 0 else "")
            ax.set_xlabel("input" if r == len(rows) - 1 else "")
            ax.set_ylabel(UNITS[m])
            if (r, c) != (0, 0) and ax.get_legend():
                ax.get_legend().remove()
    fig.suptitle(
        f"{figure}: * p<{alpha} slice-level paired t-test (paper); \u2020 subject-level, Holm",
        fontsize=10,
    )
    fig.tight_layout()
    _save(fig, out_png)


def input_figure(
    metrics: pd.DataFrame, tests: pd.DataFrame, out_png: str | Path, alpha: float = 0.01
) -> None:
    """Fig. 7: inputs compared within each space and loss; stars between adjacent pairs."""
    panels = sorted({(s, lo) for s, lo in zip(metrics["space"], metrics["loss"], strict=True)})
    inputs = [i for i in INPUT_ORDER if i in set(metrics["input"])]
    rows = _rows(metrics)
    fig, axes = plt.subplots(
        len(rows), len(panels), figsize=(3.6 * len(panels), 3.1 * len(rows)), squeeze=False
    )
    for c, (space, loss) in enumerate(panels):
        sub = metrics[(metrics["space"] == space) & (metrics["loss"] == loss)]
        for r, m in enumerate(rows):
            ax = axes[r, c]
            _violins(ax, sub, m, inputs, color="#9ecae1")
            top, bottom = sub[m].max(), sub[m].min()
            span = top - bottom + 1e-9
            t = (
                tests[
                    (tests["figure"] == "fig7_input")
                    & (tests["a_space"] == space)
                    & (tests["a_loss"] == loss)
                    & (tests["metric"] == m)
                ]
                if not tests.empty
                else tests
            )
            k = 0
            for _, row in t[t["level"] == "slice"].iterrows():
                if row["p"] < alpha and row["a_input"] in inputs and row["b_input"] in inputs:
                    x0, x1 = inputs.index(row["a_input"]), inputs.index(row["b_input"])
                    y = top + span * (0.06 + 0.09 * k)
                    ax.plot(
                        [x0, x0, x1, x1],
                        [y - span * 0.02, y, y, y - span * 0.02],
                        color="black",
                        lw=0.8,
                    )
                    ax.text((x0 + x1) / 2, y, "*", ha="center", va="bottom")
                    k += 1
            ax.set_ylim(top=top + span * (0.1 + 0.09 * k))
            ax.set_title(f"{space}, {loss}" if r == 0 else "")
            ax.set_xlabel("input" if r == len(rows) - 1 else "")
            ax.set_ylabel(UNITS[m])
    fig.suptitle(f"fig7_input: * p<{alpha}, slice-level paired t-test", fontsize=10)
    fig.tight_layout()
    _save(fig, out_png)


def montage(rows: list[dict], out_png: str | Path, title: str) -> None:
    """Rows of (label, input MRI, input PET, real SPECT, synthetic SPECT per input, |difference|)."""
    if not rows:
        fig = plt.figure(figsize=(4, 1))
        fig.text(0.5, 0.5, "no subject to show", ha="center")
        _save(fig, out_png)
        return
    cols = list(rows[0]["images"].keys())
    fig, axes = plt.subplots(
        len(rows), len(cols), figsize=(1.9 * len(cols), 2.0 * len(rows)), squeeze=False
    )
    for r, row in enumerate(rows):
        for c, name in enumerate(cols):
            img = row["images"][name]
            ax = axes[r, c]
            if name.startswith("|diff"):
                ax.imshow(np.rot90(img), cmap="magma", vmin=0, vmax=0.25)  # differences are small
            else:
                ax.imshow(np.rot90(img), cmap="gray" if name == "MRI" else "hot", vmin=-1, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(name, fontsize=8)
        axes[r, 0].set_ylabel(row["label"], fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    _save(fig, out_png)


def planes(volume: np.ndarray, centre: tuple[int, int, int]) -> list[np.ndarray]:
    """Axial, coronal and sagittal planes through a voxel, oriented for display (RAS grid:
    anterior / superior up, the subject's right on the right, neurological)."""
    x, y, z = centre
    return [volume[:, :, z].T, volume[:, y, :].T, volume[x, :, :].T]


def three_planes(
    rows: list[tuple[str, np.ndarray, float]],
    centre: tuple[int, int, int],
    out_png: str | Path,
    title: str,
    colour_label: str = "uptake relative to the brain mean",
) -> None:
    """One row per volume (label, data, display maximum), columns axial / coronal / sagittal;
    the first row in grey (the MRI), the others in one hot scale with its colour bar."""
    # constrained layout keeps the title, the column titles and the colour bar apart
    fig, axes = plt.subplots(
        len(rows), 3, figsize=(8.2, 2.5 * len(rows)), squeeze=False, layout="constrained"
    )
    hot = None
    for r, (label, data, vmax) in enumerate(rows):
        for c, (plane, name) in enumerate(
            zip(planes(data, centre), ("axial", "coronal", "sagittal"), strict=True)
        ):
            ax = axes[r, c]
            im = ax.imshow(
                plane, cmap="gray" if r == 0 else "hot", origin="lower", vmin=0, vmax=vmax
            )
            hot = im if r > 0 else hot
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(name)
            if c == 0:
                ax.set_ylabel(label, fontsize=8)
        for c in (0, 1):  # axial and coronal: the subject's left on the left
            axes[r, c].text(0.02, 0.02, "L", color="w", transform=axes[r, c].transAxes, fontsize=7)
            axes[r, c].text(0.92, 0.02, "R", color="w", transform=axes[r, c].transAxes, fontsize=7)
    if hot is not None:
        bar = fig.colorbar(hot, ax=axes[1:, :], shrink=0.3, location="right")
        bar.set_label(colour_label, fontsize=8)
    fig.suptitle(title, fontsize=9)
    _save(fig, out_png)
