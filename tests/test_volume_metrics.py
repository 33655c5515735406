"""Primary relative-uptake metrics (volume_metrics.py) against independent computations."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from workflow_scripts.evaluate.metrics import ssim_map
from workflow_scripts.evaluate.score import scored_tables
from workflow_scripts.evaluate.volume_metrics import (
    PSNR_RANGE,
    masked_ssim,
    primary_scores,
    slice_primary_scores,
    volume_scores,
)
from workflow_scripts.slices.files import RELATIVE_MAX, SubjectSlices


def blob_pair(shape=(24, 24, 16), seed=0):
    """A smooth relative-uptake 'brain' and a noisy, slightly biased copy, with its mask."""
    rng = np.random.default_rng(seed)
    grids = np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij")
    r2 = sum(g**2 for g in grids)
    brain = r2 < 0.8
    real = np.where(brain, 1.0 + 0.5 * np.cos(3 * grids[0]) * np.sin(2 * grids[1]), 0.0)
    synth = np.clip(real * 1.05 + rng.normal(0, 0.1, shape) * brain, 0, None)
    return synth, real, brain


def test_psnr_is_twenty_log_of_the_fixed_range_over_rmse():
    synth, real, brain = blob_pair()
    s = primary_scores(synth, real, brain)
    diff = synth[brain] - real[brain]
    assert PSNR_RANGE == RELATIVE_MAX == 3.0
    assert s["MAE_rel"] == pytest.approx(np.abs(diff).mean(), rel=1e-12)
    assert s["RMSE_rel"] == pytest.approx(np.sqrt((diff**2).mean()), rel=1e-12)
    assert s["PSNR_rel_dB"] == pytest.approx(20 * np.log10(3.0 / s["RMSE_rel"]), rel=1e-12)
    ref = peak_signal_noise_ratio(real[brain], synth[brain], data_range=3.0)
    assert s["PSNR_rel_dB"] == pytest.approx(ref, rel=1e-10)


def test_3d_ssim_over_the_whole_volume_is_scikit_images_mean():
    """With a full mask, the masked mean is scikit-image's own mean (interior 5 voxels in)."""
    synth, real, _ = blob_pair()
    ref = structural_similarity(
        real,
        synth,
        data_range=3.0,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
    )
    full = np.ones(real.shape, bool)
    assert masked_ssim(synth, real, full) == pytest.approx(ref, abs=1e-12)


def test_ssim_of_a_constant_offset_pair_is_the_hand_formula_and_needs_no_sign():
    """Constants c, d: variances are 0, so SSIM = (2cd + C1) / (c^2 + d^2 + C1), C1 =
    (0.01 * 3)^2. Relative uptake 1.4 vs 1.6 is close to 1; the same pair on the signed
    [-1, 1] line straddles 0 and its SSIM turns negative: why the primary SSIM is non-negative."""
    c, d = 1.4, 1.6
    a, b = np.full((24, 24), d), np.full((24, 24), c)
    mask = np.ones_like(a, bool)
    c1 = (0.01 * 3.0) ** 2
    hand = (2 * c * d + c1) / (c**2 + d**2 + c1)
    assert masked_ssim(a, b, mask) == pytest.approx(hand, rel=1e-9)
    assert hand > 0.99
    signed = ssim_map(2 * a / RELATIVE_MAX - 1, 2 * b / RELATIVE_MAX - 1)[12, 12]
    assert signed < -0.8


def test_per_slice_scores_are_the_2d_metrics_of_each_axial_slice():
    synth, real, brain = blob_pair()
    z = np.array([0, 5, 8])
    brain = brain.copy()
    brain[:, :, 0] = False  # a slice the mask misses: nan, not an error
    rows = slice_primary_scores(synth, real, brain, z)
    assert [r["z"] for r in rows] == [0, 5, 8]
    assert np.isnan(rows[0]["MAE_rel"]) and np.isnan(rows[0]["SSIM_rel"])
    for row in rows[1:]:
        zi = row["z"]
        m = brain[:, :, zi]
        diff = synth[:, :, zi][m] - real[:, :, zi][m]
        assert row["MAE_rel"] == pytest.approx(np.abs(diff).mean(), rel=1e-12)
        assert row["PSNR_rel_dB"] == pytest.approx(
            20 * np.log10(3.0 / np.sqrt((diff**2).mean())), rel=1e-12
        )
        _, smap = structural_similarity(
            real[:, :, zi],
            synth[:, :, zi],
            data_range=3.0,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
            full=True,
        )
        inner = m.copy()
        inner[:5], inner[-5:], inner[:, :5], inner[:, -5:] = False, False, False, False
        assert row["SSIM_rel"] == pytest.approx(smap[inner].mean(), abs=1e-12)


def test_volume_scores_are_in_relative_uptake_whatever_the_units():
    synth, real, brain = blob_pair()
    sd = np.abs(synth - real) + 0.01
    a = volume_scores(synth, real, sd, brain)
    b = volume_scores(7.0 * synth, 300.0 * real, 7.0 * sd, brain)
    for key in ("MAE_rel", "RMSE_rel", "PSNR_rel_dB", "SSIM_rel"):
        assert a[key] == pytest.approx(b[key], rel=1e-9), key
    assert a["SSIM_rel"] < 0.99
    assert primary_scores(real, real, brain)["SSIM_rel"] == pytest.approx(1.0, abs=1e-12)


def test_scored_tables_put_each_slices_primary_metrics_on_its_row():
    synth, real, brain = blob_pair()
    z = np.array([9, 4, 6])  # not sorted: rows must be matched by z, not by order
    ss = SubjectSlices(
        subject="07",
        split="test",
        space="native",
        images={"spect": np.zeros((3, 24, 24), np.float32)},
        mask=np.moveaxis(brain[:, :, z], 2, 0),
        z=z,
    )
    cond = {"space": "native", "input": "pet", "loss": "l1_bce"}
    pred = np.zeros((3, 24, 24), np.float32)
    slices, volume = scored_tables(pred, ss, cond, 2 * synth, real, synth, brain)
    ref = pd.DataFrame(
        slice_primary_scores(
            synth * 2 / (2 * synth[brain].mean()), real / real[brain].mean(), brain, z
        )
    )
    assert list(slices["z"]) == [9, 4, 6]
    np.testing.assert_allclose(slices["MAE_rel"], ref["MAE_rel"], rtol=1e-12)
    np.testing.assert_allclose(slices["SSIM_rel"], ref["SSIM_rel"], rtol=1e-12)
    assert {"RMSE", "SSIM", "PSNR"} <= set(slices.columns)  # the paper's, kept
    assert len(volume) == 1 and volume.loc[0, "subject"] == "sub-07"
    assert volume.loc[0, "PSNR_rel_dB"] > 0
