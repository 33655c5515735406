"""Whole-brain, leak-free synthesis (workflow_scripts/evaluate/synthesis.py), 2.5D inputs and the
per-volume target (slices.py), and the whole-volume scores (volume_metrics.py)."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest
from skimage.metrics import structural_similarity

from model.condition import Condition
from tests.conftest import slice_paths, write_subject_volumes
from workflow_scripts.evaluate.synthesis import input_slices, synthesise_subject, to_relative
from workflow_scripts.evaluate.volume_metrics import (
    plane_ssim,
    through_slice_cv,
    uncertainty_ratio,
    volume_scores,
)
from workflow_scripts.slices.extract import extract
from workflow_scripts.slices.files import RELATIVE_MAX, load_slices, stack_input
from workflow_scripts.train.from_slices import train_from_slices

CFG = {
    "epochs": 1,
    "epochs_decay": 0,
    "batch_size": 4,
    "lr": 1e-4,
    "beta1": 0.5,
    "lambda_l1": 100.0,
    "lambda_ssim": 10.0,
    "ngf": 8,
    "ndf": 8,
    "augment": False,
    "seed": 0,
    "checkpoint_every": 1,
    "validate_every": 0,
    "device": "cpu",
    "compile": "never",
}


def test_context_stacks_neighbours_in_order(tmp_path):
    vols = write_subject_volumes(tmp_path, "01", 0)
    common = dict(subject="01", split="train", space="native", size=32, scaling="per_slice")
    flat = extract(
        {"mri": vols["T1w"]}, vols["brainmask"], n_slices=None, min_brain_fraction=0, **common
    )
    ctx = extract(
        {"mri": vols["T1w"]},
        vols["brainmask"],
        n_slices=None,
        min_brain_fraction=0,
        context=2,
        **common,
    )
    x = stack_input(ctx, "mri")
    assert x.shape[1] == 5
    # channel 2 is the slice itself; channel 0 the slice two below, channel 4 two above
    assert np.array_equal(x[:, 2], np.asarray(flat.images["mri"]))
    assert np.array_equal(x[2:, 0], np.asarray(flat.images["mri"])[:-2])
    assert np.array_equal(x[:-2, 4], np.asarray(flat.images["mri"])[2:])
    # beyond the volume's last slice: a zero slice, which scales to all -1
    assert (x[-1, 4] == -1).all() or ctx.z[-1] + 2 < 24


def test_smaller_context_takes_the_nearer_neighbours(tmp_path):
    vols = write_subject_volumes(tmp_path, "01", 0)
    common = dict(subject="01", split="train", space="native", size=32, scaling="per_slice")
    cut = dict(n_slices=None, min_brain_fraction=0, **common)
    wide = extract({"mri": vols["T1w"]}, vols["brainmask"], context=2, **cut)
    narrow = extract({"mri": vols["T1w"]}, vols["brainmask"], context=1, **cut)
    flat = extract({"mri": vols["T1w"]}, vols["brainmask"], **cut)
    # a 2D or 1-neighbour model reads the same channels from 2.5D files as from its own files
    assert np.array_equal(stack_input(wide, "mri", 1), stack_input(narrow, "mri"))
    assert np.array_equal(stack_input(wide, "mri", 0), stack_input(flat, "mri"))
    with pytest.raises(ValueError, match="context 3"):
        stack_input(wide, "mri", 3)


def test_per_volume_target_is_relative_uptake_on_a_fixed_line(tmp_path):
    vols = write_subject_volumes(tmp_path, "01", 0)
    ss = extract(
        {"spect": vols["spect"]},
        vols["brainmask"],
        subject="01",
        split="train",
        space="native",
        n_slices=8,
        size=32,
        min_brain_fraction=0.02,
        scaling="per_slice",
        target_scaling="per_volume",
    )
    spect = nib.load(vols["spect"]).get_fdata()
    brain = nib.load(vols["brainmask"]).get_fdata() > 0
    rel = to_relative(np.asarray(ss.images["spect"]), "per_volume")
    k = len(ss.z) // 2
    window = spect[ss.corner[0] : ss.corner[0] + 32, ss.corner[1] : ss.corner[1] + 32, ss.z[k]]
    assert np.allclose(rel[k], np.clip(window / spect[brain].mean(), 0, RELATIVE_MAX), atol=1e-5)
    assert ss.target_scaling == "per_volume"


@pytest.fixture
def trained(make_slices, tmp_path):
    files = make_slices({"01": "train", "02": "train"}, context=1, target_scaling="per_volume")
    model_dir = tmp_path / "model"
    train_from_slices(slice_paths(files), model_dir, Condition("native", "mri_pet", "l1_bce"), CFG)
    return model_dir


def test_synthesis_covers_every_brain_slice_and_never_reads_the_spect(trained, tmp_path):
    vols = (
        write_subject_volumes(tmp_path / "new", "09", 9)
        if (tmp_path / "new").mkdir() is None
        else None
    )
    inputs = {"mri": vols["T1w"], "pet": vols["pet"]}
    run = dict(subject="09", space="native", scaling="per_slice", shift_px=2)
    a = synthesise_subject(trained, inputs, vols["brainmask"], **run)
    brain = nib.load(vols["brainmask"]).get_fdata() > 0
    vol = a.volume.get_fdata()
    # whole brain: every axial slice that meets the brain holds synthetic uptake
    for z in np.flatnonzero(brain.any(axis=(0, 1))):
        assert vol[:, :, z][brain[:, :, z]].max() > 0, z
    assert np.isclose(vol[brain].mean(), 1.0, atol=1e-5)  # relative uptake
    # the real SPECT is not an input: replacing it with noise, or deleting it, changes nothing
    spect = vols["spect"]
    noise = np.random.default_rng(1).uniform(0, 1e4, nib.load(spect).shape).astype(np.float32)
    nib.save(nib.Nifti1Image(noise, nib.load(spect).affine), spect)
    b = synthesise_subject(trained, inputs, vols["brainmask"], **run)
    spect.unlink()
    c = synthesise_subject(trained, inputs, vols["brainmask"], **run)
    for other in (b, c):
        assert other.volume.get_fdata().tobytes() == a.volume.get_fdata().tobytes()
        assert other.sd.get_fdata().tobytes() == a.sd.get_fdata().tobytes()
    sd = a.sd.get_fdata()
    assert sd[brain].max() > 0 and (sd >= 0).all()


def test_synthesis_refuses_a_spect_among_its_inputs(trained, tmp_path):
    vols = write_subject_volumes(tmp_path, "09", 9)
    with pytest.raises(ValueError, match="synthesis takes"):
        synthesise_subject(
            trained,
            {"mri": vols["T1w"], "pet": vols["pet"], "spect": vols["spect"]},
            vols["brainmask"],
            subject="09",
            space="native",
            scaling="per_slice",
        )


def test_through_slice_cv_sees_per_slice_gains():
    rng = np.random.default_rng(0)
    real = rng.uniform(0.5, 1.5, (16, 16, 10))
    brain = np.ones_like(real, bool)
    assert through_slice_cv(real * 1.3, real, brain) == pytest.approx(0.0, abs=1e-9)
    gains = np.array([1.0, 2.0] * 5)  # ratios alternate 1, 2: mean 1.5, std 0.5
    assert through_slice_cv(real * gains, real, brain) == pytest.approx(100 * 0.5 / 1.5)


def test_plane_ssim_matches_scikit_image_and_uncertainty_ratio_by_hand():
    rng = np.random.default_rng(0)
    real = rng.uniform(0, 2, (20, 18, 16))
    synth = real + rng.normal(0, 0.2, real.shape)
    brain = np.ones(real.shape, bool)
    expected = np.mean(
        [
            structural_similarity(
                synth[:, y, :],
                real[:, y, :],
                data_range=RELATIVE_MAX,
                gaussian_weights=True,
                sigma=1.5,
                use_sample_covariance=False,
            )
            for y in range(18)
        ]
    )
    assert plane_ssim(synth, real, brain, axis=1) == pytest.approx(expected, rel=1e-9)
    sagittal = np.mean(
        [
            structural_similarity(
                synth[x],
                real[x],
                data_range=RELATIVE_MAX,
                gaussian_weights=True,
                sigma=1.5,
                use_sample_covariance=False,
            )
            for x in range(20)
        ]
    )
    # volumes as nibabel loads them (Fortran order) give the same planes
    fortran = [np.asfortranarray(v) for v in (synth, real, brain)]
    assert plane_ssim(*fortran, axis=0) == pytest.approx(sagittal, rel=1e-9)
    assert plane_ssim(*fortran, axis=1) == pytest.approx(expected, rel=1e-9)
    # errors 1..10 in ten voxels, uncertainty equal to the error: top decile 10, bottom 1
    err = np.arange(1, 11, dtype=float).reshape(10, 1, 1)
    ratio = uncertainty_ratio(err, np.zeros_like(err), err, np.ones_like(err, bool))
    assert ratio == pytest.approx(10.0)
    scores = volume_scores(synth, real, np.abs(synth - real), brain)
    assert scores["uncertainty_top_bottom_MAE_ratio"] > 1
    assert set(scores) >= {
        "MAE_rel",
        "PSNR_rel_dB",
        "SSIM_rel",
        "SSIM_coronal",
        "SSIM_sagittal",
        "through_slice_CV_percent",
    }


def test_training_records_context_and_target_scaling(trained):
    import json

    meta = json.loads((trained / "train_config.json").read_text())
    assert meta["context"] == 1 and meta["target_scaling"] == "per_volume"
    assert meta["in_channels"] == 6  # two modalities x three slices


def test_2d_twin_trains_on_25d_files_with_centre_channels(make_slices, tmp_path):
    import json

    files = make_slices({"01": "train", "02": "train"}, context=1, target_scaling="per_volume")
    model_dir = tmp_path / "twin"
    cond = Condition("native", "mri_pet", "l1_bce", context=0)
    train_from_slices(slice_paths(files), model_dir, cond, CFG)
    meta = json.loads((model_dir / "train_config.json").read_text())
    assert meta["context"] == 0 and meta["in_channels"] == 2


def test_slice_files_keep_context(make_slices):
    files = make_slices({"01": "train"}, context=2)
    ss = load_slices(*files["01"])
    assert ss.context == 2 and ss.neighbours["mri"].shape[1] == 4


def test_shift_moves_and_fills():
    from model.infer import shift

    a = np.arange(16, dtype=np.float32).reshape(1, 4, 4)
    b = shift(a, 1, 0, -1.0)
    assert (b[0, 0] == -1).all() and np.array_equal(b[0, 1:], a[0, :3])
    assert np.array_equal(shift(shift(a, 0, -2, 0.0), 0, 2, 0.0)[0, :, 2:], a[0, :, 2:])


def test_synthesis_is_the_first_augmented_pass(trained, tmp_path):
    """synthesise_subject takes the synthesis from test-time augmentation's pass 0 (one pass
    fewer): it must be exactly the model applied to the unchanged input."""
    from model.infer import load_generator, synthesise

    vols = write_subject_volumes(tmp_path, "09", 9)
    inputs = {"mri": vols["T1w"], "pet": vols["pet"]}
    run = dict(subject="09", space="native", scaling="per_slice", shift_px=2)
    result = synthesise_subject(trained, inputs, vols["brainmask"], **run)
    meta = json.loads((trained / "train_config.json").read_text())
    ss = input_slices(
        inputs, vols["brainmask"], meta, **{k: run[k] for k in run if k != "shift_px"}
    )
    x = stack_input(ss, meta["condition"]["input"])
    direct = synthesise(load_generator(trained), x, precision=result.precision)
    assert result.pred.tobytes() == direct.tobytes()


def test_inference_runs_at_the_trained_precision_where_native(monkeypatch):
    """A bf16-trained generator runs under bf16 autocast where the CPU has bf16 natively
    (2.2x the fp32 pass on the demo's generator), else in fp32; fp16 (a 7.x GPU's training)
    only on CUDA; fp32 stays fp32."""
    import model.infer as infer

    monkeypatch.setattr(infer, "cpu_flags", lambda: frozenset({"avx512f", "avx512_bf16"}))
    assert infer.inference_precision("bf16") == "bf16"
    assert infer.inference_precision("fp32") == "fp32"
    assert infer.inference_precision("fp16") == "fp32"
    monkeypatch.setattr(infer, "cpu_flags", lambda: frozenset({"avx2"}))
    assert infer.inference_precision("bf16") == "fp32"


def test_bf16_synthesis_stays_close_to_fp32(trained, tmp_path):
    """bf16 autocast changes the synthetic slices by far less than the model's error (demo
    MAE ~0.1 on [-1, 1]); a generator run at another precision by mistake would not be."""
    from model.infer import load_generator, synthesise

    g = load_generator(trained)
    x = np.random.default_rng(0).uniform(-1, 1, (12, g.model.model[0].in_channels, 32, 32))
    fp32 = synthesise(g, x.astype(np.float32))
    bf16 = synthesise(g, x.astype(np.float32), precision="bf16")
    assert 0 < np.abs(bf16 - fp32).max() < 0.05
    assert np.abs(bf16 - fp32).mean() < 0.005
