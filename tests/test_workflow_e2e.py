"""A tiny but real end-to-end Snakemake run: simulate -> preprocess -> slices -> train ->
predict -> score -> tables, figures, summary and the HTML report, then a rerun that finds
nothing to do. About two minutes on two cores."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from workflow_scripts.joblog import WARM

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))

# A small cohort on a coarse grid: every stage runs for real, only smaller.
TINY = [
    "simulate={enabled: true, seed: 7, n_train: 2, n_test: 1, n_validation: 1, ictal: true, voxel_scale: 3}",
    "preprocess={grid: {shape: [32, 32, 24], voxel_mm: 6.0}}",
    "slices={n_slices: 8, size: 32}",
    "train={spaces: [native, template], inputs: [mri, pet], losses: [l1_bce], epochs: 1, batch_size: 4, ngf: 8, ndf: 8}",
    "evaluate={montage_subjects: 1}",
]


def snakemake(
    workdir: Path, *args: str, config: tuple = (), timeout: int = 900
) -> subprocess.CompletedProcess:
    cmd = [
        SNAKEMAKE,
        "-s",
        str(ROOT / "Snakefile"),
        "--directory",
        str(workdir),
        "--cores",
        "2",
        *args,
    ]
    cmd += [
        "--config",
        f"bids_dir={workdir / 'bids'}",
        f"out_dir={workdir / 'out'}",
        *TINY,
        *config,
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("e2e")
    run = snakemake(work)
    assert run.returncode == 0, run.stderr[-4000:]
    return work


@pytest.mark.slow
def test_whole_study_outputs(finished_run):
    out = finished_run / "out"
    metrics = pd.read_csv(out / "tables" / "metrics.csv")
    # 2 scored subjects (test + validation) x 8 slices x (2 spaces x 2 inputs) conditions
    assert set(metrics["subject"]) == {"sub-03", "sub-04"}
    assert len(metrics) == 2 * 8 * 4 and metrics[["RMSE", "SSIM", "PSNR"]].notna().all().all()
    t4 = pd.read_csv(out / "tables" / "table4.csv")
    assert len(t4) == 4 and {"SSIM_mean", "SSIM_cv_percent"} <= set(t4.columns)
    tests = pd.read_csv(out / "tables" / "tests.csv")
    assert {"fig5_space", "fig7_input"} <= set(tests["figure"])
    baselines = pd.read_csv(out / "tables" / "baselines.csv")
    assert {"identity", "linear", "mc_ceiling_approx"} <= set(baselines["method"])
    # primary per-slice metrics (relative uptake, inside the brain) beside the paper's
    assert metrics[["MAE_rel", "PSNR_rel_dB", "SSIM_rel"]].notna().all().all()
    assert "RMSE" not in set(tests["metric"]) and {"table4", "primary"} <= set(tests["family"])
    ceiling = pd.read_csv(out / "tables" / "ceiling.csv")
    assert len(ceiling) == 2 * 2 and (ceiling["draws"] == 8).all()
    assert ceiling[["MAE_rel", "PSNR_rel_dB", "SSIM_rel"]].notna().all().all()
    for fig in ("fig5_space", "fig6_loss", "fig7_input", "montage_space-T1w_loss-l1_bce"):
        assert (out / "figures" / f"{fig}.png").stat().st_size > 5000, fig
    summary = (out / "results_summary.md").read_text()
    assert "Native >= template" in summary and "baselines" in summary
    assert "Monte Carlo ceiling (approximate)" in summary and "upper bound" not in summary
    # the model folder records its training subjects; held-out subjects are not among them
    subjects = json.loads((out / "models/space-T1w/desc-synthPetL1Bce/subjects.json").read_text())
    assert subjects["train"] == ["01", "02"]
    # one slice file per modality; the predict-free tiny cohort has all three for every subject
    for space in ("T1w", "MNI152NLin2009aSym"):
        names = sorted(p.name for p in (out / "slices" / f"space-{space}").glob("sub-01_*"))
        assert names == [f"sub-01_mod-{m}_slices.npz" for m in ("mri", "pet", "spect")], names
    # the 2D twin (train.compare_2d) trains on the 2.5D slice files' centre channels, and is
    # scored beside the 2.5D conditions in the volume table, never in Table 4
    twin = json.loads(
        (out / "models/space-T1w/desc-synthMriPetL1Bce2d/train_config.json").read_text()
    )
    assert twin["context"] == 0 and twin["in_channels"] == 2
    volume = pd.read_csv(out / "tables" / "volume_metrics.csv")
    assert set(volume.loc[volume["context"] == 0, "input"]) == {"mri_pet"}
    assert set(volume.loc[volume["context"] == 1, "input"]) == {"mri", "pet"}
    assert "mri_pet" not in set(metrics["input"])
    # regional perfusion: 14 atlas regions + 7 left/right pairs per subject and condition
    regional = pd.read_csv(out / "tables" / "regional_uptake.csv")
    assert set(regional["subject"]) == {"sub-03", "sub-04"}
    assert len(regional) == 2 * 4 * (14 + 7) and set(regional["focus_source"]) == {"truth"}
    agreement = pd.read_csv(out / "tables" / "regional_agreement.csv")
    assert len(agreement) == 4 and agreement["uptake_ICC_A1"].notna().all()
    assert set(agreement["lateralisation_n"]) == {2}
    assert (out / "figures" / "regional_agreement.png").stat().st_size > 5000


@pytest.mark.slow
def test_job_benchmark_table_counts_every_job_of_the_run(finished_run):
    """tables/job_benchmarks.csv (rule job_benchmarks, run last): one row per rule that ran, its
    jobs summing to every benchmark file the run wrote but the table's own."""
    out = finished_run / "out"
    table = pd.read_csv(out / "tables" / "job_benchmarks.csv").set_index("rule")
    files = [f for f in (out / "benchmarks").rglob("*.tsv") if f.parent.name != "job_benchmarks"]
    assert table["jobs"].sum() == len(files)
    # 2 spaces x 2 inputs x 1 loss + the 2D twin; 2 scored subjects x 5 conditions
    assert table.loc["train", "jobs"] == 5 and table.loc["predict", "jobs"] == 2 * 5
    assert {"skullstrip_t1w", "skullstrip_pet", "tables", "summary"} <= set(table.index)
    assert (table["max_s"] >= table["median_s"]).all() and (table.loc["train", "max_s"] > 0)
    # a local run's jobs start warm (workflow_scripts/warm_start.py): their benchmarks' memory
    # and CPU are the launcher's, so the table leaves them out and counts the jobs
    assert (table.loc[["train", "predict", "score"], "warm_jobs"] == [5, 10, 10]).all()
    assert table.loc[["train", "predict"], "max_rss_mb"].isna().all()
    log = (out / "logs" / "train" / "space-T1w_desc-synthPetL1Bce.log").read_text()
    assert f"{WARM} " in log


