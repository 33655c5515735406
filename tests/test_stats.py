"""Table 4 and the paired tests against scipy/statsmodels, and the results summary."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from workflow_scripts.evaluate.stats import comparisons, paired, run_tests, table4
from workflow_scripts.evaluate.tables import results_summary


def fake_metrics(seed=0) -> pd.DataFrame:
    """Three conditions x 4 subjects x 5 slices; native better than template by design."""
    rng = np.random.default_rng(seed)
    rows = []
    for space, shift in (("native", 0.05), ("template", 0.0)):
        for inp in ("mri", "pet"):
            for s in range(4):
                subj_effect = rng.normal(0, 0.02)
                for k in range(5):
                    ssim = 0.7 + shift + subj_effect + rng.normal(0, 0.01)
                    rows.append(
                        {
                            "condition": f"{space}/{inp}/l1_bce",
                            "space": space,
                            "input": inp,
                            "loss": "l1_bce",
                            "subject": f"sub-{s:02d}",
                            "split": "test",
                            "slice": k,
                            "SSIM": ssim,
                            "RMSE": 0.3 - ssim / 4,
                            "PSNR": 20 + 10 * ssim,
                            "MAE_rel": 0.4 - ssim / 3 + rng.normal(0, 0.01),
                        }
                    )
    return pd.DataFrame(rows)


def test_table4_mean_and_cv():
    df = fake_metrics()
    t4 = table4(df)
    g = df[(df["space"] == "native") & (df["input"] == "pet")]["SSIM"]
    row = t4[(t4["space"] == "native") & (t4["input"] == "pet")].iloc[0]
    assert row["SSIM_mean"] == pytest.approx(g.mean())
    assert row["SSIM_cv_percent"] == pytest.approx(100 * g.std(ddof=1) / g.mean())
    assert row["n_slices"] == 20 and row["n_subjects"] == 4


def test_paired_matches_scipy_and_dz():
    rng = np.random.default_rng(1)
    a, b = rng.normal(0, 1, 30), rng.normal(0.3, 1, 30)
    res = paired(a, b)
    ref = stats.ttest_rel(a, b)
    assert res["t"] == pytest.approx(ref.statistic) and res["p"] == pytest.approx(ref.pvalue)
    d = a - b
    assert res["dz"] == pytest.approx(d.mean() / d.std(ddof=1))


def test_slice_and_subject_level_tests_with_holm():
    df = fake_metrics()
    comps = comparisons(["native", "template"], ["mri", "pet"], ["l1_bce"])
    assert {c["figure"] for c in comps} == {"fig5_space", "fig7_input"}
    tests = run_tests(df, comps, alpha=0.01)
    row = tests[
        (tests["figure"] == "fig5_space")
        & (tests["a_input"] == "pet")
        & (tests["metric"] == "SSIM")
        & (tests["level"] == "subject")
    ].iloc[0]
    a = df[(df["space"] == "native") & (df["input"] == "pet")].groupby("subject")["SSIM"].mean()
    b = df[(df["space"] == "template") & (df["input"] == "pet")].groupby("subject")["SSIM"].mean()
    assert row["p"] == pytest.approx(stats.ttest_rel(a, b).pvalue) and row["n"] == 4
    # PSNR is a function of RMSE: one endpoint, only PSNR is tested
    assert "RMSE" not in set(tests["metric"])
    assert set(tests["family"]) == {"table4", "primary"}
    for family in ("table4", "primary"):
        sl = tests[(tests["level"] == "slice") & (tests["family"] == family) & tests["p"].notna()]
        # Holm by hand within level x family: sorted p times (m - rank), cumulative max, cap 1
        p = sl["p"].to_numpy()
        order = np.argsort(p)
        m = len(p)
        adj = np.minimum(1, np.maximum.accumulate((m - np.arange(m)) * p[order]))
        expected = np.empty(m)
        expected[order] = adj
        np.testing.assert_allclose(sl["p_holm"].to_numpy(), expected)
    assert row["mean_diff"] > 0 and bool(
        tests[
            (tests["figure"] == "fig5_space")
            & (tests["level"] == "slice")
            & (tests["metric"] == "SSIM")
        ]["significant"].all()
    )


def test_summary_states_findings_from_the_tables():
    df = fake_metrics()
    tests = run_tests(df, comparisons(["native", "template"], ["mri", "pet"], ["l1_bce"]))
    text = results_summary(df, tests, pd.DataFrame(), 0.01)
    assert (
        "Native >= template" in text
        and "reproduced" in text.split("Native >= template")[1].split("\n")[0]
    )
    flipped = df.assign(space=df["space"].map({"native": "template", "template": "native"}))
    text2 = results_summary(
        flipped,
        run_tests(flipped, comparisons(["native", "template"], ["mri", "pet"], ["l1_bce"])),
        pd.DataFrame(),
        0.01,
    )
    assert "not reproduced" in text2.split("Native >= template")[1].split("\n")[0]


def test_a_study_of_one_condition_has_an_empty_but_readable_tests_table(tmp_path):
    """One condition leaves nothing to compare: the tests table is empty but keeps its header,
    and the figures and the summary are still built from it (as in a one-condition run)."""
    from workflow_scripts.evaluate import figures

    metrics = fake_metrics()
    one = metrics[(metrics["space"] == "native") & (metrics["input"] == "pet")]
    tests = run_tests(one, comparisons(["native"], ["pet"], ["l1_bce"]))
    assert tests.empty and "p_holm" in tests.columns
    tests.to_csv(tmp_path / "tests.csv", index=False)
    back = pd.read_csv(tmp_path / "tests.csv")
    assert back.empty and list(back.columns) == list(tests.columns)
    figures.violin_figure(one, back, "space", "loss", "fig5_space", tmp_path / "fig5.png")
    figures.input_figure(one, back, tmp_path / "fig7.png")
    assert (tmp_path / "fig5.png").stat().st_size > 5000
    assert "Scored 20 slices" in results_summary(one, back, pd.DataFrame(), 0.01)


def test_ssim_loss_gain_counts_each_metric_in_its_own_direction():
    """A Holm-significant MAE difference where the SSIM loss has the *higher* MAE is no gain."""
    df = fake_metrics().query("space == 'native'")
    other = df.assign(loss="l1_bce_ssim", condition=df["condition"] + "_ssim")
    other["SSIM"] = other["SSIM"] + 1e-4  # a hair higher: the mean favours it, no test does
    other["MAE_rel"] = other["MAE_rel"] + 0.05 + np.random.default_rng(1).normal(0, 1e-3, len(df))
    both = pd.concat([df, other], ignore_index=True)
    tests = run_tests(both, comparisons(["native"], ["mri", "pet"], ["l1_bce", "l1_bce_ssim"]))
    mae = tests[(tests["figure"] == "fig6_loss") & (tests["metric"] == "MAE_rel")]
    assert (mae[mae["level"] == "subject"]["significant_holm"]).any()
    line = results_summary(both, tests, pd.DataFrame(), 0.01).split("SSIM loss brings no gain")[1]
    assert line.split("\n")[0].startswith("**: reproduced")


def test_subject_level_primary_tests_use_the_whole_volume_scores():
    """Given the volume table, a primary metric's subject-level test pairs the subjects'
    whole-volume scores, not their slice means."""
    df = fake_metrics()
    rng = np.random.default_rng(3)
    volume = (
        df.groupby(["space", "input", "loss", "subject"])
        .size()
        .reset_index()[["space", "input", "loss", "subject"]]
    )
    volume["MAE_rel"] = rng.uniform(0.1, 0.2, len(volume))
    comps = comparisons(["native", "template"], ["mri", "pet"], ["l1_bce"])
    tests = run_tests(df, comps, volume=volume)
    row = tests[
        (tests["figure"] == "fig5_space")
        & (tests["a_input"] == "mri")
        & (tests["metric"] == "MAE_rel")
        & (tests["level"] == "subject")
    ].iloc[0]
    v = volume[volume["input"] == "mri"]
    a = v[v["space"] == "native"].set_index("subject")["MAE_rel"]
    b = v[v["space"] == "template"].set_index("subject")["MAE_rel"].loc[a.index]
    assert row["p"] == pytest.approx(stats.ttest_rel(a, b).pvalue)


def test_summary_keeps_2d_twins_apart_and_reports_each_split():
    """A 2D twin is its own row (never averaged with the 2.5D condition), and the primary
    metrics are also given per split (test vs post-surgical validation)."""
    rows = []
    for subject, split, mae in (("sub-01", "test", 0.1), ("sub-02", "validation", 0.3)):
        for context, extra in ((1, 0.0), (0, 0.5)):
            rows.append(
                {"subject": subject, "split": split, "space": "native", "input": "mri_pet",
                 "loss": "l1_bce", "context": context, "MAE_rel": mae + extra,
                 "PSNR_rel_dB": 25.0, "SSIM_rel": 0.8, "RMSE_rel": 0.15}
            )  # fmt: skip
    volume = pd.DataFrame(rows)
    metrics = pd.DataFrame(
        {"subject": ["sub-01"], "split": ["test"], "space": ["native"], "input": ["mri_pet"],
         "loss": ["l1_bce"], "slice": [0], "SSIM": [0.8], "PSNR": [25.0], "RMSE": [0.1]}
    )  # fmt: skip
    text = results_summary(metrics, pd.DataFrame(columns=["figure", "metric"]), pd.DataFrame(),
                           0.01, volume=volume)  # fmt: skip
    assert "| native | mri_pet | l1_bce | 2 | 0.2000 |" in text  # 2.5D alone: (0.1 + 0.3) / 2
    assert "| native | mri_pet | l1_bce (2D twin) | 2 | 0.7000 |" in text
    by_split = text.split("### By split")[1]
    assert "| native | mri_pet | l1_bce | 0.1000 / 25.00 / 0.8000 (1) | 0.3000 / 25.00" in by_split

    # the tests see each subject's 2.5D score only
    from workflow_scripts.evaluate.tables import without_twins

    assert set(without_twins(volume)["context"]) == {1}
    assert without_twins(volume[volume["context"] == 1]).equals(volume[volume["context"] == 1])
