"""Training-seed variance (train.seeds): each condition is trained once per run k with seed
train.seed + k, and every run's synthetic SPECTs are scored on the same held-out subjects.

- Table 4 and the condition tests use, per subject (and slice), the mean over runs
  (`mean_over_runs`): a condition's score is not one lucky or unlucky initialisation.
- `seed_variance` gives, per space x condition x metric, each run's cohort mean, their mean and
  the between-run SD (tables/seed_variance.csv). Cohort mean: for the primary relative-uptake
  metrics the mean over subjects of the whole-volume score; for the paper's SSIM and PSNR the
  mean over the scored slices, as Table 4.
- `effect_against_runs` says whether a condition effect (a difference of cohort means) exceeds
  twice the between-run SD, the SD pooled over the two sides (root mean square): smaller
  effects could be retraining noise.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

RUN = "run"
CONDITION_KEYS = ["space", "input", "loss"]
# Columns that identify a score's row, beside the run: rows equal in these are the same subject
# (and slice) under the same condition, scored once per run.
ID_COLUMNS = ("condition", "subject", "split", "space", "input", "loss", "context", "slice", "z")
# metric -> the table its cohort mean comes from: whole-volume scores (primary) or slices (paper)
VARIANCE_METRICS = {
    "MAE_rel": "volume",
    "PSNR_rel_dB": "volume",
    "SSIM_rel": "volume",
    "SSIM": "slices",
    "PSNR": "slices",
}
ONE_RUN = "run-to-run variation: cannot say: 1 run"


def with_run(table: pd.DataFrame) -> pd.DataFrame:
    """The table with an integer run column (0 for score files written before train.seeds)."""
    if table.empty:
        return table
    out = table.copy()
    out[RUN] = out[RUN].fillna(0).astype(int) if RUN in out else 0
    return out


def n_runs(table: pd.DataFrame) -> int:
    return int(table[RUN].nunique()) if RUN in table and not table.empty else 1


def mean_over_runs(table: pd.DataFrame) -> pd.DataFrame:
    """Per subject (and slice) and condition, the mean over training runs of every score;
    without the run column. One run: the same rows, unchanged."""
    if table.empty or RUN not in table:
        return table
    if table[RUN].nunique() < 2:
        return table.drop(columns=RUN)
    ids = [c for c in table.columns if c in ID_COLUMNS]
    values = [c for c in table.columns if c not in ids and c != RUN]
    means = table.groupby(ids, sort=False, dropna=False)[values].mean().reset_index()
    return means[[c for c in table.columns if c != RUN]]


def seed_variance(metrics: pd.DataFrame, volume: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """Per space x condition x metric: each run's cohort mean (`mean_run<k>`), the mean over
    runs and the between-run SD (ddof 1; nan with one run). `volume` without 2D twins."""
    sources = {"slices": with_run(metrics), "volume": with_run(volume)}
    runs = sorted({k for t in sources.values() if not t.empty for k in t[RUN].unique()})
    rows = []
    for metric, source in VARIANCE_METRICS.items():
        table = sources[source]
        if table.empty or metric not in table:
            continue
        for key, g in table.groupby(CONDITION_KEYS, sort=True):
            per_run = g.groupby(RUN)[metric].mean()
            row = {
                **dict(zip(CONDITION_KEYS, key, strict=True)),
                "metric": metric,
                "cohort_mean_of": "subjects" if source == "volume" else "slices",
                "n_runs": len(per_run),
                "seeds": ";".join(str(seed + int(k)) for k in per_run.index),
                "n_subjects": g["subject"].nunique(),
            }
            row.update({f"mean_run{k}": per_run.get(k, np.nan) for k in runs})
            row["mean_over_runs"] = per_run.mean()
            row["sd_between_runs"] = per_run.std(ddof=1) if len(per_run) > 1 else np.nan
            rows.append(row)
    return pd.DataFrame(rows)


def effect_against_runs(metrics: pd.DataFrame, metric: str, factor: str, a: str, b: str) -> str:
    """Whether the difference of the cohort means of `factor` = a and = b (each pooled over
    the rows of that side, averaged over runs) exceeds twice their between-run SD."""
    table = with_run(metrics)
    sides = [table[table[factor] == v].groupby(RUN)[metric].mean() for v in (a, b)]
    common = sides[0].index.intersection(sides[1].index)
    if len(common) < 2:
        return ONE_RUN
    mean_a, mean_b = (s.loc[common] for s in sides)
    diff = mean_a.mean() - mean_b.mean()
    sd = float(np.sqrt((mean_a.var(ddof=1) + mean_b.var(ddof=1)) / 2))
    verdict = "exceeds" if abs(diff) > 2 * sd else "does not exceed"
    return (
        f"run-to-run variation ({len(common)} runs): the {metric} difference {a} minus {b}, "
        f"{diff:+.4f}, {verdict} twice the between-run SD (2 x {sd:.4f})"
    )


def variance_lines(variance: pd.DataFrame) -> list[str]:
    """The summary's section from the seed_variance table: the primary metrics of each
    condition, mean over runs (between-run SD)."""
    runs = int(variance["n_runs"].max()) if not variance.empty else 1
    lines = ["", "## Training-seed variance", ""]
    if runs < 2:
        return lines + [
            f"One training run per condition (train.seeds 1): {ONE_RUN}. Set train.seeds >= 2 "
            "to judge condition effects against it."
        ]
    seeds = variance.loc[variance["n_runs"] == runs, "seeds"].iloc[0].replace(";", ", ")
    lines.append(
        f"{runs} training runs per condition (seeds {seeds}); Table 4, the tests and the means "
        "above use each subject's (and slice's) mean over runs. Below: cohort mean over runs "
        "(between-run SD); per-run means in tables/seed_variance.csv."
    )
    shown = [m for m, source in VARIANCE_METRICS.items() if source == "volume"]
    lines += ["", "| space | input | loss | runs | " + " | ".join(shown) + " |"]
    lines.append("|---|---|---|---|" + "---|" * len(shown))
    for key, g in variance.groupby(CONDITION_KEYS, sort=True):
        cells = []
        for m in shown:
            r = g[g["metric"] == m]
            d = 2 if "dB" in m else 4
            if len(r):
                mean, sd = r["mean_over_runs"].iloc[0], r["sd_between_runs"].iloc[0]
                cells.append(f"{mean:.{d}f} ({sd:.{d}f})")
            else:
                cells.append("n/a")
        lines.append(f"| {' | '.join(key)} | {g['n_runs'].max()} | {' | '.join(cells)} |")
    return lines