@pytest.mark.slow
def test_synthetic_volume_lies_on_the_subjects_grid(finished_run):
    out = finished_run / "out"
    spect = out / "sub-03" / "spect"
    synth = nib.load(spect / "sub-03_acq-interictal_space-T1w_desc-synthPetL1Bce_spect.nii.gz")
    real = nib.load(spect / "sub-03_acq-interictal_space-T1w_desc-brain_spect.nii.gz")
    assert synth.shape == real.shape and np.allclose(synth.affine, real.affine)
    assert synth.get_fdata().max() > 0
    qc = out / "qc" / "preprocess" / "sub-03_space-MNI152NLin2009aSym_qc.png"
    assert qc.stat().st_size > 5000


@pytest.mark.slow
def test_headers_say_which_space(finished_run):
    """sform/qform code 4 (MNI) on template-space images, 1 (scanner) on native ones."""
    anat = finished_run / "out" / "sub-03" / "anat"
    for space, code in (("T1w", 1), ("MNI152NLin2009aSym", 4)):
        img = nib.load(anat / f"sub-03_space-{space}_desc-brain_T1w.nii.gz")
        assert int(img.header["sform_code"]) == code and int(img.header["qform_code"]) == code
    desc = json.loads((finished_run / "out" / "dataset_description.json").read_text())
    assert desc["DatasetType"] == "derivative" and desc["SourceDatasets"]


