"""Image-quality metrics of synthetic against real SPECT slices, as the paper reports them: the
reproduction of its Table 4 (not the primary endpoints, which are the brain-masked
relative-uptake metrics of workflow_scripts.evaluate.volume_metrics: whole-slice [-1, 1] scores are
dominated by background where both images are -1, and SSIM on signed data depends on the offset).

All metrics work on the [-1, 1] slices (data range 2.0), whole slice and inside the brain mask:
- RMSE = sqrt(mean((x - y)^2));
- PSNR = 10 log10(range^2 / MSE) dB;
- SSIM (Wang et al. 2004): Gaussian window sigma 1.5 (11 x 11), K1 = 0.01, K2 = 0.03,
  population covariances, averaged over the pixels at least 5 from the border (scikit-image's
  `structural_similarity(..., gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
  data_range=2)`); the masked SSIM averages the same map over the brain-mask pixels.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

DATA_RANGE = 2.0
SIGMA, TRUNCATE = 1.5, 3.5  # radius int(3.5 * 1.5 + 0.5) = 5 -> 11 x 11 window
PAD = 5
METRICS = ("RMSE", "SSIM", "PSNR")  # the paper's Table 4 (reproduction), on [-1, 1]
# Primary per-slice metrics (relative uptake inside the scoring mask, volume_metrics.py).
PRIMARY_METRICS = ("MAE_rel", "PSNR_rel_dB", "SSIM_rel")
# What the paired tests count as findings, per Holm family. PSNR = 20 log10(range / RMSE) is a
# monotone function of RMSE: one endpoint, so RMSE is reported (Table 4) but never tested.
TESTED = {"table4": ("SSIM", "PSNR"), "primary": PRIMARY_METRICS}


def ssim_map(x: np.ndarray, y: np.ndarray, data_range: float = DATA_RANGE) -> np.ndarray:
    x = x.astype(np.float64)
    y = y.astype(np.float64)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2

    def filt(a):
        return ndimage.gaussian_filter(a, SIGMA, truncate=TRUNCATE)

    mx, my = filt(x), filt(y)
    vx = filt(x * x) - mx * mx
    vy = filt(y * y) - my * my
    cxy = filt(x * y) - mx * my
    return ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))


def _valid(shape) -> np.ndarray:
    v = np.zeros(shape, bool)
    v[PAD:-PAD, PAD:-PAD] = True
    return v


def slice_metrics(
    pred: np.ndarray, real: np.ndarray, mask: np.ndarray | None = None
) -> dict[str, float]:
    """RMSE, SSIM, PSNR of one slice pair (and *_brain variants inside the mask)."""
    diff2 = (pred.astype(np.float64) - real.astype(np.float64)) ** 2
    smap = ssim_map(pred, real)
    valid = _valid(pred.shape)
    out = {
        "RMSE": float(np.sqrt(diff2.mean())),
        "SSIM": float(smap[valid].mean()),
        "PSNR": psnr_from_mse(float(diff2.mean())),
    }
    if mask is not None:
        m = mask.astype(bool)
        if m.any():
            mse = float(diff2[m].mean())
            inside = m & valid
            out.update(
                RMSE_brain=float(np.sqrt(mse)),
                SSIM_brain=float(smap[inside].mean()) if inside.any() else float("nan"),
                PSNR_brain=psnr_from_mse(mse),
            )
        else:
            out.update(RMSE_brain=float("nan"), SSIM_brain=float("nan"), PSNR_brain=float("nan"))
    return out


def psnr_from_mse(mse: float, data_range: float = DATA_RANGE) -> float:
    return float("inf") if mse == 0 else float(10 * np.log10(data_range**2 / mse))


def score_slices(pred: np.ndarray, real: np.ndarray, mask: np.ndarray | None = None) -> list[dict]:
    """Metrics for each slice of (N, S, S) stacks, with the slice rank."""
    rows = []
    for k in range(len(pred)):
        row = {"slice": k}
        row.update(slice_metrics(pred[k], real[k], None if mask is None else mask[k]))
        rows.append(row)
    return rows
