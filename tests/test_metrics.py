"""Metrics against scikit-image (an independent implementation), on random and real pairs."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.metrics import mean_squared_error, peak_signal_noise_ratio, structural_similarity

from workflow_scripts.evaluate.metrics import score_slices, slice_metrics


def pairs():
    rng = np.random.default_rng(0)
    a = rng.uniform(-1, 1, (64, 64))
    yield a, np.clip(a + rng.normal(0, 0.3, a.shape), -1, 1)
    # a 'real' pair: a smooth blob and a blurred, shifted copy, as a synthetic SPECT would be
    yy, xx = np.mgrid[:64, :64]
    real = 2 * np.exp(-((xx - 30) ** 2 + (yy - 34) ** 2) / 300) - 1
    synth = 2 * np.exp(-((xx - 32) ** 2 + (yy - 33) ** 2) / 330) - 1
    yield synth, real


@pytest.mark.parametrize("pred,real", list(pairs()))
def test_whole_slice_metrics_match_scikit_image(pred, real):
    m = slice_metrics(pred, real)
    assert m["RMSE"] == pytest.approx(np.sqrt(mean_squared_error(real, pred)), rel=1e-10)
    assert m["PSNR"] == pytest.approx(
        peak_signal_noise_ratio(real, pred, data_range=2.0), rel=1e-10
    )
    ref = structural_similarity(
        real, pred, data_range=2.0, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
    )
    assert m["SSIM"] == pytest.approx(ref, abs=1e-9)


def test_brain_mask_variants_and_identity():
    pred, real = next(pairs())
    mask = np.zeros_like(real, bool)
    mask[20:40, 20:40] = True
    m = slice_metrics(pred, real, mask)
    assert m["RMSE_brain"] == pytest.approx(np.sqrt(((pred - real)[mask] ** 2).mean()))
    assert m["PSNR_brain"] == pytest.approx(
        peak_signal_noise_ratio(real[mask], pred[mask], data_range=2.0)
    )
    _, smap = structural_similarity(
        real,
        pred,
        data_range=2.0,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        full=True,
    )
    assert m["SSIM_brain"] == pytest.approx(smap[mask].mean(), abs=1e-9)
    same = slice_metrics(real, real, mask)
    assert same["RMSE"] == 0 and same["SSIM"] == pytest.approx(1.0) and same["PSNR"] == float("inf")
    empty = slice_metrics(pred, real, np.zeros_like(mask))
    assert np.isnan(empty["SSIM_brain"])


def test_score_slices_keeps_slice_ranks():
    rng = np.random.default_rng(2)
    a, b = rng.uniform(-1, 1, (3, 32, 32)), rng.uniform(-1, 1, (3, 32, 32))
    rows = score_slices(a, b)
    assert [r["slice"] for r in rows] == [0, 1, 2]
    assert rows[1]["RMSE"] == pytest.approx(np.sqrt(((a[1] - b[1]) ** 2).mean()))