@pytest.mark.slow
def test_siscom_has_five_kinds_of_source_built_from_training_subjects(finished_run):
    """SISCOM per held-out subject with real, flat, PET mapped, raw PET and synthetic sources;
    the flat image and the PET map come from the training subjects; the analysis mask is the
    ictal SPECT's x the MRI's; the summary has intervals per split and pooled."""
    siscom = finished_run / "out" / "siscom"
    table = pd.read_csv(siscom / "siscom_localisation.csv")
    assert set(table["subject"]) == {"sub-03", "sub-04"}
    assert dict(zip(table["subject"], table["split"], strict=True)) == {
        "sub-03": "test",
        "sub-04": "validation",
    }
    expected = {"real", "flat", "pet_linear", "pet", "mri/l1_bce", "pet/l1_bce"}
    assert set(table.loc[table["subject"] == "sub-03", "source"]) == expected
    flat = json.loads((siscom / "cohort/space-MNI152NLin2009aSym_desc-flat_spect.json").read_text())
    assert flat["TrainingSubjects"] == ["sub-01", "sub-02"]
    pet_map = json.loads((siscom / "cohort/desc-petLinear_map.json").read_text())
    assert pet_map["training_subjects"] == ["sub-01", "sub-02"] and pet_map["slope"] > 0
    sub = siscom / "sub-03"
    ictal_mask = nib.load(sub / "sub-03_acq-ictal_space-T1w_desc-brain_mask.nii.gz").get_fdata()
    brain = nib.load(
        finished_run / "out/sub-03/anat/sub-03_space-T1w_desc-brain_mask.nii.gz"
    ).get_fdata()
    voxels = table.loc[table["subject"] == "sub-03", "mask_voxels"]
    assert (voxels == int(((ictal_mask > 0) & (brain > 0)).sum())).all()
    summary = pd.read_csv(siscom / "siscom_summary.csv")
    assert set(summary["split"]) == {"all", "test", "validation"}
    pooled = summary[summary["split"] == "all"].set_index("source")
    assert (pooled["focus_found_ci_low"] <= pooled["focus_found_fraction"]).all()
    assert (pooled["focus_found_fraction"] <= pooled["focus_found_ci_high"]).all()
    assert (sub / "sub-03_siscom.png").stat().st_size > 20_000
    # the real SISCOM's top-cluster peak is named by the regional atlas (a region, hemisphere)
    real = table[(table["source"] == "real") & table["peak_x_mm"].notna()]
    assert len(real) and real["peak_region"].str.fullmatch(r"[a-z_]+_[LR]").all(), real


@pytest.mark.slow
def test_second_run_has_nothing_to_do_and_report_builds(finished_run):
    dry = snakemake(finished_run, "-n")
    assert dry.returncode == 0, dry.stderr[-3000:]
    assert "Nothing to be done" in dry.stdout + dry.stderr
    report = finished_run / "report.html"
    rep = snakemake(finished_run, "--report", str(report))
    assert rep.returncode == 0, rep.stderr[-3000:]
    assert report.stat().st_size > 100_000
    # it opens on the landing page: the question and which numbers to trust
    assert "Which numbers to trust" in report.read_text(errors="replace")
    assert "job_benchmarks.csv" in report.read_text(errors="replace")  # the per-rule table


def planned_rules(dry: subprocess.CompletedProcess) -> set[str]:
    assert dry.returncode == 0, dry.stderr[-3000:]
    return set(re.findall(r"^\s*(?:local)?rule (\w+):", dry.stdout + dry.stderr, flags=re.M))


@pytest.mark.slow
def test_config_changes_rerun_exactly_the_jobs_they_affect(finished_run):
    """Settings reach jobs as params, so Snakemake sees a change; evaluation-only keys never
    retrain, training keys retrain, where a job runs (device, threads) changes nothing."""
    # a --config key given twice is replaced whole, so each change repeats its TINY entry
    train, grid = TINY[3], TINY[1]
    alpha = planned_rules(
        snakemake(finished_run, "-n", config=("evaluate={montage_subjects: 1, alpha: 0.05}",))
    )
    assert {"tables", "figures", "summary"} <= alpha
    assert not alpha & {"train", "predict", "slices", "skullstrip_t1w"}, alpha
    epochs = planned_rules(
        snakemake(finished_run, "-n", config=(train.replace("epochs: 1", "epochs: 2"),))
    )
    assert {"train", "predict", "score", "tables"} <= epochs and "slices" not in epochs
    regrid = planned_rules(
        snakemake(finished_run, "-n", config=(grid.replace("voxel_mm: 6.0", "voxel_mm: 5.0"),))
    )
    assert {"register_to_mri", "space_mri", "slices", "train"} <= regrid
    assert "reorient" not in regrid
    where = snakemake(
        finished_run, "-n", config=(train.replace("}", ", device: cpu, threads: 2}"),)
    )
    assert planned_rules(where) == set(), where.stdout[-2000:]
    # dropping the 2D twin retrains nothing else
    no_twin = planned_rules(
        snakemake(finished_run, "-n", config=(train.replace("}", ", compare_2d: []}"),))
    )
    assert not no_twin & {"train", "predict", "score"}, no_twin
    # the same settings in another order (as a --config override or a config file may give
    # them) rerun nothing: params are compared as text, so jobs get them with sorted keys
    reordered = snakemake(finished_run, "-n", config=("slices={size: 32, n_slices: 8}",))
    assert planned_rules(reordered) == set(), reordered.stdout[-2000:]


