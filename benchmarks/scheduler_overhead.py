"""CPU that Snakemake's own process spends scheduling, with and without
workflow_scripts.scheduler_timers (one pending re-evaluation timer instead of one per job).

A toy workflow of `--jobs` pairs of `sleep` jobs (no CPU of their own) on `--cores` cores, so the
CPU measured is Snakemake's. Runs alternate between the two Snakefiles.

    python benchmarks/scheduler_overhead.py --jobs 120 --repeats 2
"""

from __future__ import annotations

import argparse
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

TOY = """
rule all:
    input:
        expand("out/b{{i}}.txt", i=range({n})),

rule a:
    output:
        "out/a{{i}}.txt",
    shell:
        "sleep {sleep}; touch {{output}}"

rule b:
    input:
        "out/a{{i}}.txt",
    output:
        "out/b{{i}}.txt",
    shell:
        "sleep {sleep}; touch {{output}}"
"""

PATCH = f"""
import sys
sys.path.insert(0, {str(ROOT)!r})
from workflow_scripts import scheduler_timers
scheduler_timers.install()
"""


def run_once(workdir: Path, snakefile: str, cores: int) -> tuple[float, float]:
    shutil.rmtree(workdir / "out", ignore_errors=True)
    shutil.rmtree(workdir / ".snakemake", ignore_errors=True)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", snakefile, "--cores", str(cores), "--quiet"],
        cwd=workdir,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=120, help="pairs of jobs (default 120)")
    ap.add_argument("--sleep", type=float, default=0.3, help="seconds per job (default 0.3)")
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "Snakefile").write_text(TOY.format(n=args.jobs, sleep=args.sleep))
        (work / "Snakefile.patched").write_text(PATCH + TOY.format(n=args.jobs, sleep=args.sleep))
        results: dict[str, list[tuple[float, float]]] = {"upstream": [], "patched": []}
        for _ in range(args.repeats):
            results["upstream"].append(run_once(work, "Snakefile", args.cores))
            results["patched"].append(run_once(work, "Snakefile.patched", args.cores))
    print(f"{2 * args.jobs} jobs of sleep {args.sleep} s on {args.cores} cores")
    for name, runs in results.items():
        walls = ", ".join(f"{w:.1f}" for w, _ in runs)
        cpus = ", ".join(f"{c:.1f}" for _, c in runs)
        print(f"{name:9s} wall s: {walls}   Snakemake CPU s: {cpus}")
    up = sorted(c for _, c in results["upstream"])
    pa = sorted(c for _, c in results["patched"])
    print(f"CPU ratio upstream/patched (medians): {up[len(up) // 2] / pa[len(pa) // 2]:.2f}")


if __name__ == "__main__":
    main()
