"""The paper's Table 4 and its paired t-tests (Figs. 5-7), plus subject-level tests.

Slice-level tests pair the k-th scored slice of a subject under two conditions (what the paper
did: 2 x 1,100 slices). Slices of one subject are not independent, so the subject-level tests
pair each subject's mean instead (for the primary metrics: the subject's whole-volume score when
the volume table is given); they are the ones to trust. Tested metrics come in two families
(metrics.TESTED): the paper's Table 4 reproduction (SSIM, PSNR on [-1, 1]) and the primary
relative-uptake metrics (MAE_rel, PSNR_rel_dB, SSIM_rel). RMSE is not tested: PSNR is a
function of it, one endpoint. All p-values are two-tailed and Holm-corrected within each level
and family; effect size is Cohen's d_z (mean / SD of the paired differences).
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.multitest import multipletests

from workflow_scripts.evaluate.metrics import METRICS, TESTED

KEYS = ["subject", "slice"]
CONDITION_KEYS = ("space", "input", "loss")
# Every tests table has these columns, also with no comparison to make (a study of one
# condition), so the CSV always has a header and reads back.
TEST_COLUMNS = [
    *("figure", "comparison", "family", "metric", "level"),
    *(f"{side}_{k}" for side in "ab" for k in CONDITION_KEYS),
    *("n", "mean_diff", "t", "p", "dz", "p_holm", "significant", "significant_holm"),
]


def table4(metrics: pd.DataFrame, columns=METRICS) -> pd.DataFrame:
    """Mean and coefficient of variation (%) of each metric per condition."""
    rows = []
    for (space, inp, loss), g in metrics.groupby(["space", "input", "loss"], sort=True):
        row = {
            "space": space,
            "input": inp,
            "loss": loss,
            "n_slices": len(g),
            "n_subjects": g["subject"].nunique(),
        }
        for m in columns:
            mean = g[m].mean()
            row[f"{m}_mean"] = mean
            row[f"{m}_cv_percent"] = 100.0 * g[m].std(ddof=1) / abs(mean) if mean else np.nan
        rows.append(row)
    return pd.DataFrame(rows)


def comparisons(spaces, inputs, losses) -> list[dict]:
    """The paper's figure comparisons: Fig. 5 spaces, Fig. 6 losses, Fig. 7 inputs."""
    out = []
    if {"native", "template"} <= set(spaces):
        for inp, loss in itertools.product(inputs, losses):
            out.append(
                dict(
                    figure="fig5_space",
                    a={"space": "native", "input": inp, "loss": loss},
                    b={"space": "template", "input": inp, "loss": loss},
                )
            )
    if {"l1_bce", "l1_bce_ssim"} <= set(losses):
        for space, inp in itertools.product(spaces, inputs):
            out.append(
                dict(
                    figure="fig6_loss",
                    a={"space": space, "input": inp, "loss": "l1_bce"},
                    b={"space": space, "input": inp, "loss": "l1_bce_ssim"},
                )
            )
    for space, loss in itertools.product(spaces, losses):
        for i, j in itertools.combinations(inputs, 2):
            out.append(
                dict(
                    figure="fig7_input",
                    a={"space": space, "input": i, "loss": loss},
                    b={"space": space, "input": j, "loss": loss},
                )
            )
    return out


def _select(df: pd.DataFrame, cond: dict) -> pd.DataFrame:
    mask = np.ones(len(df), bool)
    for k, v in cond.items():
        mask &= (df[k] == v).to_numpy()
    return df[mask]


def paired(a: np.ndarray, b: np.ndarray) -> dict:
    """Two-tailed paired t-test and Cohen's d_z of a - b."""
    diff = np.asarray(a, float) - np.asarray(b, float)
    n = len(diff)
    if n < 2 or np.allclose(diff, diff[0]):
        return {
            "n": n,
            "mean_diff": float(diff.mean()) if n else np.nan,
            "t": np.nan,
            "p": np.nan,
            "dz": np.nan,
        }
    t, p = stats.ttest_rel(a, b)
    sd = diff.std(ddof=1)
    return {
        "n": n,
        "mean_diff": float(diff.mean()),
        "t": float(t),
        "p": float(p),
        "dz": float(diff.mean() / sd) if sd else np.nan,
    }


def _subject_means(
    rows: pd.DataFrame, volume: pd.DataFrame | None, cond: dict, metric: str
) -> pd.DataFrame:
    """Per subject: its whole-volume score where the volume table has the metric, else the
    mean over its scored slices."""
    if volume is not None and not volume.empty and metric in volume.columns:
        return _select(volume, cond).groupby("subject")[[metric]].mean()
    return rows.groupby("subject")[[metric]].mean()


def run_tests(
    metrics: pd.DataFrame,
    comps: list[dict],
    tested: dict[str, tuple[str, ...]] = TESTED,
    alpha: float = 0.01,
    volume: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Paired tests of every comparison and tested metric present in `metrics`, slice and
    subject level, Holm-corrected within level x family."""
    rows = []
    for comp in comps:
        a, b = _select(metrics, comp["a"]), _select(metrics, comp["b"])
        if a.empty or b.empty:
            continue
        label = " vs ".join(
            "/".join(str(c[k]) for k in CONDITION_KEYS) for c in (comp["a"], comp["b"])
        )
        for family, columns in tested.items():
            for m in (c for c in columns if c in metrics.columns):
                joined = a[KEYS + [m]].merge(b[KEYS + [m]], on=KEYS, suffixes=("_a", "_b"))
                joined = joined.dropna()
                slice_level = paired(joined[f"{m}_a"].to_numpy(), joined[f"{m}_b"].to_numpy())
                subj = (
                    _subject_means(a, volume, comp["a"], m)
                    .merge(
                        _subject_means(b, volume, comp["b"], m),
                        left_index=True,
                        right_index=True,
                        suffixes=("_a", "_b"),
                    )
                    .dropna()
                )
                subject_level = paired(subj[f"{m}_a"].to_numpy(), subj[f"{m}_b"].to_numpy())
                for level, res in (("slice", slice_level), ("subject", subject_level)):
                    rows.append(
                        {
                            "figure": comp["figure"],
                            "comparison": label,
                            "family": family,
                            "metric": m,
                            "level": level,
                            **{f"a_{k}": v for k, v in comp["a"].items()},
                            **{f"b_{k}": v for k, v in comp["b"].items()},
                            **res,
                        }
                    )
    table = pd.DataFrame(rows, columns=TEST_COLUMNS[:-3])
    table["p_holm"] = np.nan
    for (_, _), idx in table[table["p"].notna()].groupby(["level", "family"]).groups.items():
        table.loc[idx, "p_holm"] = multipletests(table.loc[idx, "p"], method="holm")[1]
    table["significant"] = table["p"] < alpha
    table["significant_holm"] = table["p_holm"] < alpha
    return table[TEST_COLUMNS]


def stars(p: float, alpha: float = 0.01) -> str:
    return "*" if p == p and p < alpha else ""
