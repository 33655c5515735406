"""Group tables and figure of regional agreement (rule regional_tables): per condition, ICC(A,1)
and Bland-Altman limits over regions x subjects for regional uptake and for the asymmetry index,
and lateralisation agreement in the focus region (see workflow_scripts/regions/agreement.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from workflow_scripts.nifti_io import save_figure
from workflow_scripts.regions.agreement import bland_altman, icc, wilson

CONDITION = ["space", "input", "loss"]
MEASURES = ("uptake", "AI")


def side(ai: np.ndarray | pd.Series, threshold: float) -> np.ndarray:
    """'L' where AI > threshold (left higher), 'R' where AI < -threshold, else 'none'."""
    ai = np.asarray(ai, dtype=float)
    return np.where(ai > threshold, "L", np.where(ai < -threshold, "R", "none"))


def lateralisation(rows: pd.DataFrame, threshold: float) -> dict:
    """Agreement of synthetic and real on the side of the focus region's AI (L, R, or neither
    beyond the threshold), one vote per subject, as a proportion with its Wilson 95 % CI."""
    focus = rows[(rows["measure"] == "AI") & (rows["region"] == rows["focus_region"])]
    focus = focus.dropna(subset=["synthetic", "real"])
    real_side = side(focus["real"], threshold)
    agree = int((side(focus["synthetic"], threshold) == real_side).sum())
    p, lo, hi = wilson(agree, len(focus))
    sources = sorted(set(focus["focus_source"]))
    return {
        "lateralisation_n": len(focus),
        "lateralisation_agree": agree,
        # subjects whose real SPECT lateralises at all: "neither" on both sides also agrees
        "lateralisation_real_sided": int((real_side != "none").sum()),
        "lateralisation_proportion": p,
        "lateralisation_lower": lo,
        "lateralisation_upper": hi,
        "lateralisation_focus": "+".join(sources),
        "lateralisation_AI_threshold_percent": threshold,
    }


def measure_agreement(rows: pd.DataFrame, measure: str) -> dict:
    pairs = rows[rows["measure"] == measure].dropna(subset=["synthetic", "real"])
    out = {f"{measure}_n": len(pairs)}
    if len(pairs) < 2:
        return out
    r = icc(pairs[["synthetic", "real"]].to_numpy())
    ba = bland_altman(pairs["synthetic"].to_numpy(), pairs["real"].to_numpy())
    out.update(
        {
            f"{measure}_ICC_A1": r.absolute,
            f"{measure}_ICC_A1_lower": r.lower,
            f"{measure}_ICC_A1_upper": r.upper,
            f"{measure}_ICC_C1": r.consistency,
            f"{measure}_BA_bias": ba.bias,
            f"{measure}_BA_lower": ba.lower,
            f"{measure}_BA_upper": ba.upper,
        }
    )
    return out


def agreement_table(regional: pd.DataFrame, threshold: float) -> pd.DataFrame:
    """One row per condition: agreement of uptake and AI, and lateralisation."""
    out = []
    for key, rows in regional.groupby(CONDITION, sort=True):
        row = dict(zip(CONDITION, key, strict=True))
        row["n_subjects"] = rows["subject"].nunique()
        for measure in MEASURES:
            row.update(measure_agreement(rows, measure))
        row.update(lateralisation(rows, threshold))
        out.append(row)
    return pd.DataFrame(out)


def agreement_figure(regional: pd.DataFrame, out_png: str | Path) -> None:
    """Per space (columns): synthetic vs real regional uptake, and Bland-Altman plots of uptake
    and AI with the pooled bias and 95 % limits; colour = input / loss."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    spaces = sorted(regional["space"].unique())
    fig, axes = plt.subplots(3, len(spaces), figsize=(5 * len(spaces), 13), squeeze=False)
    labels = sorted(set(regional["input"] + "/" + regional["loss"]))
    colours = dict(zip(labels, plt.cm.tab10.colors, strict=False))
    for c, space in enumerate(spaces):
        rows = regional[regional["space"] == space].dropna(subset=["synthetic", "real"])
        for r, (measure, kind) in enumerate(
            [("uptake", "scatter"), ("uptake", "ba"), ("AI", "ba")]
        ):
            ax = axes[r, c]
            sub = rows[rows["measure"] == measure]
            for label, g in sub.groupby(sub["input"] + "/" + sub["loss"]):
                if kind == "scatter":
                    x, y = g["real"], g["synthetic"]
                else:
                    x, y = (g["real"] + g["synthetic"]) / 2, g["synthetic"] - g["real"]
                ax.scatter(x, y, s=10, alpha=0.6, color=colours[label], label=label)
            units = "relative uptake" if measure == "uptake" else "AI (%)"
            if kind == "scatter":
                lim = [
                    sub[["real", "synthetic"]].min().min(),
                    sub[["real", "synthetic"]].max().max(),
                ]
                ax.plot(lim, lim, "k--", lw=1)
                ax.set(xlabel=f"real {units}", ylabel=f"synthetic {units}")
            elif len(sub) >= 2:
                ba = bland_altman(sub["synthetic"].to_numpy(), sub["real"].to_numpy())
                for level, style in ((ba.bias, "-"), (ba.lower, "--"), (ba.upper, "--")):
                    ax.axhline(level, color="k", ls=style, lw=1)
                ax.set(xlabel=f"mean of synthetic and real {units}", ylabel="synthetic - real")
            ax.set_title(
                f"{space}: {measure} ({'scatter' if kind == 'scatter' else 'Bland-Altman'})"
            )
        axes[0, c].legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    save_figure(fig, out_png, dpi=90)
