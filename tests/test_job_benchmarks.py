"""Per-rule benchmark table (workflow_scripts/run_benchmarks/table.py) and the cluster resources derived
from it (workflow_scripts/run_benchmarks/resources.py, profiles/slurm/config.yaml)."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest
import yaml

from workflow_scripts.joblog import START, WARM
from workflow_scripts.layout import Layout, image_prefix
from workflow_scripts.run_benchmarks.resources import (
    BEGIN,
    END,
    cluster_resources,
    mem_mb,
    replace_block,
    runtime_min,
    set_resources_block,
)
from workflow_scripts.run_benchmarks.table import (
    benchmark_patterns,
    job_records,
    parsed_workflow,
    read_benchmark,
    rule_of,
    rule_table,
    rules_without_benchmark,
)

ROOT = Path(__file__).resolve().parents[1]
HEADER = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"


@pytest.fixture(scope="module")
def workflow(tmp_path_factory):
    """The project's workflow as Snakemake parses it (default config, out_dir in tmp)."""
    work = tmp_path_factory.mktemp("parse")
    out = work / "out"
    rules, local = parsed_workflow(ROOT / "Snakefile", {"out_dir": str(out)}, work)
    return out, rules, local


def test_every_rule_that_runs_a_job_has_a_benchmark(workflow):
    _, rules, local = workflow
    names = {r.name for r in rules}
    assert {"train", "predict", "tables", "job_benchmarks", "input_gate"} <= names
    assert {"tables", "input_gate", "job_benchmarks"} <= local  # localrules are checked too
    assert rules_without_benchmark(rules) == []


def test_a_rule_without_benchmark_is_reported(tmp_path):
    """The check itself, on a real (tiny) Snakefile: `all` has no job, `b` lacks a benchmark."""
    snakefile = tmp_path / "Snakefile"
    snakefile.write_text(
        "rule all:\n    input: 'a.txt', 'b.txt'\n\n"
        "rule a:\n    output: 'a.txt'\n    benchmark: 'bench/a.tsv'\n    shell: 'touch {output}'\n\n"
        "rule b:\n    output: 'b.txt'\n    shell: 'touch {output}'\n"
    )
    rules, _ = parsed_workflow(snakefile, {}, tmp_path)
    assert rules_without_benchmark(rules) == ["b"]


def test_benchmark_files_map_to_the_rule_that_wrote_them(workflow):
    """Rules sharing a benchmark folder are told apart by their wildcard constraints."""
    out, rules, _ = workflow
    patterns = benchmark_patterns(rules)
    lay = Layout(out, out)
    t1w, pet = image_prefix("01", "t1w"), image_prefix("01", "pet", "pre")
    expected = {
        lay.benchmark("skullstrip", t1w): "skullstrip_t1w",
        lay.benchmark("skullstrip", pet): "skullstrip_pet",
        lay.benchmark("space", f"{pet}_space-T1w"): "space_pet",
        lay.benchmark("regions", "atlas_sub-09"): "atlas_to_subject",
        lay.benchmark("regions", "sub-09"): "regional",
        lay.benchmark("siscom", "sub-09_warp"): "siscom_warp",
        lay.benchmark("siscom", "sub-09"): "siscom",
        lay.benchmark("train", "space-T1w_desc-synthMriPetL1Bce2d"): "train",
    }
    for path, rule in expected.items():
        assert rule_of(path, patterns) == rule, path
    with pytest.raises(ValueError, match="notarule/x.tsv: no rule"):
        rule_of(lay.benchmark("notarule", "x"), patterns)


def write_bench(path: Path, s: float, rss: str, cpu: float) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(HEADER + f"{s}\t0:00:01\t{rss}\t1\t1\t1\t0\t0\t50\t{cpu}\n")
    return path


def test_rule_table_on_hand_made_benchmarks(tmp_path, caplog):
    bench = tmp_path / "benchmarks"
    patterns = {"slow": rf"{bench}/slow/\w+\.tsv", "fast": rf"{bench}/fast/\w+\.tsv"}
    write_bench(bench / "slow" / "a.tsv", 10.0, "100.0", 8.0)
    write_bench(bench / "slow" / "b.tsv", 30.0, "250.5", 20.0)
    write_bench(bench / "slow" / "c.tsv", 26.0, "NA", 15.0)  # too short to sample memory
    write_bench(bench / "fast" / "a.tsv", 1.0, "-", 0.5)
    own = write_bench(bench / "fast" / "self.tsv", 99.0, "9", 9.0)
    write_bench(bench / "gone" / "old.tsv", 50.0, "9", 9.0)  # a rule since removed
    with caplog.at_level("WARNING"):
        table = rule_table(job_records(bench, patterns, skip=[own])).set_index("rule")
    assert "gone/old.tsv: no rule's benchmark pattern" in caplog.text
    assert list(table.index) == ["slow", "fast"]  # most wall time first
    slow, fast = table.loc["slow"], table.loc["fast"]
    assert (slow["jobs"], slow["total_s"], slow["median_s"], slow["max_s"]) == (3, 66, 26, 30)
    assert slow["max_rss_mb"] == 250.5 and slow["cpu_s"] == 43.0
    assert fast["jobs"] == 1 and math.isnan(fast["max_rss_mb"]) and fast["cpu_s"] == 0.5