def job_counts(dry: subprocess.CompletedProcess) -> dict[str, int]:
    """The dry run's job stats: rule -> number of jobs."""
    stats = (dry.stdout + dry.stderr).split("Job stats:")[-1]
    return {r: int(n) for r, n in re.findall(r"^(\w+)\s+(\d+)$", stats, flags=re.M) if r != "total"}


@pytest.mark.slow
def test_second_training_run_adds_its_own_models_and_leaves_run_zero_alone(finished_run):
    """train.seeds 2: each condition is retrained once more with seed + 1 under its own label
    (desc-...Run1), synthesised for the scored subjects and scored; nothing of run 0 reruns or
    changes; SISCOM, regions, montages and the 2D twin stay on run 0; seed_variance.csv has both
    runs. Back to seeds 1, only the group tables are rebuilt."""
    from workflow_scripts import layout as names

    out = finished_run / "out"
    train = TINY[3]
    one = snakemake(finished_run, "-n", config=(train.replace("}", ", seeds: 1}"),))
    assert planned_rules(one) == set(), one.stdout[-2000:]
    two = (train.replace("}", ", seeds: 2}"),)
    dry = snakemake(finished_run, "-n", config=two)
    # the group tables, and the run's benchmark table (it sums every job's, so follows any job)
    group = {"tables", "seed_variance", "figures", "summary", "job_benchmarks"}
    assert planned_rules(dry) - {"all"} == {"train", "predict", "score"} | group
    # 2 spaces x 2 inputs retrained; each predicts and scores the 2 scored subjects
    counts = job_counts(dry)
    assert (counts["train"], counts["predict"], counts["score"]) == (4, 8, 8), counts
    run1 = {names.run_desc(names.condition_desc(i, "l1_bce"), 1) for i in ("mri", "pet")}
    assert set(re.findall(r"condition=(\w+)", dry.stdout + dry.stderr)) == run1

    # every file but the group tables and figures, logs and benchmarks stays as it was
    rebuilt = ("tables", "figures", "logs", "benchmarks", "results_summary.md")
    before = {
        p: (p.stat().st_mtime_ns, p.read_bytes())
        for p in out.rglob("*")
        if p.is_file() and p.relative_to(out).parts[0] not in rebuilt
    }
    run = snakemake(finished_run, config=two)
    assert run.returncode == 0, run.stderr[-4000:]
    assert {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in before} == before
    for space in ("T1w", "MNI152NLin2009aSym"):
        for c in ("synthMriL1Bce", "synthPetL1Bce"):
            models = [out / "models" / f"space-{space}" / f"desc-{d}" for d in (c, f"{c}Run1")]
            seeds = [
                json.loads((m / "train_config.json").read_text())["train"]["seed"] for m in models
            ]
            assert seeds == [0, 1]
            weights = [(m / "generator.safetensors").read_bytes() for m in models]
            assert weights[0] != weights[1], (space, c)
    metrics = pd.read_csv(out / "tables" / "metrics.csv")
    assert set(metrics["run"]) == {0, 1} and len(metrics) == 2 * 2 * 8 * 4
    assert len(pd.read_csv(out / "tables" / "table4.csv")) == 4  # per slice, mean over runs
    variance = pd.read_csv(out / "tables" / "seed_variance.csv")
    assert len(variance) == 4 * 5 and (variance["n_runs"] == 2).all()
    assert variance[["mean_run0", "mean_run1", "sd_between_runs"]].notna().all().all()
    # run 0's column is the cohort mean of the run-0 scores
    vol = pd.read_csv(out / "tables" / "volume_metrics.csv")
    pet = vol[(vol["space"] == "native") & (vol["input"] == "pet") & (vol["run"] == 0)]
    row = variance[
        (variance["space"] == "native")
        & (variance["input"] == "pet")
        & (variance["metric"] == "MAE_rel")
    ]
    assert row["mean_run0"].item() == pytest.approx(pet["MAE_rel"].mean(), rel=1e-5)
    assert "run-to-run variation (2 runs)" in (out / "results_summary.md").read_text()
    # the 2D twin, SISCOM and regions stay on run 0
    assert set(vol.loc[vol["context"] == 0, "run"]) == {0}
    assert not list(out.glob("sub-*/spect/*space-ictal*Run1*"))
    siscom = pd.read_csv(out / "siscom" / "siscom_localisation.csv")
    assert not siscom["source"].str.contains("Run").any()

    # back to one run: no training, only the group tables (without run 1) are rebuilt
    back = snakemake(finished_run)
    assert back.returncode == 0, back.stderr[-4000:]
    assert planned_rules(back) - {"all"} == group
    assert set(pd.read_csv(out / "tables" / "metrics.csv")["run"]) == {0}


