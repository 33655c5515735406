"""Does bf16 training hold the demo's quality? fp32 and bf16, two seeds each, scored the project's way.

    python benchmarks/precision_quality.py --demo results --work /tmp/bench-quality [--cores 2]

One demo condition (native space, MRI+PET input, l1_bce loss, the demo's training settings) is
trained four times, train.precision fp32 and bf16 x train.seed 0 and 1, each by the real pipeline:
for each run the finished demo's results (`--demo`, without its models) are copied into a folder of
their own and the project's Snakefile is asked there for that condition's held-out volume scores,
with `--config train={precision: ..., seed: ...}`. So Snakemake trains the model, synthesises every
held-out subject from its MRI and PET only, and scores it (workflow_scripts/evaluate/volume_metrics.py:
MAE_rel, PSNR_rel_dB, SSIM_rel against the real interictal SPECT, which only the scoring job reads).

Prints whether this CPU has native bf16 (model.device: AVX512-BF16 / AMX / Arm BF16; without it
bf16 still runs, emulated and slow, and the output says so), the precision each run really used
(from the model's train_config.json), a per-run table of the held-out means, and for each metric
whether the mean of the bf16 runs lies within the fp32 run-to-run spread (the range of the fp32
seeds' means). Writes `precision_quality.csv` (per subject and run) under --work.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from model.device import NATIVE_BF16_FLAGS, cpu_flags, cpu_has_native_bf16  # noqa: E402
from workflow_scripts.layout import SPACE_LABEL, Layout, condition_desc  # noqa: E402

SPACE, MODEL_INPUT, LOSS = "native", "mri_pet", "l1_bce"
METRICS = ("MAE_rel", "PSNR_rel_dB", "SSIM_rel")
PRECISIONS = ("fp32", "bf16")


def bf16_line() -> str:
    """Whether this CPU does bf16 natively, as model.device decides it for train.precision."""
    flags = cpu_flags()
    native = sorted(NATIVE_BF16_FLAGS & flags)
    if cpu_has_native_bf16(flags):
        return f"CPU bf16: native ({', '.join(native)})"
    return "CPU bf16: NOT native on this CPU: the bf16 runs are emulated (slow; same maths)"


def copy_demo(demo: Path, run_dir: Path, desc: str) -> None:
    """The demo's results without its models and without this condition's scores, so the
    pipeline retrains the condition and everything downstream of it, and nothing else."""
    shutil.copytree(
        demo,
        run_dir,
        ignore=shutil.ignore_patterns("models", "report.html"),
        symlinks=True,
    )
    for space in SPACE_LABEL.values():
        shutil.rmtree(run_dir / "metrics" / f"space-{space}" / f"desc-{desc}", ignore_errors=True)


def held_out_subjects(demo: Path, desc: str) -> list[str]:
    """The subjects the demo scored for this condition (its test and validation splits)."""
    folder = Layout(demo, demo).metrics("x", SPACE_LABEL[SPACE], desc, "volume").parent
    subjects = sorted(
        p.name.split("_")[0].removeprefix("sub-") for p in folder.glob("*_volume.tsv")
    )
    if not subjects:
        raise SystemExit(f"{folder}: no held-out volume scores; is {demo} a finished demo?")
    return subjects


def run_pipeline(run_dir: Path, precision: str, seed: int, subjects: list[str], cores: int) -> None:
    out = run_dir.resolve()
    lay = Layout(out, out / "demo_bids")
    desc = condition_desc(MODEL_INPUT, LOSS)
    targets = [str(lay.metrics(s, SPACE_LABEL[SPACE], desc, "volume")) for s in subjects]
    cmd = [
        str(Path(sys.executable).with_name("snakemake")),
        "--snakefile",
        str(REPO / "Snakefile"),
        "--directory",
        str(out.parent),
        "--cores",
        str(cores),
        # The copy has no Snakemake metadata, so provenance triggers would redo the whole
        # cohort; by modification time only the missing model and what follows it run.
        "--rerun-triggers",
        "mtime",
        "--config",
        f"out_dir={out}",
        f"bids_dir={out / 'demo_bids'}",
        f"train={{precision: {precision}, seed: {seed}}}",
        "--",
        *targets,
    ]
    log = out.parent / "snakemake.log"
    with log.open("w") as handle:
        done = subprocess.run(cmd, stdout=handle, stderr=subprocess.STDOUT, check=False)
    if done.returncode:
        raise SystemExit(f"{precision} seed {seed}: snakemake failed, see {log}")


def collect(run_dir: Path, precision: str, seed: int, subjects: list[str]) -> pd.DataFrame:
    out = run_dir.resolve()
    lay = Layout(out, out / "demo_bids")
    desc = condition_desc(MODEL_INPUT, LOSS)
    used = json.loads((lay.model_dir(SPACE_LABEL[SPACE], desc) / "train_config.json").read_text())
    if used["train"]["seed"] != seed:
        raise SystemExit(f"{run_dir}: model trained with seed {used['train']['seed']}, not {seed}")
    frames = [
        pd.read_csv(lay.metrics(s, SPACE_LABEL[SPACE], desc, "volume"), sep="\t") for s in subjects
    ]
    table = pd.concat(frames, ignore_index=True)
    table.insert(0, "precision", precision)
    table.insert(1, "seed", seed)
    table.insert(2, "precision_used", "+".join(used["run"]["precision"]))
    table.insert(3, "device", used["run"]["device"])
    return table


def verdict(per_run: pd.DataFrame) -> pd.DataFrame:
    """Per metric: the fp32 seeds' range, the bf16 runs' mean, and whether it lies in the range."""
    rows = []
    for metric in METRICS:
        fp32 = per_run.loc[per_run["precision"] == "fp32", metric]
        bf16 = per_run.loc[per_run["precision"] == "bf16", metric]
        low, high = fp32.min(), fp32.max()
        rows.append(
            {
                "metric": metric,
                "fp32_min": low,
                "fp32_max": high,
                "fp32_mean": fp32.mean(),
                "bf16_mean": bf16.mean(),
                "bf16_minus_fp32": bf16.mean() - fp32.mean(),
                "within_fp32_spread": bool(low <= bf16.mean() <= high),
            }
        )
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demo", type=Path, required=True, help="a finished demo's out_dir")
    parser.add_argument("--work", type=Path, required=True, help="scratch folder (new runs)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--cores", type=int, default=2)
    args = parser.parse_args()
    print(bf16_line(), flush=True)
    desc = condition_desc(MODEL_INPUT, LOSS)
    subjects = held_out_subjects(args.demo, desc)
    print(f"condition {SPACE}/{MODEL_INPUT}/{LOSS}; held-out subjects {', '.join(subjects)}")
    tables = []
    for precision in PRECISIONS:
        for seed in args.seeds:
            run_dir = args.work / f"{precision}-seed{seed}" / "results"
            if not (run_dir / "demo_bids").is_dir():
                copy_demo(args.demo, run_dir, desc)
            run_pipeline(run_dir, precision, seed, subjects, args.cores)
            tables.append(collect(run_dir, precision, seed, subjects))
            print(f"  {precision} seed {seed}: done", flush=True)
    per_subject = pd.concat(tables, ignore_index=True)
    per_subject.to_csv(args.work / "precision_quality.csv", index=False)
    keys = ["precision", "seed", "precision_used", "device"]
    per_run = per_subject.groupby(keys, sort=False)[list(METRICS)].mean().reset_index()
    print("\nHeld-out means (per run):")
    print(per_run.to_markdown(index=False, floatfmt=".4f"))
    print("\nbf16 against the fp32 run-to-run spread:")
    print(verdict(per_run).to_markdown(index=False, floatfmt=".4f"))


if __name__ == "__main__":
    main()
