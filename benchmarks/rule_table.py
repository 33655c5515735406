"""Per-rule time and peak memory of a finished run, and the cluster resources they imply.

    python benchmarks/rule_table.py results              # markdown table on stdout
    python benchmarks/rule_table.py results --profile    # the slurm profile's set-resources block
    python benchmarks/rule_table.py results --profile --write profiles/slurm/config.yaml \\
        --source "the demo, commit 66a4937, 2-core AMD EPYC"

Every job writes `benchmarks/<stage>/<job>.tsv` under out_dir (wall seconds, peak resident
memory in MB, CPU seconds); each file is attributed to its rule by the rules' own benchmark
patterns (the workflow is parsed, not run) and summed per rule (workflow_scripts/run_benchmarks/table.py).
A run also writes this table itself, as `tables/job_benchmarks.csv` in its report.
--profile turns it into per-rule `mem_mb` / `runtime` with headroom
(workflow_scripts/run_benchmarks/resources.py); --write replaces the generated block of a profile,
keeping the rest of the file.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from workflow_scripts.layout import Layout  # noqa: E402
from workflow_scripts.run_benchmarks.resources import (  # noqa: E402
    cluster_resources,
    replace_block,
    set_resources_block,
)
from workflow_scripts.run_benchmarks.table import (  # noqa: E402
    benchmark_patterns,
    job_records,
    parsed_workflow,
    rule_table,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path, help="a finished run's out_dir")
    parser.add_argument("--profile", action="store_true", help="print the set-resources block")
    parser.add_argument("--write", type=Path, help="replace that block in this profile file")
    parser.add_argument("--source", help="where the numbers come from (written in the block)")
    args = parser.parse_args()
    out = args.out_dir.resolve()
    # The default config's rules with this out_dir: benchmark paths depend on nothing else.
    with tempfile.TemporaryDirectory(prefix="rule_table-") as workdir:
        rules, local = parsed_workflow(REPO / "Snakefile", {"out_dir": str(out)}, Path(workdir))
    layout = Layout(out, out)
    records = job_records(layout.benchmarks, benchmark_patterns(rules), logs_dir=layout.logs)
    table = rule_table(records)
    if not args.profile:
        print(table.to_markdown(index=False, floatfmt=".1f"))
        total = table["total_s"].sum()
        print(f"\n{int(table['jobs'].sum())} jobs, {total:.0f} job-seconds")
        return
    source = args.source or f"{out} ({int(table['jobs'].sum())} jobs)"
    block = set_resources_block(cluster_resources(table, local), source, local)
    if args.write:
        args.write.write_text(replace_block(args.write.read_text(), block))
        print(f"wrote the set-resources block of {args.write}")
    else:
        print(block, end="")


if __name__ == "__main__":
    main()
