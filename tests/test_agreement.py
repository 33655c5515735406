"""Agreement statistics against published values and hand-worked cases."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from workflow_scripts.regions.agreement import bland_altman, icc, two_way_mean_squares, wilson
from workflow_scripts.regions.summary import agreement_table, lateralisation, side

# Shrout & Fleiss (1979), Table 2: 6 targets rated by 4 judges.
SHROUT_FLEISS = np.array(
    [[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]],
    dtype=float,
)


def test_mean_squares_match_shrout_fleiss_anova_table():
    # their Table 3: between targets 11.24, between judges 32.49, residual 1.02
    msr, msc, mse = two_way_mean_squares(SHROUT_FLEISS)
    assert (round(msr, 2), round(msc, 2), round(mse, 2)) == (11.24, 32.49, 1.02)


def test_icc_matches_shrout_fleiss_published_values():
    r = icc(SHROUT_FLEISS)
    assert round(r.absolute, 2) == 0.29  # ICC(2,1) = ICC(A,1)
    assert round(r.consistency, 2) == 0.71  # ICC(3,1) = ICC(C,1)
    assert r.n == 6
    # 95 % interval of ICC(2,1) as R's psych::ICC reports it for these data: 0.019 to 0.76
    assert r.lower == pytest.approx(0.019, abs=0.001)
    assert r.upper == pytest.approx(0.76, abs=0.005)


def test_icc_interval_covers_the_true_value_about_95_percent_of_the_time():
    """Two-way random model: ICC(A,1) = var_targets / (var_targets + var_raters + var_error)."""
    rng = np.random.default_rng(0)
    n, k, var_t, var_r, var_e = 15, 3, 4.0, 1.0, 1.0
    truth = var_t / (var_t + var_r + var_e)
    hits = 0
    reps = 1000
    for _ in range(reps):
        x = (
            rng.normal(0, np.sqrt(var_t), (n, 1))
            + rng.normal(0, np.sqrt(var_r), (1, k))
            + rng.normal(0, np.sqrt(var_e), (n, k))
        )
        r = icc(x)
        hits += r.lower <= truth <= r.upper
    assert 0.92 <= hits / reps <= 0.985


def test_a_constant_offset_lowers_absolute_agreement_not_consistency():
    real = np.array([0.8, 0.9, 1.0, 1.1, 1.2, 1.3])
    r = icc(np.column_stack([real + 0.2, real]))
    assert r.consistency == pytest.approx(1.0)
    assert r.absolute < 0.8
    same = icc(np.column_stack([real, real + np.array([0.01, -0.01] * 3)]))
    assert same.absolute > 0.98


def test_icc_drops_incomplete_rows_and_needs_two():
    x = np.array([[1.0, 1.1], [np.nan, 2.0], [3.0, 2.9]])
    assert icc(x).n == 2
    with pytest.raises(ValueError, match="at least 2 targets"):
        icc(x[:2])


def test_bland_altman_hand_worked():
    # differences 0, 1, 2, 3: mean 1.5, SD sqrt(5/3)
    ba = bland_altman(np.array([1.0, 2, 3, 4]), np.ones(4))
    sd = np.sqrt(5 / 3)
    assert (ba.bias, ba.sd, ba.n) == (pytest.approx(1.5), pytest.approx(sd), 4)
    assert ba.lower == pytest.approx(1.5 - 1.96 * sd)
    assert ba.upper == pytest.approx(1.5 + 1.96 * sd)


def _wilson_by_hand(x: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    p = x / n
    centre = (p + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z / (1 + z**2 / n) * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2))
    return centre - half, centre + half


def test_wilson_interval_by_its_formula():
    p, lo, hi = wilson(7, 9)
    assert p == pytest.approx(7 / 9)
    assert (lo, hi) == pytest.approx(_wilson_by_hand(7, 9), abs=1e-6)
    assert np.isnan(wilson(0, 0)[0])


def _rows(subject, condition, region_ai: dict, focus: str, source="truth") -> list[dict]:
    return [
        {
            "subject": subject,
            "space": condition[0],
            "input": condition[1],
            "loss": condition[2],
            "measure": "AI",
            "region": region,
            "synthetic": s,
            "real": r,
            "focus_region": focus,
            "focus_source": source,
        }
        for region, (s, r) in region_ai.items()
    ]


def test_side_and_lateralisation_agreement():
    assert list(side([6.0, -6.0, 4.9, -5.0], 5.0)) == ["L", "R", "none", "none"]
    cond = ("native", "mri", "l1_bce")
    rows = pd.DataFrame(
        _rows("sub-1", cond, {"temporal": (8.0, 12.0), "frontal": (-9.0, 9.0)}, "temporal")
        + _rows("sub-2", cond, {"temporal": (-6.0, 7.0), "frontal": (0.0, 0.0)}, "temporal")
        + _rows("sub-3", cond, {"temporal": (1.0, -2.0), "frontal": (30.0, 0.0)}, "temporal")
    )
    # focus region only: sub-1 L/L agree, sub-2 R/L disagree, sub-3 none/none agree
    out = lateralisation(rows, threshold=5.0)
    assert (out["lateralisation_n"], out["lateralisation_agree"]) == (3, 2)
    assert out["lateralisation_real_sided"] == 2
    assert (out["lateralisation_lower"], out["lateralisation_upper"]) == pytest.approx(
        _wilson_by_hand(2, 3), abs=1e-6
    )


def test_agreement_table_has_one_row_per_condition():
    rows = []
    rng = np.random.default_rng(1)
    for cond in [("native", "mri", "l1_bce"), ("template", "pet", "l1_bce")]:
        for s in range(3):
            real = rng.uniform(0.8, 1.2, 4)
            for j, r in enumerate(real):
                rows.append(
                    {
                        "subject": f"sub-{s}",
                        "space": cond[0],
                        "input": cond[1],
                        "loss": cond[2],
                        "measure": "uptake",
                        "region": f"r{j}",
                        "synthetic": r + 0.05,
                        "real": r,
                        "focus_region": "r",
                        "focus_source": "largest_real_AI",
                    }
                )
    table = agreement_table(pd.DataFrame(rows), 5.0)
    assert len(table) == 2 and set(table["n_subjects"]) == {3}
    assert table["uptake_n"].tolist() == [12, 12]
    assert table["uptake_BA_bias"].to_numpy() == pytest.approx([0.05, 0.05])
    assert table["uptake_ICC_C1"].to_numpy() == pytest.approx([1.0, 1.0])