# --- every config key: which rules' params carry it (the spec of "a setting reruns only what it
# affects"). A job reruns for a key either because its params changed (its rule must be listed
# here: it uses the key) or because an input was remade upstream; nothing else.
SIMULATE = {"simulate_subject"}
SKULL = {"skullstrip_t1w", "skullstrip_pet"}
REGISTER = {"register_to_mri", "register_to_template"}
SLICES = {"slices", "target_slices"}
TRAIN = {"train"}
USES: dict[str, tuple[object, set[str]]] = {  # key -> (changed value, rules whose params use it)
    "warm_start": (False, set()),  # how jobs start, not what they compute
    "splits.seed": (1, set()),  # every tiny subject is labelled: the seed splits nobody
    "simulate.seed": (8, SIMULATE),
    "simulate.ictal": (False, SIMULATE),
    # the head model's grid: simulate_subject's params carry it too, but its input (the head
    # model) is remade first, and a dry run gives that reason before the params
    "simulate.voxel_scale": (3.5, {"simulate_template"}),
    **{
        f"simulate.effects.{k}": (v, SIMULATE)
        for k, v in {
            "focus_radius_mm": [6.0, 11.0],
            "ictal_increase": [0.15, 0.5],
            "interictal_hypoperfusion": [0.0, 0.1],
            "pet_hypometabolism": [0.1, 0.3],
            "pet_focus_offset_mm": [2.0, 7.0],
            "pet_focus_radius_scale": [1.2, 1.8],
            "propagation_probability": 0.4,
            "propagation_distance_mm": [15.0, 30.0],
            "propagation_radius_scale": [1.5, 2.0],
            "propagation_fraction": [0.3, 0.6],
            "day_to_day_global": 0.1,
            "day_to_day_regional": 0.02,
            "tracer_regions": False,
        }.items()
    },
    "preprocess.pet_4d": ("error", {"check_inputs"}),
    "preprocess.skullstrip.backend": ("python", SKULL),
    "preprocess.skullstrip.frac_mri": (0.45, {"skullstrip_t1w"}),
    "preprocess.skullstrip.frac_pet": (0.35, {"skullstrip_pet"}),
    "preprocess.skullstrip.robust": (False, SKULL),
    "preprocess.spect_mask.method": ("fraction", {"spect_mask"}),
    "preprocess.spect_mask.fraction": (0.3, {"spect_mask"}),
    # the grid: the template-space atlas, the registration working grid and the MRI's resampling
    # (the other images are resampled onto the MRI's). The registrations' params carry it too,
    # but their input (the working grid) is remade first, and a dry run gives that reason
    "preprocess.grid.shape": ([32, 32, 26], {"atlas", "space_mri", "working_grid"}),
    "preprocess.grid.voxel_mm": (5.0, {"atlas", "space_mri", "working_grid"}),
    "preprocess.registration.shrink_factors": ([4, 2, 2], REGISTER),
    "preprocess.registration.smoothing_sigmas": ([2, 1, 1], REGISTER),
    "preprocess.registration.iterations": ([90, 50, 25], REGISTER),
    "preprocess.registration.sampling": (0.25, REGISTER),
    "preprocess.registration.min_mask_dice": (0.7, REGISTER),
    # how every modality is cut: the input slices (rule slices: MRI, PET) and the target's
    "slices.n_slices": (7, SLICES),
    "slices.size": (64, SLICES),
    "slices.min_brain_fraction": (0.1, SLICES),
    "slices.dtype": ("float16", SLICES),
    # the inputs' scaling and 2.5D context, the target's scaling: each its own slice jobs only
    "slices.scaling": ("per_volume", {"slices"}),
    "slices.context": (2, {"slices"}),
    "slices.target_scaling": ("per_slice", {"target_slices"}),
    **{
        f"train.{k}": (v, TRAIN)
        for k, v in {
            "epochs": 2,
            "epochs_decay": 1,
            "batch_size": 2,
            "lr": 2.0e-4,
            "beta1": 0.6,
            "lambda_l1": 50.0,
            "lambda_ssim": 5.0,
            "ngf": 16,
            "ndf": 16,
            "augment": False,
            "seed": 1,
            "precision": "fp32",
        }.items()
    },
    # where and how a job runs, not what it computes
    **{
        f"train.{k}": (v, set())
        for k, v in {
            "checkpoint_every": 2,
            "checkpoint_minutes": 5,
            "device": "cpu",
            "compile": "never",
            "threads": 2,
            "mem_mb": 3000,
            "runtime_min": 30,
        }.items()
    },
    # training gains the validation slices as inputs (to log validation scores): an input change
    "train.validate_every": (1, set()),
    "synthesis.uncertainty_shift_px": (1, {"predict"}),
    "evaluate.alpha": (0.05, {"tables"}),
    "evaluate.lateralisation_ai_percent": (4.0, {"regional_tables"}),
    "evaluate.ceiling_draws": (6, {"mc_ceiling"}),
    "evaluate.ceiling_seed": (1, {"mc_ceiling"}),
    "siscom.z_threshold": (2.5, {"siscom"}),
    "siscom.min_cluster_mm3": (400.0, {"siscom"}),
    "siscom.pet_fwhm_mm": (8.0, {"siscom_cohort"}),
    "siscom.bootstrap_resamples": (1000, {"siscom_summary"}),
    "siscom.bootstrap_seed": (1, {"siscom_summary"}),
    "siscom.confidence": (0.9, {"siscom_summary"}),
}
# Keys that choose *what* is studied (the data, the cohort, the conditions): they add or drop
# jobs rather than change any; covered by the tests named.
STRUCTURE = {
    "bids_dir",
    "out_dir",
    "participant_label",
    "exclude_participant_label",  # test_cohort
    "inputs",
    "splits.fractions",  # test_cohort, test_hospital_cohort
    "simulate.enabled",
    "simulate.n_train",
    "simulate.n_test",
    "simulate.n_validation",
    "train.spaces",
    "train.inputs",
    "train.losses",
    "train.compare_2d",
    "train.seeds",  # above
    "train.gpus",  # a job asking for a GPU cannot be scheduled on a machine without one
    "evaluate.splits",
    "evaluate.montage_subjects",
    "evaluate.atlas",  # test_regions
    "siscom.enabled",
}
# reasons Snakemake gives for a job that reruns because something upstream was remade
# Reasons a dry run gives for a job rerun through its inputs; Snakemake names only the first.
# "Updated input files": a file the job newly takes (e.g. the validation slices when
# train.validate_every turns on) may have been written after the job's output, in which case
# that reason comes before "Set of input files has changed" (which order depends on the run's
# job order).
UPSTREAM = (
    "Input files updated by another job",
    "Set of input files has changed",
    "Updated input files",
)