def test_warm_jobs_have_no_memory_or_cpu_figure(tmp_path):
    """A job forked from the job server has its launcher's memory and CPU in its benchmark: the
    last start line of its log decides (a job rerun cold after a warm run is measured)."""
    bench, logs = tmp_path / "benchmarks", tmp_path / "logs"
    patterns = {"predict": rf"{bench}/predict/\w+\.tsv"}
    for name in ("warm", "cold", "rerun_cold", "no_log"):
        write_bench(bench / "predict" / f"{name}.tsv", 3.0, "30.0", 0.1)
    logs.joinpath("predict").mkdir(parents=True)
    warm_line = f"x INFO spectsynth: {START} 12, {WARM} 7\n"
    logs.joinpath("predict", "warm.log").write_text("old\n" + warm_line + "done\n")
    logs.joinpath("predict", "cold.log").write_text(f"x INFO spectsynth: {START} 13\n")
    logs.joinpath("predict", "rerun_cold.log").write_text(warm_line + f"{START} 14\n")
    records = job_records(bench, patterns, logs_dir=logs).set_index("file")
    warm = records.loc[str(bench / "predict" / "warm.tsv")]
    assert warm["warm"] and math.isnan(warm["max_rss_mb"]) and math.isnan(warm["cpu_s"])
    for name in ("cold", "rerun_cold", "no_log"):
        row = records.loc[str(bench / "predict" / f"{name}.tsv")]
        assert not row["warm"] and row["max_rss_mb"] == 30.0, name
    table = rule_table(records.reset_index()).set_index("rule")
    assert table.loc["predict", "warm_jobs"] == 1 and table.loc["predict", "jobs"] == 4
    assert table.loc["predict", "max_rss_mb"] == 30.0
    with pytest.raises(ValueError, match="memory not measured for predict.*warm_start=false"):
        cluster_resources(table.reset_index())


def test_every_rule_logs_beside_its_benchmark(workflow):
    """The table finds a job's log from its benchmark: same stage and name, logs/ for
    benchmarks/, .log for .tsv."""
    out, rules, _ = workflow
    lay = Layout(out, out)
    for rule in rules:
        if rule.benchmark is None:
            continue
        bench = Path(str(rule.benchmark)).relative_to(lay.benchmarks)
        assert [str(f) for f in rule.log] == [str(lay.logs / bench.with_suffix(".log"))], rule.name


def test_a_file_that_is_not_a_benchmark_is_named(tmp_path):
    bad = tmp_path / "x.tsv"
    bad.write_text("a\tb\n1\t2\n")
    with pytest.raises(ValueError, match=r"x\.tsv: not a Snakemake benchmark file \(no cpu_time"):
        read_benchmark(bad)


def test_headroom_maths_on_a_hand_made_table():
    table = pd.DataFrame(
        {
            "rule": ["strip", "sim", "tiny", "edge", "unsampled", "train", "tables"],
            "max_rss_mb": [955.0, 1598.8, 100.0, 1000.0, float("nan"), 600.0, 200.0],
            "max_s": [31.1, 200.0, 0.2, 150.0, 151.0, 56.0, 2.0],
            "warm_jobs": [0, 0, 0, 0, 0, 0, 0],  # every job measured cold
        }
    )
    res = cluster_resources(table, local_rules=["tables"])
    # 955 x 1.5 = 1432.5 -> 1500; 1598.8 x 1.5 = 2398.2 -> 2500; 150 -> floor 1000;
    # 1000 x 1.5 = 1500 exactly stays 1500. Time: 200 s x 2 = 6.7 min -> 7; 150 s x 2 = 5 min
    # -> 5; 151 s x 2 = 5.03 min -> 6; short jobs -> the 5 min floor.
    assert res == {
        "strip": {"mem_mb": 1500, "runtime": 5},
        "sim": {"mem_mb": 2500, "runtime": 7},
        "tiny": {"mem_mb": 1000, "runtime": 5},
        "edge": {"mem_mb": 1500, "runtime": 5},
        "unsampled": {"mem_mb": 1000, "runtime": 6},
    }  # train is sized by config, tables is local: neither is listed
    assert mem_mb(1000.1) == 2000 and runtime_min(0) == 5


def test_profile_block_is_replaced_and_the_rest_kept():
    text = f"executor: slurm\n# keep me\ngroup-components:\n  - preprocess=1\n{BEGIN}\nold\n{END}\n"
    block = set_resources_block({"b": {"mem_mb": 1500, "runtime": 7}}, "a test", ["tables"])
    new = yaml.safe_load(replace_block(text, block))
    assert new["set-resources"] == {"b": {"mem_mb": 1500, "runtime": 7}}
    assert new["group-components"] == ["preprocess=1"] and "# keep me" in replace_block(text, block)
    with pytest.raises(ValueError, match="exactly one"):
        replace_block("executor: slurm\n", block)


def test_slurm_profile_sets_resources_of_existing_submitted_rules_only(workflow):
    _, rules, local = workflow
    profile = yaml.safe_load((ROOT / "profiles" / "slurm" / "config.yaml").read_text())
    named = set(profile["set-resources"])
    assert named, "the generated set-resources block is empty"
    assert named <= {r.name for r in rules}, named - {r.name for r in rules}
    assert not named & (local | {"train"})
    for rule, res in profile["set-resources"].items():
        assert res["mem_mb"] >= 1000 and res["mem_mb"] % 500 == 0 and res["runtime"] >= 5, rule


def test_a_file_two_rules_could_write_is_an_error(tmp_path):
    bench = tmp_path / "benchmarks"
    write_bench(bench / "x" / "a.tsv", 1.0, "10", 1.0)
    patterns = {"one": rf"{bench}/x/\w+\.tsv", "two": rf"{bench}/x/a\.tsv"}
    with pytest.raises(ValueError, match=r"x/a\.tsv: 2 rules' \(one, two\)"):
        job_records(bench, patterns)
