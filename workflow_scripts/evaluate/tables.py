"""Group-level evaluation jobs: the metrics table, Table 4, tests, figures and the summary."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from workflow_scripts.evaluate.metrics import METRICS
from workflow_scripts.evaluate.seed_variance import (
    effect_against_runs,
    variance_lines,
)

log = logging.getLogger(__name__)

ORDER = ["space", "input", "loss", "subject", "slice"]


def collect(metric_files: list[str | Path], order: list[str] = ORDER) -> pd.DataFrame:
    tables = [pd.read_csv(f, sep="\t") for f in metric_files if Path(f).stat().st_size > 1]
    table = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()
    return table.sort_values(order).reset_index(drop=True) if not table.empty else table


def render_table4(t4: pd.DataFrame, runs: int = 1) -> tuple[str, str]:
    """Markdown and HTML of Table 4 (mean and CV per metric and condition)."""
    shown = t4[["space", "input", "loss"]].copy()
    for m in METRICS:
        digits = 2 if m == "PSNR" else 4
        shown[m] = [
            f"{mean:.{digits}f} ({cv:.1f}%)"
            for mean, cv in zip(t4[f"{m}_mean"], t4[f"{m}_cv_percent"], strict=True)
        ]
    shown["slices"] = t4["n_slices"]
    header = "| " + " | ".join(shown.columns) + " |\n|" + "---|" * len(shown.columns) + "\n"
    body = "".join(
        "| " + " | ".join(str(v) for v in row) + " |\n" for row in shown.itertuples(index=False)
    )
    md = (
        "Reproduction of the paper's Table 4 (whole-slice metrics on [-1, 1], data range 2; not "
        "the primary endpoints, which are in volume_metrics.csv): mean (coefficient of "
        "variation) of each metric over the scored slices"
        + (f", each slice's score the mean over {runs} training runs" if runs > 1 else "")
        + ".\n\n"
        + header
        + body
    )
    html = shown.to_html(index=False, border=0, classes="table4")
    return md, (
        "<h3>Reproduction of the paper's Table 4 (whole-slice, [-1, 1]): mean (CV) per "
        f"condition</h3>\n{html}\n"
    )


# +1: higher is better, -1: lower is better (every metric of tables/metrics.csv)
BETTER = {
    "SSIM": 1,
    "PSNR": 1,
    "RMSE": -1,
    "SSIM_brain": 1,
    "PSNR_brain": 1,
    "RMSE_brain": -1,
    "MAE_rel": -1,
    "PSNR_rel_dB": 1,
    "SSIM_rel": 1,
}
PRIMARY_COLUMNS = ("MAE_rel", "PSNR_rel_dB", "SSIM_rel", "RMSE_rel")


def _primary_lines(volume: pd.DataFrame, ceiling: pd.DataFrame) -> list[str]:
    """Mean over subjects of the primary whole-volume metrics per condition, then the ceiling."""
    from workflow_scripts.evaluate.ceiling_names import CEILING_LABEL

    if volume.empty and ceiling.empty:
        return []
    lines = ["", "## Primary metrics (whole volume, relative uptake, inside the brain)", ""]
    lines.append(
        "Per subject on the rebuilt volumes (each divided by its brain mean), inside the MRI "
        "brain mask x the real SPECT's mask; PSNR with the fixed range 3.0 (relative uptake), "
        "3D SSIM on the non-negative volumes (Gaussian window sigma 1.5, K1 0.01, K2 0.03, data "
        "range 3.0). RMSE_rel is PSNR's other face (descriptive, not tested). Means over "
        "subjects."
    )
    lines += [
        "",
        "| space | input | loss | subjects | MAE_rel | PSNR_rel_dB | SSIM_rel | RMSE_rel |",
    ]
    lines.append("|---|---|---|---|---|---|---|---|")

    def row(label: tuple[str, str, str], g: pd.DataFrame) -> str:
        values = " | ".join(
            f"{g[c].mean():.{2 if 'dB' in c else 4}f}" if c in g else "n/a" for c in PRIMARY_COLUMNS
        )
        return "| " + " | ".join(label) + f" | {g['subject'].nunique()} | {values} |"

    if not volume.empty:
        volume = _label_twins(volume)
        for key, g in volume.groupby(["space", "input", "loss"]):
            lines.append(row(key, g))
    if not ceiling.empty:
        for space, g in ceiling.groupby("space"):
            lines.append(row((space, "-", CEILING_LABEL), g))
        lines += [
            "",
            f"{CEILING_LABEL}: the mean of Poisson redraws of each subject's expected SPECT, "
            "preprocessed and scaled like the real scan, scored against the real (one-draw) "
            "target: an estimate of the best predictor's score, not a bound.",
        ]
    if not volume.empty and "split" in volume and volume["split"].nunique() > 1:
        lines += ["", "### By split (test: intact brains; validation: post-surgical)", ""]
        splits = sorted(volume["split"].unique())
        head = " | ".join(f"{sp} MAE_rel / PSNR_rel_dB / SSIM_rel (n)" for sp in splits)
        lines += [f"| space | input | loss | {head} |", "|---|---|---|" + "---|" * len(splits)]
        for key, g in volume.groupby(["space", "input", "loss"]):
            cells = []
            for sp in splits:
                h = g[g["split"] == sp]
                cells.append(
                    f"{h['MAE_rel'].mean():.4f} / {h['PSNR_rel_dB'].mean():.2f} / "
                    f"{h['SSIM_rel'].mean():.4f} ({h['subject'].nunique()})"
                    if len(h)
                    else "n/a"
                )
            lines.append("| " + " | ".join(key) + " | " + " | ".join(cells) + " |")
    return lines


def _twin_rows(volume: pd.DataFrame) -> pd.Series:
    """Rows of 2D twins (context 0 beside 2.5D conditions); none when all share one context."""
    if "context" not in volume or volume["context"].nunique() < 2:
        return pd.Series(False, index=volume.index)
    return volume["context"] == 0


def without_twins(volume: pd.DataFrame) -> pd.DataFrame:
    """The volume table without the 2D twins: the tests compare conditions of one context, as
    Table 4 does."""
    return volume[~_twin_rows(volume)]


def _label_twins(volume: pd.DataFrame) -> pd.DataFrame:
    """2D twins get their own loss label, so they are not pooled with the 2.5D condition of the
    same input and loss."""
    twin = _twin_rows(volume)
    if not twin.any():
        return volume
    volume = volume.copy()
    volume.loc[twin, "loss"] = volume.loc[twin, "loss"] + " (2D twin)"
    return volume


def _mean(df: pd.DataFrame, metric: str, **where) -> float:
    sel = df
    for k, v in where.items():
        sel = sel[sel[k] == v]
    return float(sel[metric].mean()) if len(sel) else float("nan")


def results_summary(
    metrics: pd.DataFrame,
    tests: pd.DataFrame,
    baselines: pd.DataFrame,
    alpha: float,
    volume: pd.DataFrame | None = None,
    ceiling: pd.DataFrame | None = None,
    run_metrics: pd.DataFrame | None = None,
    variance: pd.DataFrame | None = None,
) -> str:
    """Which of the paper's findings this run reproduces, computed from its own tables, then
    the primary metrics and the baselines. `metrics` and `volume`: per subject (and slice) the
    mean over training runs; `run_metrics`: every run's slice rows (default `metrics`, one
    run), against whose run-to-run variation each finding's difference is judged;
    `variance`: the seed_variance table."""
    from workflow_scripts.evaluate.ceiling_names import CEILING_LABEL, CEILING_METHOD

    run_rows = run_metrics if run_metrics is not None else metrics

    lines = ["# Results summary", ""]
    n_subj = metrics["subject"].nunique()
    lines.append(
        f"Scored {len(metrics)} slices of {n_subj} held-out subjects "
        f"({', '.join(sorted(metrics['split'].unique()))}) under {metrics.groupby(['space', 'input', 'loss']).ngroups} conditions. "
        "Tests two-tailed paired, alpha "
        f"{alpha}; the subject-level Holm-corrected tests are the ones to trust. PSNR and RMSE "
        "are one endpoint (PSNR = 20 log10(range / RMSE)): only PSNR is tested."
    )
    lines += [
        "",
        "## The paper's findings (reproduction of its Table 4 metrics: [-1, 1] slices, data range 2)",
        "",
    ]

    def evidence(figure: str, better: str, facet: str, a: str, b: str) -> str:
        """The tests of a figure's SSIM comparisons, then the effect against run-to-run spread."""
        sub = tests[(tests["figure"] == figure) & (tests["metric"] == "SSIM")]
        s_sig = sub[(sub["level"] == "slice") & sub["significant"]]
        subj_sig = sub[(sub["level"] == "subject") & sub["significant_holm"]]
        return (
            f"{better}; SSIM comparisons significant at slice level: {len(s_sig)}/{len(sub[sub['level'] == 'slice'])}, "
            f"at subject level after Holm: {len(subj_sig)}/{len(sub[sub['level'] == 'subject'])}; "
            + effect_against_runs(run_rows, "SSIM", facet, a, b)
        )

    spaces = set(metrics["space"])
    if {"native", "template"} <= spaces:
        nat, tem = _mean(metrics, "SSIM", space="native"), _mean(metrics, "SSIM", space="template")
        ok = nat >= tem
        lines.append(
            f"- **Native >= template** (paper: +5.4% SSIM): {'reproduced' if ok else 'not reproduced'} — "
            f"mean SSIM native {nat:.4f} vs template {tem:.4f} ({100 * (nat - tem) / tem:+.1f}%). "
            + evidence("fig5_space", "native minus template", "space", "native", "template")
        )
    losses = set(metrics["loss"])
    if {"l1_bce", "l1_bce_ssim"} <= losses:
        a, b = _mean(metrics, "SSIM", loss="l1_bce"), _mean(metrics, "SSIM", loss="l1_bce_ssim")
        sub = tests[(tests["figure"] == "fig6_loss") & (tests["level"] == "subject")]
        # mean_diff is l1_bce minus l1_bce_ssim: the SSIM loss helps where that difference
        # points the way the metric calls worse (lower SSIM/PSNR, higher RMSE)
        helps = -sub["mean_diff"] * sub["metric"].map(BETTER).fillna(0) > 0
        gain = (b - a) > 0 and bool((sub["significant_holm"] & helps).any())
        lines.append(
            f"- **SSIM loss brings no gain**: {'not reproduced' if gain else 'reproduced'} — mean SSIM "
            f"without {a:.4f}, with {b:.4f}. "
            + evidence("fig6_loss", "l1_bce minus l1_bce_ssim", "loss", "l1_bce", "l1_bce_ssim")
        )
    inputs = set(metrics["input"])
    if {"mri", "pet"} <= inputs:
        m, p = _mean(metrics, "SSIM", input="mri"), _mean(metrics, "SSIM", input="pet")
        close = abs(m - p) <= 0.05 * max(abs(m), abs(p))
        lines.append(
            f"- **PET ≈ MRI (PET slightly better, more consistent)**: {'reproduced' if close and p >= m else 'partly reproduced' if close else 'not reproduced'} — "
            f"mean SSIM MRI {m:.4f}, PET {p:.4f}"
            + (
                f", MRI+PET {_mean(metrics, 'SSIM', input='mri_pet'):.4f}"
                if "mri_pet" in inputs
                else ""
            )
            + ". "
            + evidence("fig7_input", "between inputs", "input", "pet", "mri")
        )
    lines += _primary_lines(
        volume if volume is not None else pd.DataFrame(),
        ceiling if ceiling is not None else pd.DataFrame(),
    )
    if variance is not None:
        lines += variance_lines(variance)
    if not baselines.empty:
        baselines = baselines.replace({"method": {CEILING_METHOD: CEILING_LABEL}})
        lines += [
            "",
            "## Against the baselines (Table 4 reproduction metrics, mean over held-out slices)",
            "",
        ]
        lines.append("| space | input | method | SSIM | PSNR (dB) | RMSE |")
        lines.append("|---|---|---|---|---|---|")
        for (space, inp, method), g in baselines.groupby(["space", "input", "method"]):
            lines.append(
                f"| {space} | {inp} | {method} | {g['SSIM'].mean():.4f} | {g['PSNR'].mean():.2f} | {g['RMSE'].mean():.4f} |"
            )
        for (space, inp, loss), g in metrics.groupby(["space", "input", "loss"]):
            lines.append(
                f"| {space} | {inp} | model {loss} | {g['SSIM'].mean():.4f} | {g['PSNR'].mean():.2f} | {g['RMSE'].mean():.4f} |"
            )
    return "\n".join(lines) + "\n"


def read_or_empty(path: str | Path) -> pd.DataFrame:
    """A CSV table, or an empty one where the file is empty (a step that had nothing to do)."""
    return pd.read_csv(path) if Path(path).stat().st_size > 1 else pd.DataFrame()