def config_leaves(node: dict, path: tuple = ()):
    for key, value in node.items():
        if isinstance(value, dict) and value:
            yield from config_leaves(value, (*path, key))
        else:
            yield ".".join((*path, key))


def changed_config(key: str, value) -> str:
    """A --config entry that changes one leaf, keeping the rest of TINY's entry for that section
    (a --config section replaces the TINY one whole)."""
    import yaml

    tiny = {entry.split("=", 1)[0]: yaml.safe_load(entry.split("=", 1)[1]) for entry in TINY}
    top, *rest = key.split(".")
    if not rest:  # a top-level leaf
        return f"{top}={json.dumps(value)}"
    section = json.loads(json.dumps(tiny.get(top, {})))
    node = section
    for part in rest[:-1]:
        node = node.setdefault(part, {})
    node[rest[-1]] = value
    return f"{top}={json.dumps(section)}"


def planned_jobs(dry: subprocess.CompletedProcess) -> list[tuple[str, str]]:
    """(rule, reason) of every job a dry run plans."""
    assert dry.returncode == 0, dry.stderr[-3000:]
    parts = re.split(r"^\s*(?:local)?rule (\w+):", dry.stdout + dry.stderr, flags=re.M)
    out = []
    for rule, body in zip(parts[1::2], parts[2::2], strict=True):
        reason = re.search(r"^\s*reason: (.*)$", body, flags=re.M)
        out.append((rule, reason.group(1) if reason else ""))
    return out


