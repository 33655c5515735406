"""Snakemake entries of rules/evaluate.smk: synthesis of one subject with one model (never given
its real SPECT), its scores against the real one, the baselines and the Monte Carlo ceiling,
the run-to-run variance, and the group tables, figures and summary."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import numpy as np

from workflow_scripts.layout import TEMPLATE, XFORM_CODE
from workflow_scripts.nifti_io import atomic_path, save_nifti

log = logging.getLogger(__name__)


def predict_job(smk) -> None:
    """Snakemake entry (rule predict): never given the subject's SPECT."""
    import torch

    from workflow_scripts.derivatives import dataset_root, sha256, write_sidecar
    from workflow_scripts.evaluate.synthesis import model_meta, synthesise_subject

    torch.set_num_threads(max(1, int(smk.threads)))
    label, condition = smk.wildcards.space, smk.params.condition
    model_dir = Path(smk.input.weights).parent
    from workflow_scripts.train.training_set import assert_not_trained_on

    assert_not_trained_on(model_dir, smk.wildcards.subject)
    volumes = {m: smk.input[m] for m in ("mri", "pet") if m in smk.input.keys()}
    result = synthesise_subject(
        model_dir,
        volumes,
        smk.input.brainmask,
        subject=smk.wildcards.subject,
        space=condition["space"],
        scaling=smk.params.scaling,
        shift_px=smk.params.shift_px,
    )
    code = XFORM_CODE[label]
    save_nifti(result.volume, smk.output.volume, code=code)
    save_nifti(result.sd, smk.output.sd, code=code)
    with atomic_path(smk.output.slices, ".npz") as tmp:
        np.savez(tmp, pred=result.pred.astype(np.float32), z=result.z)
    meta = model_meta(model_dir)
    model = {
        "Condition": condition,
        "Context": meta["context"],
        "TargetScaling": meta["target_scaling"],
        "Weights": Path(smk.input.weights)
        .absolute()
        .relative_to(dataset_root(smk.output.volume))
        .as_posix(),
        "WeightsSHA256": sha256(smk.input.weights),
        "Precision": result.precision,
    }
    units = "uptake relative to the mean over the MRI brain mask (brain mean = 1)"
    if meta["target_scaling"] == "per_slice":
        units += "; per_slice model: each axial slice carries its own arbitrary gain"
    common = {
        "sources": list(smk.params.sources),
        "spatial_reference": label if label == TEMPLATE else smk.params.reference,
    }
    write_sidecar(
        smk.output.volume,
        skull_stripped=True,
        Description="synthetic interictal SPECT: pix2pix generator applied to every brain "
        "slice of the subject's MRI and/or PET (never its real SPECT)",
        Units=units,
        Model=model,
        **common,
    )
    write_sidecar(
        smk.output.sd,
        Description="uncertainty of the synthetic SPECT: standard deviation over test-time "
        f"augmentations (mirror x shifts of 0 / +-{smk.params.shift_px} pixels)",
        Units=units,
        Model=model,
        **common,
    )


def tables_job(smk) -> None:
    """metrics.csv, Table 4 (csv, md, html) and the statistical tests."""
    import pandas as pd

    from workflow_scripts.evaluate.seed_variance import RUN, mean_over_runs, n_runs, with_run
    from workflow_scripts.evaluate.stats import comparisons, run_tests, table4
    from workflow_scripts.evaluate.tables import ORDER, collect, render_table4, without_twins
    from workflow_scripts.nifti_io import write_text

    # every training run's rows (column `run`); Table 4 and the tests: per subject (and slice)
    # the mean over runs
    metrics = with_run(collect(list(smk.input.metrics))).sort_values([*ORDER, RUN])
    write_text(metrics.to_csv(index=False), smk.output.metrics)
    volume = with_run(collect(list(smk.input.volume), ["space", "input", "loss", "subject"]))
    volume = volume.sort_values(["space", "input", "loss", "subject", RUN], kind="stable")
    write_text(volume.to_csv(index=False, float_format="%.6g"), smk.output.volume)
    runs = n_runs(metrics)
    metrics, volume = mean_over_runs(metrics), mean_over_runs(volume)
    t4 = table4(metrics)
    write_text(t4.to_csv(index=False, float_format="%.6g"), smk.output.table4)
    md, html = render_table4(t4, runs)
    write_text(md, smk.output.table4_md)
    write_text(html, smk.output.table4_html)
    comps = comparisons(smk.params.spaces, smk.params.inputs, smk.params.losses)
    tests = run_tests(metrics, comps, alpha=smk.params.alpha, volume=without_twins(volume))
    write_text(tests.to_csv(index=False, float_format="%.6g"), smk.output.tests)
    # the Monte Carlo ceiling's slice rows join the baselines (its `loss` is their `method`)
    ceiling = collect(list(smk.input.ceiling_slices)).rename(columns={"loss": "method"})
    baselines = collect(list(smk.input.baselines), ["space", "input", "method", "subject", "slice"])
    baselines = pd.concat([baselines, ceiling], ignore_index=True)
    write_text(baselines.to_csv(index=False, float_format="%.6g"), smk.output.baselines)
    ceiling_volume = collect(list(smk.input.ceiling_volume), ["space", "subject"])
    write_text(ceiling_volume.to_csv(index=False, float_format="%.6g"), smk.output.ceiling)


