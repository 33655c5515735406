"""Snakemake entries of rules/siscom.smk: the cohort's flat image and PET map (once), their
warp into a subject's native grid with the ictal mask, SISCOM per subject, the group summary."""

from __future__ import annotations

import logging
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from workflow_scripts.nifti_io import load_volume, save_nifti, write_json, write_text
from workflow_scripts.simulation_truth import focus_from_truth
from workflow_scripts.siscom.analysis import (
    built_source_path,
    load_on_grid,
    run_subject,
    zmap_path,
)
from workflow_scripts.siscom.figures import region_name_at, subject_figure, summary_plot
from workflow_scripts.siscom.sources import (
    FLAT,
    PET,
    PET_LINEAR,
    REAL,
    LinearMap,
    cohort_mean,
    fill_outward,
    fill_to_mask,
    fit_linear_map,
    pet_relative,
    relative,
    require_training,
)

log = logging.getLogger(__name__)


def _data(path, subject: str, what: str) -> tuple[np.ndarray, nib.Nifti1Image]:
    img = load_volume(path, subject, what)
    return np.clip(np.asarray(img.dataobj, np.float64), 0, None), img


def _masks(paths_a, paths_b, subjects, what) -> list[np.ndarray]:
    return [
        (_data(a, s, f"{what} SPECT mask")[0] > 0) & (_data(b, s, f"{what} brain mask")[0] > 0)
        for a, b, s in zip(paths_a, paths_b, subjects, strict=True)
    ]


def cohort_job(smk) -> None:
    """Rule siscom_cohort: from the training subjects only, the flat interictal (mean relative
    SPECT in template space) and the PET -> SPECT linear map (native space)."""
    inp, p = smk.input, smk.params
    flat_subjects = list(p.flat_subjects)
    require_training(flat_subjects, p.flat_splits)
    require_training(p.pet_subjects, p.pet_splits)
    masks = _masks(inp.flat_spectmask, inp.flat_brainmask, flat_subjects, "template")
    vols = [
        _data(f, s, "template SPECT")[0] for f, s in zip(inp.flat_spect, flat_subjects, strict=True)
    ]
    ref = nib.load(inp.flat_spect[0])
    # extended outward, so a subject's brain edge never meets a hole after the affine warp
    flat = fill_outward(cohort_mean(vols, masks), np.any(masks, axis=0))
    save_nifti(flat.astype(np.float32), smk.output.flat, ref.affine, code=4)
    write_json(
        {
            "Description": "flat interictal SPECT: voxelwise mean over the training subjects of "
            "their template-space SPECT divided by its mean in their brain x SPECT mask; outside "
            "every mask, the nearest covered voxel's value",
            "TrainingSubjects": [f"sub-{s}" for s in flat_subjects],
            "Sources": [str(f) for f in inp.flat_spect],
        },
        smk.output.flat_json,
    )
    fwhm = float(p.settings["pet_fwhm_mm"])
    record: dict = {"pet_fwhm_mm": fwhm, "training_subjects": [f"sub-{s}" for s in p.pet_subjects]}
    xs, ys = [], []
    for i, s in enumerate(p.pet_subjects):
        pet, img = _data(inp.pet[i], s, "native PET")
        brain = _data(inp.pet_brainmask[i], s, "native brain mask")[0] > 0
        fit = brain & (_data(inp.pet_spectmask[i], s, "native SPECT mask")[0] > 0)
        spect = relative(_data(inp.pet_spect[i], s, "native SPECT")[0], fit)
        xs.append(pet_relative(pet, brain, fwhm, img.header.get_zooms()[:3])[fit])
        ys.append(spect[fit])
    if xs:
        record |= fit_linear_map(xs, ys).as_dict()
        log.info("PET -> SPECT map on %d training subjects: %s", len(xs), record)
    write_json(record, smk.output.pet_map)


def warp_job(smk) -> None:
    """Rule siscom_warp: onto the subject's native grid, the flat interictal (inverse of its
    MRI -> template affine), the ictal SPECT's own mask and the interictal scan unmasked, like
    the ictal one (their rigid transforms)."""
    from workflow_scripts.preprocess import registration as reg

    reg.set_threads(smk.threads)
    grid = nib.load(smk.input.ictal)
    reg.resample(smk.input.flat, grid, [smk.input.template_xfm], smk.output.flat, invert=True)
    reg.resample(smk.input.interictal, grid, [smk.input.interictal_xfm], smk.output.real)
    reg.resample(
        smk.input.ictal_mask,
        grid,
        [smk.input.ictal_xfm],
        smk.output.ictalmask,
        interpolation="nearestNeighbor",
        dtype=np.uint8,
    )