@pytest.mark.slow
def test_every_config_key_reruns_only_the_jobs_that_use_it(finished_run):
    """For every key of config.yaml, a dry run after changing it: the jobs whose params changed
    are exactly those of the rules that use the key, and every other planned job is downstream
    of them (its inputs are remade). A new key without an entry here fails the test."""
    from concurrent.futures import ThreadPoolExecutor

    import yaml

    keys = set(config_leaves(yaml.safe_load((ROOT / "config.yaml").read_text())))
    unlisted = {
        k for k in keys - set(USES) if not any(k == s or k.startswith(f"{s}.") for s in STRUCTURE)
    }
    assert not unlisted, f"config keys without a rerun entry in USES or STRUCTURE: {unlisted}"

    def plan(key):
        value, _ = USES[key]
        return key, planned_jobs(
            snakemake(finished_run, "-n", config=(changed_config(key, value),))
        )

    problems = []
    with ThreadPoolExecutor(2) as pool:
        for key, jobs in pool.map(plan, sorted(USES)):
            uses = USES[key][1]
            by_params = {r for r, why in jobs if why.startswith("Params have changed")}
            other = {(r, why[:60]) for r, why in jobs if r != "all"}
            other = {
                (r, why)
                for r, why in other
                if not why.startswith(("Params have changed", *UPSTREAM))
            }
            if by_params != uses:
                problems.append(
                    f"{key}: params changed in {sorted(by_params)}, uses {sorted(uses)}"
                )
            if other:
                problems.append(f"{key}: jobs rerun for another reason: {sorted(other)}")
    assert not problems, "\n".join(problems)


def planned_wildcards(dry: subprocess.CompletedProcess) -> list[tuple[str, dict[str, str]]]:
    """(rule, wildcards) of every job a dry run plans."""
    assert dry.returncode == 0, dry.stderr[-3000:]
    parts = re.split(r"^\s*(?:local)?rule (\w+):", dry.stdout + dry.stderr, flags=re.M)
    out = []
    for rule, body in zip(parts[1::2], parts[2::2], strict=True):
        line = re.search(r"^\s*wildcards: (.*)$", body, flags=re.M)
        pairs = [kv.split("=", 1) for kv in line.group(1).split(", ")] if line else []
        out.append((rule, dict(pairs)))
    return out


@pytest.mark.slow
def test_a_pet_setting_reruns_no_job_of_an_mri_only_condition(finished_run):
    """A PET-only setting remakes the PET slices and what is built from them, but no MRI slices
    and no job of an MRI-only condition (training, synthesis, scores): their slice data are
    one file per modality, and they read the MRI and target files only."""
    from workflow_scripts import layout as names

    key = "preprocess.skullstrip.frac_pet"
    jobs = planned_wildcards(snakemake(finished_run, "-n", config=(changed_config(key, 0.35),)))

    def model_input(wc):
        return names.parse_condition(wc["condition"])[0] if "condition" in wc else None

    rules = {r for r, _ in jobs}
    assert {"skullstrip_pet", "slices", "train"} <= rules, rules  # the PET side reruns
    # the PET models and the MRI+PET 2D twin retrain; the MRI ones do not
    assert {model_input(wc) for r, wc in jobs if r == "train"} == {"pet", "mri_pet"}
    assert {wc["modality"] for r, wc in jobs if r == "slices"} == {"pet"}
    assert "target_slices" not in rules
    mri_only = [(r, wc) for r, wc in jobs if model_input(wc) == "mri"]
    assert not mri_only, mri_only


@pytest.mark.slow
def test_new_predict_subject_runs_only_its_own_jobs(finished_run):
    """A subject added later (split predict, no SPECT) gets preprocessed, sliced and predicted;
    nothing is retrained and no other subject's job runs."""
    from workflow_scripts.simulate import simulate_subject

    bids = finished_run / "bids"
    simulate_subject("05", "predict", 99, bids, ictal=False, voxel_scale=3.0)
    (bids / "sub-05" / "spect" / "sub-05_acq-interictal_spect.nii.gz").unlink()
    with (bids / "participants.tsv").open("a") as f:
        f.write("sub-05\tpredict\t40\tF\n")
    target = (
        finished_run
        / "out/sub-05/spect/sub-05_acq-interictal_space-T1w_desc-synthPetL1Bce_spect.nii.gz"
    )
    run = snakemake(
        finished_run, str(target), config=("simulate={enabled: false}", "siscom={enabled: false}")
    )
    assert run.returncode == 0, run.stderr[-4000:]
    log = run.stdout + run.stderr
    rules = re.findall(r"^\s*(?:local)?rule (\w+):", log, flags=re.M)
    subjects = set(re.findall(r"(?:subject=|prefix=sub-)([A-Za-z0-9]+)", log))
    assert "train" not in rules and "simulate_subject" not in rules
    assert {"check_inputs", "reorient", "skullstrip_t1w", "predict"} <= set(rules)
    # synthesis reads the subject's images, not training slices
    assert not {"slices", "target_slices"} & set(rules)
    assert subjects == {"05"}, subjects
    assert target.exists() and nib.load(target).get_fdata().max() > 0


