"""Per-rule time and peak memory of a run, from the `benchmark:` file every job writes.

Snakemake writes one TSV per job (wall seconds `s`, peak resident memory `max_rss` in MB summed
over the job's processes, `cpu_time` in s) but does not record which rule wrote it, and several
rules share a benchmark folder (`skullstrip/` holds both skull strips). So each file is matched
against the rules' own benchmark patterns, wildcard constraints included: one rule per file.

Snakemake samples a job's processes every second for its first 30 s, then every 30 s: peak
memory and CPU time of longer jobs can miss their last half minute; a job shorter than one
sample has no memory figure ("NA" or "-", left empty here).

A job that started warm (forked from a local run's job server, workflow_scripts/warm_start.py)
has its launcher's memory and CPU in its benchmark, not its own: those are left empty too, and
counted per rule (`warm_jobs`). Whether a job started warm is read from the last start line of
its log, which every rule keeps at the benchmark's name under logs/ (rules/*.smk: L.log and
L.benchmark of the same stage and name).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

import pandas as pd

from workflow_scripts.joblog import START, WARM

log = logging.getLogger(__name__)

RULE_TABLE_COLUMNS = [
    "rule",
    "jobs",
    "total_s",
    "median_s",
    "max_s",
    "max_rss_mb",
    "cpu_s",
    "warm_jobs",
]


def benchmark_patterns(rules: Iterable) -> dict[str, str]:
    """Rule name -> regular expression of its benchmark files (Snakemake `Rule` objects; the
    pattern carries the rule's wildcard constraints)."""
    return {r.name: r.benchmark.regex().pattern for r in rules if r.benchmark}


def rules_without_benchmark(rules: Iterable) -> list[str]:
    """Rules that run a job but declare no benchmark. Rules with nothing to run (`norun`, such
    as `all`) start no process, so there is nothing to measure."""
    return sorted(r.name for r in rules if not r.norun and not r.benchmark)


def rule_of(path: str | Path, patterns: Mapping[str, str]) -> str:
    """The one rule whose benchmark pattern matches this file."""
    text = str(path)
    hits = [rule for rule, pattern in patterns.items() if re.fullmatch(pattern, text)]
    if len(hits) != 1:
        why = "no rule's" if not hits else f"{len(hits)} rules' ({', '.join(hits)})"
        raise ValueError(f"{text}: {why} benchmark pattern matches this file")
    return hits[0]


def read_benchmark(path: Path) -> dict[str, float]:
    """Wall s, peak RSS MB and CPU s of one job (the last row: `repeat` appends rows)."""
    try:
        row = pd.read_csv(path, sep="\t").iloc[-1]
    except (pd.errors.ParserError, pd.errors.EmptyDataError, IndexError, OSError) as err:
        raise ValueError(f"{path}: not a Snakemake benchmark file ({err})") from err
    missing = {"s", "max_rss", "cpu_time"} - set(row.index)
    if missing:
        raise ValueError(
            f"{path}: not a Snakemake benchmark file (no {', '.join(sorted(missing))})"
        )
    # too short to sample: Snakemake writes "NA" (older versions "-")
    number = lambda key: pd.to_numeric(row[key], errors="coerce")  # noqa: E731
    return {"s": float(row["s"]), "max_rss_mb": number("max_rss"), "cpu_s": number("cpu_time")}


def started_warm(log_file: Path) -> bool:
    """Whether the last run of a job, as its log records it, started warm."""
    try:
        text = log_file.read_text(errors="replace")
    except OSError:
        return False
    starts = [line for line in text.splitlines() if START in line]
    return bool(starts) and WARM in starts[-1]


def job_records(
    bench_dir: Path,
    patterns: Mapping[str, str],
    skip: Iterable[str | Path] = (),
    logs_dir: Path | None = None,
) -> pd.DataFrame:
    """One row per benchmark file under bench_dir: rule, file, s, max_rss_mb, cpu_s, warm. A
    file no rule writes (left by an earlier run whose rules or out_dir differed) is skipped,
    named in the log; one that several rules could write is an error in the workflow. With
    `logs_dir`, a job whose log (same stage and name) says it started warm gets no memory or
    CPU figure."""
    skipped = {str(p) for p in skip}
    rows = []
    for f in sorted(Path(bench_dir).rglob("*.tsv")):
        if str(f) in skipped:
            continue
        try:
            rule = rule_of(f, patterns)
        except ValueError as err:
            if any(re.fullmatch(pattern, str(f)) for pattern in patterns.values()):
                raise
            log.warning("skipped (not written by a rule of this workflow): %s", err)
            continue
        record = {"rule": rule, "file": str(f), **read_benchmark(f), "warm": False}
        if logs_dir is not None:
            log_file = Path(logs_dir) / f.relative_to(bench_dir).with_suffix(".log")
            if started_warm(log_file):
                record.update(max_rss_mb=float("nan"), cpu_s=float("nan"), warm=True)
        rows.append(record)
    if not rows:
        raise ValueError(f"{bench_dir}: no benchmark files of this workflow's rules")
    return pd.DataFrame(rows)


def rule_table(records: pd.DataFrame) -> pd.DataFrame:
    """Per rule: jobs, total / median / max wall s, peak RSS MB (max over jobs), CPU s (sum),
    jobs that started warm (not in the memory and CPU figures), heaviest rule first."""
    table = (
        records.groupby("rule")
        .agg(
            jobs=("s", "size"),
            total_s=("s", "sum"),
            median_s=("s", "median"),
            max_s=("s", "max"),
            max_rss_mb=("max_rss_mb", "max"),
            cpu_s=("cpu_s", lambda cpu: cpu.sum(min_count=1)),
            warm_jobs=("warm", "sum"),
        )
        .reset_index()
        .sort_values(["total_s", "rule"], ascending=[False, True], kind="stable")
    )
    return table[RULE_TABLE_COLUMNS].reset_index(drop=True)


def parsed_workflow(snakefile: Path, config: dict, workdir: Path) -> tuple[list, set[str]]:
    """A workflow as Snakemake parses it, without running anything: its `Rule` objects and the
    names of its local rules (those run where snakemake runs, never submitted)."""
    from snakemake.api import SnakemakeApi
    from snakemake.settings.types import ConfigSettings, ResourceSettings

    with SnakemakeApi() as api:
        workflow = api.workflow(
            resource_settings=ResourceSettings(),
            config_settings=ConfigSettings(config=config),
            snakefile=Path(snakefile),
            workdir=Path(workdir),
        )._workflow  # the parsed Workflow; the API has no public accessor for its rules
        rules = list(workflow.rules)
        # as Workflow.is_local decides for a cluster run (a grouped rule is submitted anyway)
        return rules, {r.name for r in rules if r.group is None and r.name in workflow._localrules}