def pet_linear_image(
    subject: str, pet: str | Path, brainmask: str | Path, pet_map: dict, out: Path
) -> Path | None:
    """The subject's PET smoothed and mapped to relative SPECT uptake (None without a map)."""
    if pet_map.get("slope") is None:
        log.warning("sub-%s: no PET -> SPECT map (no training subject with PET)", subject)
        return None
    pet_data, img = _data(pet, subject, "native PET")
    brain = load_on_grid(brainmask, subject, "native brain mask", img.shape, img.affine) > 0
    lin = LinearMap(pet_map["intercept"], pet_map["slope"], pet_map["r2"], pet_map["n_voxels"])
    rel = pet_relative(pet_data, brain, pet_map["pet_fwhm_mm"], img.header.get_zooms()[:3])
    # SISCOM normalises by the mean count: a map that goes negative has no meaning there
    return save_nifti(np.clip(lin.apply(rel, brain), 0, None).astype(np.float32), out, img.affine)


def raw_pet_image(subject: str, pet: str | Path, brainmask: str | Path, out: Path) -> Path:
    """The PET as it is (no smoothing, no mapping) over the MRI brain mask: where that mask goes
    beyond the PET's skull strip, the nearest PET value, not a rim of zeros."""
    pet_data, img = _data(pet, subject, "native PET")
    brain = load_on_grid(brainmask, subject, "native brain mask", img.shape, img.affine) > 0
    return save_nifti(fill_to_mask(pet_data, brain).astype(np.float32), out, img.affine)


def siscom_job(smk) -> None:
    """Rule siscom: one subject, every interictal source, its table and figure."""
    import json

    from workflow_scripts.slices.extract import brain_slices

    s, cfg, inp = smk.wildcards.subject, smk.params.settings, smk.input
    out_dir = Path(smk.output.table).parent
    sources: dict[str, str | Path] = {REAL: inp.spect, FLAT: inp.flat}
    if "pet" in inp.keys():
        pet_map = json.loads(Path(inp.pet_map).read_text())
        linear = pet_linear_image(
            s, inp.pet, inp.brainmask, pet_map, built_source_path(out_dir, s, PET_LINEAR)
        )
        if linear is not None:
            sources[PET_LINEAR] = linear
        sources[PET] = raw_pet_image(s, inp.pet, inp.brainmask, built_source_path(out_dir, s, PET))
    for label, path in zip(smk.params.conditions, inp.synth, strict=True):
        sources[label] = path
    focus, radius = focus_from_truth(inp.truth) if "truth" in inp.keys() else (None, None)
    # the synthetic SPECT covers every slice that meets the brain: so does every source
    slab_z = brain_slices(np.asarray(nib.load(inp.brainmask).dataobj) > 0)
    table = run_subject(
        s,
        inp.ictal,
        inp.brainmask,
        inp.ictalmask,
        sources,
        slab_z,
        out_dir,
        z_threshold=cfg["z_threshold"],
        min_cluster_mm3=cfg["min_cluster_mm3"],
        split=smk.params.split,
        focus_mm=focus,
        focus_radius_mm=radius,
    )
    log.info("sub-%s: SISCOM on %d brain slices, sources %s", s, len(slab_z), list(sources))
    peaks = {
        row.source: None
        if np.isnan(row.peak_x_mm)
        else np.array([row.peak_x_mm, row.peak_y_mm, row.peak_z_mm])
        for row in table.itertuples()
    }
    atlas, names = _atlas(inp)
    # the atlas region of each source's top-cluster peak ("" off the atlas or without a cluster)
    table["peak_region"] = [region_name_at(peaks[src], atlas, names) for src in table["source"]]
    write_text(table.to_csv(sep="\t", index=False, float_format="%.4g"), smk.output.table)
    subject_figure(
        inp.t1w,
        {src: zmap_path(out_dir, s, src) for src in sources},
        peaks,
        smk.output.png,
        f"sub-{s} SISCOM by interictal source",
        z_threshold=cfg["z_threshold"],
        focus_mm=focus,
        labels_img=atlas,
        names=names,
    )


def _atlas(inp) -> tuple[nib.Nifti1Image | None, dict[int, str] | None]:
    """The regional atlas on the subject's grid and its names (none when not given)."""
    if "atlas" not in inp.keys():
        return None, None
    from workflow_scripts.regions.atlas import read_label_table, region_label

    labels = read_label_table(inp.atlas_labels)
    names = {
        int(i): region_label(n, h)
        for i, n, h in zip(labels["index"], labels["name"], labels["hemisphere"], strict=True)
    }
    return nib.load(inp.atlas), names


def summary_job(smk) -> None:
    """Rule siscom_summary: group table, summary with intervals, and plot."""
    from workflow_scripts.siscom.summary import summarise  # statsmodels: not in the ants env

    cfg = smk.params.settings
    table = pd.concat([pd.read_csv(f, sep="\t") for f in smk.input], ignore_index=True)
    write_text(table.to_csv(index=False, float_format="%.4g"), smk.output.table)
    summary = summarise(
        table,
        n_resamples=cfg["bootstrap_resamples"],
        seed=cfg["bootstrap_seed"],
        confidence=cfg["confidence"],
    )
    write_text(summary.to_csv(index=False, float_format="%.4g"), smk.output.summary)
    summary_plot(table, smk.output.png)