def figures_job(smk) -> None:
    # the slices' scores as Table 4 and the tests see them: the mean over training runs
    import pandas as pd

    from workflow_scripts.evaluate import figures
    from workflow_scripts.evaluate.seed_variance import mean_over_runs

    metrics = mean_over_runs(pd.read_csv(smk.input.metrics))
    tests = pd.read_csv(smk.input.tests)
    alpha = smk.params.alpha
    figures.violin_figure(metrics, tests, "space", "loss", "fig5_space", smk.output.fig5, alpha)
    figures.violin_figure(metrics, tests, "loss", "space", "fig6_loss", smk.output.fig6, alpha)
    figures.input_figure(metrics, tests, smk.output.fig7, alpha)


def montage_job(smk) -> None:
    """Figs. 3-4: for the first test and validation subjects, the middle scored slice."""
    from workflow_scripts.evaluate import figures
    from workflow_scripts.evaluate.score import sampled_predictions
    from workflow_scripts.slices.files import load_subjects

    rows = []
    held_out = load_subjects(smk.input.slices)
    for subject, ss in zip(smk.params.subjects, held_out, strict=True):
        if ss.subject != subject:
            raise ValueError(f"montage: slices of sub-{ss.subject} where sub-{subject} was due")
        k = len(ss.z) // 2
        images = {}
        if "mri" in ss.images:
            images["MRI"] = np.asarray(ss.images["mri"][k])
        if "pet" in ss.images:
            images["PET"] = np.asarray(ss.images["pet"][k])
        real = np.asarray(ss.images["spect"][k])
        images["real SPECT"] = real
        for inp, pattern in smk.params.synth_patterns.items():
            f = Path(pattern.format(subject=subject))
            if f.exists():
                synth = sampled_predictions(f, ss.z[k : k + 1])[0]
                images[f"synthetic ({inp})"] = synth
                images[f"|diff| ({inp})"] = np.abs(synth - real) / 2.0
        rows.append({"label": f"sub-{subject} ({ss.split}) z={int(ss.z[k])}", "images": images})
    figures.montage(rows, smk.output[0], smk.params.title)


def summary_job(smk) -> None:
    import pandas as pd

    from workflow_scripts.evaluate.seed_variance import mean_over_runs
    from workflow_scripts.evaluate.tables import read_or_empty, results_summary
    from workflow_scripts.nifti_io import write_text

    metrics = pd.read_csv(smk.input.metrics)
    tests = pd.read_csv(smk.input.tests)
    text = results_summary(
        mean_over_runs(metrics),
        tests,
        read_or_empty(smk.input.baselines),
        smk.params.alpha,
        volume=mean_over_runs(read_or_empty(smk.input.volume)),
        ceiling=read_or_empty(smk.input.ceiling),
        run_metrics=metrics,
        variance=read_or_empty(smk.input.seed_variance),
    )
    write_text(text, smk.output[0])


def synthesis_job(smk) -> None:
    """Snakemake entry (rule synthesis_figure): MRI, the subject's real ictal / interictal SPECT
    and every synthetic interictal SPECT in three planes through the brain's centre, all in
    uptake relative to the brain mean (the MRI in its own units)."""
    import nibabel as nib

    from workflow_scripts.evaluate.figures import three_planes
    from workflow_scripts.evaluate.volume_metrics import relative

    def load(path):
        return np.asarray(nib.load(path).dataobj, dtype=np.float32)

    t1 = load(smk.input.t1w)
    brain = t1 > 0
    centre = tuple(int(round(v)) for v in np.argwhere(brain).mean(axis=0))
    rows = [("T1w MRI", t1, float(np.percentile(t1[brain], 99.5)))]
    for scan in ("ictal", "interictal"):
        if scan in smk.input.keys():
            rows.append((f"real {scan}", relative(load(smk.input[scan]), brain), 2.0))
    for label, path in zip(smk.params.conditions, smk.input.synth, strict=True):
        rows.append((f"synthetic {label}", relative(load(path), brain), 2.0))
    title = (
        f"sub-{smk.wildcards.subject} ({smk.params.split}): uptake relative to the brain mean "
        f"(0-2), planes through voxel {centre}"
    )
    three_planes(rows, centre, smk.output[0], title)


