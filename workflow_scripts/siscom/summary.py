"""Per source (and per split, and pooled): how often SISCOM finds the focus, and how close it
comes to real SISCOM, with 95 % intervals: Wilson for proportions (few subjects: the Wald
interval would leave [0, 1]), a seeded percentile bootstrap over subjects for medians and means.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.proportion import proportion_confint

from workflow_scripts.siscom.sources import ORDER, REAL, source_kind

POOLED = "all"


def wilson_ci(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a proportion; NaN without trials."""
    if n == 0:
        return float("nan"), float("nan")
    lo, hi = proportion_confint(int(successes), int(n), alpha=1 - confidence, method="wilson")
    return float(lo), float(hi)


def bootstrap_ci(
    values,
    statistic: Callable[[np.ndarray], float] = np.median,
    *,
    n_resamples: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
) -> tuple[float, float]:
    """Percentile bootstrap interval of a statistic over subjects (NaN values dropped: a source
    without a cluster has no peak). NaN with fewer than two values: nothing to resample."""
    x = np.asarray(values, float)
    x = x[np.isfinite(x)]
    if x.size < 2:
        return float("nan"), float("nan")
    if np.ptp(x) == 0:
        return float(x[0]), float(x[0])  # every resample is the same
    res = stats.bootstrap(
        (x,),
        lambda s, axis: statistic(s, axis=axis),
        n_resamples=n_resamples,
        confidence_level=confidence,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def _proportion(flags: pd.Series, name: str, confidence: float) -> dict:
    known = flags.dropna().astype(bool)
    k, n = int(known.sum()), int(known.size)
    lo, hi = wilson_ci(k, n, confidence)
    frac = k / n if n else np.nan
    return {f"{name}_n": k, f"{name}_fraction": frac, f"{name}_ci_low": lo, f"{name}_ci_high": hi}


def _statistic(values: pd.Series, name: str, stat, boot: dict) -> dict:
    x = values.to_numpy(float)
    finite = x[np.isfinite(x)]
    value = float(stat(finite)) if finite.size else np.nan
    lo, hi = bootstrap_ci(x, stat, **boot)
    return {name: value, f"{name}_ci_low": lo, f"{name}_ci_high": hi}


def summarise_group(group: pd.DataFrame, confidence: float = 0.95, **boot) -> dict:
    """One source on one set of subjects."""
    boot = {"confidence": confidence, **boot}
    row: dict = {"n_subjects": int(group["subject"].nunique())}
    if "top_cluster_contains_focus" in group and group["top_cluster_contains_focus"].notna().any():
        row |= _proportion(group["top_cluster_contains_focus"], "focus_found", confidence)
        row |= _proportion(group["focus_cluster_rank"].notna(), "focus_in_any_cluster", confidence)
        row |= _statistic(group["focus_distance_mm"], "median_focus_distance_mm", np.median, boot)
    if "dice_with_real" in group:
        row |= _proportion(group["concordant_with_real"], "concordant_with_real", confidence)
        row |= _statistic(group["dice_with_real"], "mean_dice_with_real", np.mean, boot)
        row |= _statistic(
            group["peak_distance_to_real_mm"], "median_peak_distance_to_real_mm", np.median, boot
        )
    row["n_with_cluster"] = int((group["n_clusters"] > 0).sum())
    return row


def source_order(sources) -> list[str]:
    """Baselines in a fixed order (real, flat, PET mapped, raw PET), then the conditions."""
    present = list(dict.fromkeys(sources))
    return [s for s in ORDER if s in present] + [s for s in present if s not in ORDER]


def summarise(
    table: pd.DataFrame,
    *,
    n_resamples: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Per split (and pooled as 'all') and source: focus found by the top cluster and in any
    cluster (proportion, Wilson CI), median peak-to-focus distance, concordance, mean Dice and
    median peak distance with real SISCOM (bootstrap CIs over subjects)."""
    splits = [POOLED] + sorted(s for s in table.get("split", pd.Series()).dropna().unique() if s)
    rows = []
    for split in splits:
        part = table if split == POOLED else table[table["split"] == split]
        for source in source_order(part["source"]):
            group = part[part["source"] == source]
            stats_ = summarise_group(
                group, confidence=confidence, n_resamples=n_resamples, seed=seed
            )
            rows.append({"split": split, "source": source, "kind": source_kind(source), **stats_})
    summary = pd.DataFrame(rows)
    if "focus_found_fraction" in summary:
        # the report's question: does this source find the focus as often as real SISCOM?
        real = summary[summary["source"] == REAL].set_index("split")["focus_found_fraction"]
        summary["finds_focus_as_often_as_real"] = [
            bool(f >= real[s]) if s in real.index else np.nan
            for s, f in zip(summary["split"], summary["focus_found_fraction"], strict=True)
        ]
    return summary
