"""Per-stage time and peak memory of a finished run, from Snakemake's `benchmark:` files.

    python benchmarks/rule_table.py results            # markdown table on stdout

Every rule writes `benchmarks/<stage>/<job>.tsv` under out_dir (wall seconds `s`, peak
resident memory `max_rss` in MB, CPU time); this sums them per stage. The cluster profile's
`mem_mb` / `runtime` defaults come from this table, with headroom.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd


def stage_table(out_dir: Path) -> pd.DataFrame:
    rows = []
    for f in sorted((out_dir / "benchmarks").rglob("*.tsv")):
        stage = f.relative_to(out_dir / "benchmarks").parts[0]
        b = pd.read_csv(f, sep="\t")
        rows.append({"stage": stage, "s": float(b["s"].iloc[-1]), "rss": b["max_rss"].iloc[-1]})
    table = pd.DataFrame(rows)
    table["rss"] = pd.to_numeric(table["rss"], errors="coerce")  # "-" when too short to sample
    return (
        table.groupby("stage")
        .agg(
            jobs=("s", "size"),
            total_s=("s", "sum"),
            median_s=("s", "median"),
            max_s=("s", "max"),
            peak_rss_mb=("rss", "max"),
        )
        .sort_values("total_s", ascending=False)
        .reset_index()
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    table = stage_table(parser.parse_args().out_dir)
    print(table.to_markdown(index=False, floatfmt=".1f"))
    print(f"\n{int(table['jobs'].sum())} jobs, {table['total_s'].sum():.0f} job-seconds")


if __name__ == "__main__":
    main()
