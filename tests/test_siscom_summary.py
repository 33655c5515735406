"""The SISCOM summary's intervals: Wilson for proportions (checked against statsmodels and a
hand-worked value), a seeded percentile bootstrap over subjects; per split and pooled."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.proportion import proportion_confint

from workflow_scripts.siscom.summary import bootstrap_ci, summarise, wilson_ci


def test_wilson_interval_by_hand_and_statsmodels():
    # 3 of 4, z = 1.96: centre (p + z^2/2n) / (1 + z^2/n), half-width z/(1 + z^2/n) *
    # sqrt(p(1-p)/n + z^2/4n^2) -> 0.6275 -+ 0.3269
    lo, hi = wilson_ci(3, 4)
    assert (lo, hi) == pytest.approx((0.3006, 0.9544), abs=1e-4)
    for k, n in ((0, 5), (5, 5), (7, 19)):
        assert wilson_ci(k, n) == pytest.approx(proportion_confint(k, n, method="wilson"))
    assert wilson_ci(0, 5)[0] == pytest.approx(0.0) and wilson_ci(5, 5)[1] == pytest.approx(1.0)
    assert np.isnan(wilson_ci(0, 0)).all()


def test_bootstrap_interval_is_seeded_and_contains_the_statistic():
    x = np.random.default_rng(1).normal(10, 3, 12)
    a = bootstrap_ci(x, np.median, seed=3)
    assert a[0] <= np.median(x) <= a[1] and a[1] - a[0] < np.ptp(x)
    m = bootstrap_ci(x, np.mean, seed=3)
    assert m == bootstrap_ci(x, np.mean, seed=3)  # seeded: the same interval every run
    assert m != bootstrap_ci(x, np.mean, seed=4)
    sem = x.std(ddof=1) / np.sqrt(x.size)  # the normal interval, for scale
    assert m[0] == pytest.approx(x.mean() - 1.96 * sem, abs=0.6 * sem)
    assert m[1] == pytest.approx(x.mean() + 1.96 * sem, abs=0.6 * sem)
    assert bootstrap_ci([1.0, np.nan, 1.0]) == (1.0, 1.0)
    assert np.isnan(bootstrap_ci([2.0, np.nan])).all()


def rows(split, source, found, dist, dice):
    return [
        {
            "subject": f"sub-{split}{i}",
            "split": split,
            "source": source,
            "n_clusters": 1,
            "top_cluster_contains_focus": f,
            "focus_cluster_rank": 1.0 if f else np.nan,
            "focus_distance_mm": d,
            "dice_with_real": c,
            "concordant_with_real": c > 0,
            "peak_distance_to_real_mm": d,
        }
        for i, (f, d, c) in enumerate(zip(found, dist, dice, strict=True))
    ]


def test_summary_per_split_and_pooled():
    table = pd.DataFrame(
        rows("test", "real", [1, 1, 1], [3, 4, 5], [1, 1, 1])
        + rows("test", "flat", [1, 0, 0], [5, 40, 60], [0.5, 0, 0])
        + rows("validation", "real", [1, 0], [2, 50], [1, 1])
        + rows("validation", "flat", [0, 0], [30, 70], [0, 0])
    )
    s = summarise(table, n_resamples=500).set_index(["split", "source"])
    assert list(s.index.get_level_values(0).unique()) == ["all", "test", "validation"]
    assert s.loc[("all", "real"), "focus_found_n"] == 4
    assert s.loc[("all", "real"), "n_subjects"] == 5
    assert s.loc[("all", "real"), "focus_found_fraction"] == pytest.approx(0.8)
    lo, hi = proportion_confint(4, 5, method="wilson")
    assert s.loc[("all", "real"), "focus_found_ci_low"] == pytest.approx(lo)
    assert s.loc[("all", "real"), "focus_found_ci_high"] == pytest.approx(hi)
    assert s.loc[("test", "flat"), "focus_found_fraction"] == pytest.approx(1 / 3)
    assert s.loc[("test", "flat"), "median_focus_distance_mm"] == 40
    assert s.loc[("validation", "flat"), "mean_dice_with_real"] == 0
    assert s.loc[("all", "flat"), "mean_dice_with_real"] == pytest.approx(0.1)
    low, high = (s.loc[("all", "flat"), f"mean_dice_with_real_ci_{e}"] for e in ("low", "high"))
    assert low <= 0.1 <= high
    assert not s.loc[("all", "flat"), "finds_focus_as_often_as_real"]
    assert s.loc[("all", "real"), "finds_focus_as_often_as_real"]