@pytest.mark.slow
def test_synthetic_spect_covers_the_whole_brain_with_an_uncertainty_map(finished_run):
    out = finished_run / "out"
    brain = nib.load(out / "sub-03/anat/sub-03_space-T1w_desc-brain_mask.nii.gz").get_fdata() > 0
    spect = out / "sub-03" / "spect"
    synth = nib.load(spect / "sub-03_acq-interictal_space-T1w_desc-synthPetL1Bce_spect.nii.gz")
    vol = synth.get_fdata()
    for z in np.flatnonzero(brain.any(axis=(0, 1))):
        assert vol[:, :, z][brain[:, :, z]].max() > 0, f"slice {z} of the brain not synthesised"
    assert np.isclose(vol[brain].mean(), 1.0, atol=1e-4)  # uptake relative to the brain mean
    sd = nib.load(spect / "sub-03_acq-interictal_space-T1w_desc-synthPetL1BceSd_spect.nii.gz")
    assert sd.get_fdata()[brain].max() > 0
    side = json.loads(
        (spect / "sub-03_acq-interictal_space-T1w_desc-synthPetL1Bce_spect.json").read_text()
    )
    assert "relative" in side["Units"] and side["Model"]["TargetScaling"] == "per_volume"
    # in the subject's own ictal and interictal scans: their grids, so they overlay in a viewer
    for scan, raw in (("ictal", "acq-ictal"), ("interictal", "acq-interictal")):
        img = nib.load(
            spect / f"sub-03_acq-interictal_space-{scan}_desc-synthPetL1Bce_spect.nii.gz"
        )
        own = nib.load(spect / f"sub-03_{raw}_desc-reoriented_spect.nii.gz")
        assert img.shape == own.shape and np.allclose(img.affine, own.affine)
        assert img.get_fdata().max() > 0
    volume = pd.read_csv(out / "tables" / "volume_metrics.csv")
    # 2 subjects x (2 spaces x 2 inputs), and the 2D twin's 2 rows
    assert set(volume["subject"]) == {"sub-03", "sub-04"} and len(volume) == 2 * 4 + 2
    cols = ["through_slice_CV_percent", "SSIM_coronal", "SSIM_sagittal"]
    assert volume[[*cols, "uncertainty_top_bottom_MAE_ratio"]].notna().all().all()
    assert (out / "figures" / "synthesis" / "sub-03_synthesis.png").stat().st_size > 10_000


@pytest.mark.slow
def test_derivatives_pass_the_bids_validator(finished_run):
    from workflow_scripts.inputs.bids_validator import run_validator

    result = run_validator(finished_run / "out", derivative=True)
    assert not result.errors, result.report()


@pytest.mark.slow
def test_synthetic_volume_does_not_depend_on_the_real_spect(finished_run):
    """Leak test: the subject's real SPECT replaced by noise, the synthesis job rerun: the
    synthetic volume and its uncertainty map are byte-identical."""
    spect = finished_run / "out" / "sub-03" / "spect"
    files = [
        spect / "sub-03_acq-interictal_space-T1w_desc-synthPetL1Bce_spect.nii.gz",
        spect / "sub-03_acq-interictal_space-T1w_desc-synthPetL1BceSd_spect.nii.gz",
    ]
    before = [f.read_bytes() for f in files]
    raw = finished_run / "bids" / "sub-03" / "spect" / "sub-03_acq-interictal_spect.nii.gz"
    img = nib.load(raw)
    noise = np.random.default_rng(0).poisson(50, img.shape).astype(np.int16)
    nib.save(nib.Nifti1Image(noise, img.affine, img.header), raw)
    run = snakemake(finished_run, str(files[0]), "--forcerun", "predict")
    assert run.returncode == 0, run.stderr[-3000:]
    assert re.search(r"^(?:local)?rule predict:", run.stdout + run.stderr, flags=re.M)
    assert [f.read_bytes() for f in files] == before
