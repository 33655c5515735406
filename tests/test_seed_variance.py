"""Training runs (train.seeds): their desc labels, the mean over runs that Table 4 and the tests
use, tables/seed_variance.csv against numpy, and the summary's run-to-run sentences."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from workflow_scripts import layout as names
from workflow_scripts.evaluate.seed_variance import (
    ONE_RUN,
    effect_against_runs,
    mean_over_runs,
    seed_variance,
    variance_lines,
)
from workflow_scripts.evaluate.stats import comparisons, run_tests
from workflow_scripts.evaluate.tables import results_summary


def test_run_labels_round_trip_and_run_zero_keeps_its_name():
    pattern = names.WILDCARDS["condition"]
    for base, (model_input, loss) in names.CONDITIONS.items():
        twin = names.is_2d_twin(base)
        for run in (0,) if twin else (0, 1, 2, 11):
            desc = names.run_desc(base, run)
            assert re.fullmatch("[A-Za-z0-9]+", desc) and re.fullmatch(pattern, desc), desc
            assert names.split_run(desc) == (base, run) and names.run_of(desc) == run
            assert names.parse_condition(desc) == (model_input, loss)
            assert names.is_2d_twin(desc) == twin
    assert names.run_desc("synthMriPetL1Bce", 0) == "synthMriPetL1Bce"
    assert names.run_desc("synthMriPetL1Bce", 1) == "synthMriPetL1BceRun1"
    # twins are trained once; run 0 has no suffix; a run label is not a base
    with pytest.raises(ValueError, match="twin"):
        names.run_desc("synthMriPetL1Bce2d", 1)
    with pytest.raises(ValueError, match="no run"):
        names.run_desc("synthMriPetL1BceRun1", 2)
    for bad in ("synthMriPetL1Bce2dRun1", "synthMriL1BceRun0", "synthMriL1BceRun01", "synthCt"):
        assert not re.fullmatch(pattern, bad), bad
        with pytest.raises(ValueError, match="unknown condition"):
            names.run_of(bad)
    # the uncertainty map's label (condition + 'Sd') is never a condition
    assert not re.fullmatch(pattern, "synthMriL1BceRun1Sd")


def run_metrics(runs=3, seed=0) -> pd.DataFrame:
    """Slice rows: 2 spaces x 2 inputs x 3 subjects x 2 slices x runs, random scores."""
    rng = np.random.default_rng(seed)
    rows = []
    for space in ("native", "template"):
        for inp in ("mri", "pet"):
            for s in range(3):
                for k in range(2):
                    for run in range(runs):
                        rows.append(
                            {"condition": f"{space}/{inp}/l1_bce", "subject": f"sub-{s}",
                             "split": "test", "space": space, "input": inp, "loss": "l1_bce",
                             "run": run, "z": 10 + k, "slice": k, "SSIM": rng.uniform(0.5, 0.9),
                             "PSNR": rng.uniform(15, 25), "RMSE": rng.uniform(0.1, 0.3)}
                        )  # fmt: skip
    return pd.DataFrame(rows)


def run_volume(runs=3, seed=1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = [
        {"subject": f"sub-{s}", "split": "test", "space": space, "input": inp, "loss": "l1_bce",
         "context": 1, "run": run, "MAE_rel": rng.uniform(0.1, 0.3),
         "PSNR_rel_dB": rng.uniform(20, 30), "SSIM_rel": rng.uniform(0.6, 0.9)}
        for space in ("native", "template") for inp in ("mri", "pet") for s in range(3)
        for run in range(runs)
    ]  # fmt: skip
    return pd.DataFrame(rows)


def test_mean_over_runs_averages_each_subject_and_slice():
    df = run_metrics()
    means = mean_over_runs(df)
    assert "run" not in means and len(means) == len(df) // 3
    sel = (df["space"] == "native") & (df["input"] == "pet") & (df["subject"] == "sub-2")
    sel &= df["slice"] == 1
    row = means[
        (means["space"] == "native")
        & (means["input"] == "pet")
        & (means["subject"] == "sub-2")
        & (means["slice"] == 1)
    ]
    assert row["SSIM"].item() == pytest.approx(np.mean(df.loc[sel, "SSIM"].to_numpy()))
    assert row["z"].item() == 11 and row["split"].item() == "test"
    # one run: the same rows, only without the run column
    one = df[df["run"] == 0]
    assert mean_over_runs(one).equals(one.drop(columns="run"))


def test_seed_variance_table_matches_numpy():
    metrics, volume = run_metrics(), run_volume()
    table = seed_variance(metrics, volume, seed=5)
    assert len(table) == 4 * 5  # 4 conditions x (3 primary + SSIM, PSNR)
    row = table[(table["space"] == "template") & (table["input"] == "mri")]
    ssim = row[row["metric"] == "SSIM"].iloc[0]
    sel = metrics[(metrics["space"] == "template") & (metrics["input"] == "mri")]
    per_run = [sel.loc[sel["run"] == k, "SSIM"].to_numpy().mean() for k in range(3)]
    assert [ssim[f"mean_run{k}"] for k in range(3)] == pytest.approx(per_run)
    assert ssim["mean_over_runs"] == pytest.approx(np.mean(per_run))
    assert ssim["sd_between_runs"] == pytest.approx(np.std(per_run, ddof=1))
    assert ssim["seeds"] == "5;6;7" and ssim["n_runs"] == 3 and ssim["n_subjects"] == 3
    mae = row[row["metric"] == "MAE_rel"].iloc[0]
    vsel = volume[(volume["space"] == "template") & (volume["input"] == "mri")]
    per_run = [vsel.loc[vsel["run"] == k, "MAE_rel"].to_numpy().mean() for k in range(3)]
    assert mae["sd_between_runs"] == pytest.approx(np.std(per_run, ddof=1))
    assert mae["cohort_mean_of"] == "subjects" and ssim["cohort_mean_of"] == "slices"
    # one run (or score files from before train.seeds, with no run column): no SD
    single = seed_variance(
        metrics[metrics["run"] == 0].drop(columns="run"), volume[volume["run"] == 0]
    )
    assert single["n_runs"].eq(1).all() and single["sd_between_runs"].isna().all()
    assert single["mean_run0"].notna().all() and "mean_run1" not in single


def test_effect_against_runs_hand_worked():
    # per-run side means: a 0.80, 0.82; b 0.70, 0.74 -> difference 0.09, pooled SD
    # sqrt((0.0002 + 0.0008) / 2) = 0.02236: 0.09 > 2 x 0.02236
    df = pd.DataFrame(
        {"space": ["native"] * 4 + ["template"] * 4, "run": [0, 0, 1, 1] * 2,
         "SSIM": [0.79, 0.81, 0.81, 0.83, 0.69, 0.71, 0.73, 0.75]}
    )  # fmt: skip
    text = effect_against_runs(df, "SSIM", "space", "native", "template")
    assert "(2 runs)" in text and "+0.0900, exceeds" in text and "2 x 0.0224" in text
    # the same per-run spread, a difference of 0.03: within twice the SD
    close = df.assign(SSIM=np.where(df["space"] == "template", df["SSIM"] + 0.06, df["SSIM"]))
    assert "+0.0300, does not exceed" in effect_against_runs(
        close, "SSIM", "space", "native", "template"
    )
    assert effect_against_runs(df[df["run"] == 0], "SSIM", "space", "native", "template") == ONE_RUN
    assert effect_against_runs(df.drop(columns="run"), "SSIM", "space", "a", "b") == ONE_RUN


def test_summary_judges_each_finding_against_run_to_run_variation():
    metrics, volume = run_metrics(), run_volume()
    # native better than template by far more than the run-to-run noise
    metrics.loc[metrics["space"] == "native", "SSIM"] += 0.5
    means = mean_over_runs(metrics)
    tests = run_tests(means, comparisons(["native", "template"], ["mri", "pet"], ["l1_bce"]))
    variance = seed_variance(metrics, volume)
    text = results_summary(
        means, tests, pd.DataFrame(), 0.01, volume=mean_over_runs(volume),
        run_metrics=metrics, variance=variance,
    )  # fmt: skip
    native = text.split("Native >= template")[1].split("\n")[0]
    assert "run-to-run variation (3 runs)" in native and ", exceeds twice" in native
    inputs = text.split("PET ≈ MRI")[1].split("\n")[0]
    assert "the SSIM difference pet minus mri" in inputs
    assert "## Training-seed variance" in text and "3 training runs per condition" in text
    mae = variance[(variance["metric"] == "MAE_rel") & (variance["space"] == "native")]
    mae = mae[mae["input"] == "pet"].iloc[0]
    cell = f"{mae['mean_over_runs']:.4f} ({mae['sd_between_runs']:.4f})"
    assert f"| native | pet | l1_bce | 3 | {cell} |" in text
    # one run: the summary says it cannot tell
    one = metrics[metrics["run"] == 0]
    text1 = results_summary(
        mean_over_runs(one), run_tests(mean_over_runs(one), []), pd.DataFrame(), 0.01,
        run_metrics=one, variance=seed_variance(one, volume[volume["run"] == 0]),
    )  # fmt: skip
    assert f"; {ONE_RUN}" in text1.split("Native >= template")[1].split("\n")[0]
    assert ONE_RUN in "\n".join(variance_lines(seed_variance(one, volume[volume["run"] == 0])))
