"""Compare synthesis modes on the demo cohort, all leak-free: the paper's 2D per-slice target,
the per-volume (relative uptake) target in 2D, and per-volume in 2.5D (context 1, 2).

One out_dir: preprocessing runs once, each mode reruns slices, training, synthesis and scores
(Snakemake sees the changed settings), and its tables are kept. Prints a markdown table of the
per-slice scores (Table 4 style, on the target's own [-1, 1] scale) and the whole-volume scores
(relative uptake inside the brain), mean over held-out subjects and conditions.

    python benchmarks/synthesis_modes.py --out /tmp/modes            # about 25 min on 2 cores
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
MODES = {
    "paper 2D (per_slice, context 0)": ("per_slice", 0),
    "per_volume, 2D (context 0)": ("per_volume", 0),
    "per_volume, 2.5D (context 1)": ("per_volume", 1),
    "per_volume, 2.5D (context 2)": ("per_volume", 2),
}


def run(out: Path, scaling: str, context: int, args) -> float:
    cfg = [
        f"bids_dir={out / 'bids'}",
        f"out_dir={out / 'out'}",
        f"slices={{target_scaling: {scaling}, context: {context}}}",
        f"train={{spaces: [native], inputs: [{args.inputs}], losses: [l1_bce], "
        f"epochs: {args.epochs}}}",
        "siscom={enabled: false}",
    ]
    cmd = [SNAKEMAKE, "-s", str(ROOT / "Snakefile"), "--directory", str(out)]
    cmd += ["--cores", str(args.cores), "--config", *cfg]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    return time.perf_counter() - t0


def summarise(tables: Path) -> dict[str, float]:
    t4 = pd.read_csv(tables / "metrics.csv")
    vol = pd.read_csv(tables / "volume_metrics.csv")
    return {
        "SSIM slice [-1,1]": t4["SSIM"].mean(),
        "PSNR slice (dB)": t4["PSNR"].mean(),
        "MAE volume (rel.)": vol["MAE_brain"].mean(),
        "through-slice CV (%)": vol["through_slice_CV_percent"].mean(),
        "SSIM coronal": vol["SSIM_coronal"].mean(),
        "SSIM sagittal": vol["SSIM_sagittal"].mean(),
        "uncertainty ratio": vol["uncertainty_top_bottom_MAE_ratio"].mean(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--inputs", default="pet, mri_pet")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--modes", nargs="*", default=list(MODES))
    args = parser.parse_args()
    rows = []
    for name in args.modes:
        scaling, context = MODES[name]
        seconds = run(args.out, scaling, context, args)
        kept = args.out / "tables" / f"{scaling}_context{context}"
        shutil.copytree(args.out / "out" / "tables", kept, dirs_exist_ok=True)
        rows.append({"mode": name, **summarise(kept), "wall (s)": round(seconds)})
        print(pd.DataFrame(rows).to_markdown(index=False, floatfmt=".3f"), flush=True)


if __name__ == "__main__":
    main()