def baselines_job(smk) -> None:
    """Snakemake entry (rule baselines), one space."""
    from workflow_scripts.evaluate.baselines import baseline_table
    from workflow_scripts.nifti_io import write_text

    inputs = list(smk.params.inputs)
    train = {inp: list(smk.input[f"train_{inp}"]) for inp in inputs}
    table = baseline_table(train, list(smk.input.eval), inputs)
    write_text(table.to_csv(sep="\t", index=False), smk.output[0])


def ceiling_job(smk) -> None:
    """Snakemake entry (rule mc_ceiling), one subject and space: slice and volume scores of the
    Monte Carlo ceiling against the subject's real SPECT."""
    import nibabel as nib

    from workflow_scripts.evaluate.ceiling import monte_carlo_mean, scan_preprocessing, subject_rng
    from workflow_scripts.evaluate.ceiling_names import CEILING_INPUT, CEILING_LABEL, CEILING_METHOD
    from workflow_scripts.evaluate.score import load_float, scored_tables, scoring_mask
    from workflow_scripts.layout import TEMPLATE
    from workflow_scripts.nifti_io import write_text
    from workflow_scripts.preprocess import registration as reg
    from workflow_scripts.preprocess.spaces import study_grid
    from workflow_scripts.slices.files import load_slices

    reg.set_threads(smk.threads)
    subject, label = smk.wildcards.subject, smk.wildcards.space
    ss = load_slices(smk.input.slices)
    if "spect" not in ss.images:
        raise ValueError(f"sub-{subject} ({smk.input.slices}) has no real SPECT to score against")
    expected_img = nib.load(smk.input.expected)
    expected = np.asarray(expected_img.dataobj, dtype=np.float64)
    if not np.isfinite(expected).all() or expected.max() <= 0:
        raise ValueError(f"sub-{subject} {smk.input.expected}: no positive finite expectation")
    grid = study_grid(smk.params.grid, smk.input.grid_mask)
    transforms = ([smk.input.template_xfm] if label == TEMPLATE else []) + [smk.input.xfm]
    brain = load_float(smk.input.brainmask) > 0
    with tempfile.TemporaryDirectory(prefix="spectsynth-ceiling-") as tmp:
        preprocess = scan_preprocessing(
            expected_img.affine,
            subject=subject,
            mask_cfg=smk.params.spect_mask,
            grid=grid,
            transforms=transforms,
            workdir=Path(tmp),
        )
        est = monte_carlo_mean(
            expected,
            preprocess,
            brain,
            ss,
            int(smk.params.draws),
            subject_rng(smk.params.seed, subject),
        )
    condition = {"space": ss.space, "input": CEILING_INPUT, "loss": CEILING_METHOD}
    slices, volume = scored_tables(
        est.slices,
        ss,
        condition,
        est.volume,
        load_float(smk.input.real),
        est.sd,
        scoring_mask(smk.input.brainmask, smk.input.spectmask),
    )
    volume.insert(len(condition) + 2, "draws", est.draws)
    write_text(slices.to_csv(sep="\t", index=False), smk.output.slices)
    write_text(volume.to_csv(sep="\t", index=False), smk.output.volume)
    log.info("sub-%s space-%s: %s from %d draws", subject, label, CEILING_LABEL, est.draws)


def seed_variance_job(smk) -> None:
    """Snakemake entry (rule seed_variance): tables/seed_variance.csv."""
    import pandas as pd

    from workflow_scripts.evaluate.seed_variance import n_runs, seed_variance
    from workflow_scripts.evaluate.tables import without_twins
    from workflow_scripts.nifti_io import write_text

    metrics = pd.read_csv(smk.input.metrics)
    volume = pd.read_csv(smk.input.volume)
    table = seed_variance(metrics, without_twins(volume), smk.params.seed)
    log.info("%d rows, %d runs", len(table), max(n_runs(metrics), n_runs(volume)))
    write_text(table.to_csv(index=False, float_format="%.6g"), smk.output[0])


def score_job(smk) -> None:
    """Snakemake entry (rule score): per-slice (Table 4 reproduction and primary relative-uptake
    metrics) and whole-volume scores."""
    from workflow_scripts.evaluate.score import (
        load_float,
        sampled_predictions,
        scored_tables,
        scoring_mask,
    )
    from workflow_scripts.nifti_io import write_text
    from workflow_scripts.slices.files import load_slices

    ss = load_slices(smk.input.slices)
    if "spect" not in ss.images:
        raise ValueError(
            f"sub-{ss.subject} ({smk.input.slices}) has no real SPECT to score against"
        )
    slices, volume = scored_tables(
        sampled_predictions(smk.input.synth, ss.z),
        ss,
        smk.params.condition,
        load_float(smk.input.volume),
        load_float(smk.input.real),
        load_float(smk.input.sd),
        scoring_mask(smk.input.brainmask, smk.input.spectmask),
    )
    write_text(slices.to_csv(sep="\t", index=False), smk.output.slices)
    write_text(volume.to_csv(sep="\t", index=False), smk.output.volume)
