"""The verdict of benchmarks/precision_quality.py (bf16 mean inside the fp32 seeds' range), on a
hand-made table; the script itself trains through the pipeline and is run by hand."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pandas as pd

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "precision_quality.py"
spec = importlib.util.spec_from_file_location("precision_quality", SCRIPT)
precision_quality = importlib.util.module_from_spec(spec)
spec.loader.exec_module(precision_quality)


def test_bf16_mean_is_judged_against_the_fp32_seed_range():
    per_run = pd.DataFrame(
        {
            "precision": ["fp32", "fp32", "bf16", "bf16"],
            "seed": [0, 1, 0, 1],
            "MAE_rel": [0.10, 0.12, 0.11, 0.12],  # bf16 mean 0.115: inside [0.10, 0.12]
            "PSNR_rel_dB": [26.0, 27.0, 25.0, 25.5],  # 25.25: below the fp32 range
            "SSIM_rel": [0.85, 0.85, 0.85, 0.85],  # equal: a zero-width range holds it
        }
    )
    v = precision_quality.verdict(per_run).set_index("metric")
    assert v.loc["MAE_rel", "within_fp32_spread"]
    assert abs(v.loc["MAE_rel", "bf16_minus_fp32"] - 0.005) < 1e-12  # 0.115 - 0.11
    assert not v.loc["PSNR_rel_dB", "within_fp32_spread"]
    assert (v.loc["PSNR_rel_dB", "fp32_min"], v.loc["PSNR_rel_dB", "fp32_max"]) == (26.0, 27.0)
    assert v.loc["SSIM_rel", "within_fp32_spread"]


def test_the_bf16_line_says_native_or_emulated():
    line = precision_quality.bf16_line()
    assert line.startswith("CPU bf16: native (") or "NOT native" in line
