#!/usr/bin/env python3
"""Check the per-rule conda environments (envs/*.yaml) for real, without conda.

conda channels are not always reachable (CI, air-gapped machines), so for each env this builds a
virtual environment from PyPI with the env's own pins, translated by CONDA_TO_PYPI below, and then

1. imports, in that venv alone, every module the env's rules run: each rule's entry module
   (`params: entry=`) and every import in the workflow code it reaches whose package the env
   declares (including imports inside functions, such as `nipype.interfaces.fsl`);
2. runs one job of each rule that uses the env, with the venv's python, the way `--use-conda`
   does: the job scripts Snakemake wrote (with their preamble) for a tiny real run of the
   workflow are kept (`--skip-script-cleanup`), each rule's first job is run again with the
   venv's python, and it must succeed and write its outputs again.

Snakemake's script preamble appends the *host's* sys.path (Snakemake's own site-packages) to the
job's sys.path, so a package missing from an env would silently be taken from the host. Every job
therefore runs under a guard (see `guard`): imports made by workflow code or the env's packages
are looked for only in the env, the standard library and this repository, so a missing
dependency fails the job while optional imports fall back as they would in a real env.

The rules, their envs and entry functions are read from the workflow itself (Snakemake's parser)
at run time, so new or renamed rules are checked without editing this file. FSL's binaries
(fsl-* packages) have no PyPI build: they are not installed, so the skull-strip job takes the
pure-Python BET path; nipype, its FSL interfaces and brainextractor are still imported and run.

Usage (from the repository root, with the project's venv):
    .venv/bin/python scripts/check_envs.py                  # all envs
    .venv/bin/python scripts/check_envs.py --envs stats     # some
    .venv/bin/python scripts/check_envs.py --write-doc docs/conda-envs.md   # record the result
(`make check-envs` runs the last one.) Exit status 0 only when every env builds, imports and runs.
"""

from __future__ import annotations

import argparse
import ast
import builtins
import datetime
import importlib
import importlib.abc
import importlib.machinery
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

# Only the standard library at module level: this file also runs as the job guard (--guard)
# inside the env venvs, which have neither yaml nor snakemake of their own.

ROOT = Path(__file__).resolve().parents[1]

# conda package name -> PyPI distribution name, where they differ. None: nothing to install
# from PyPI (python is the venv's interpreter; FSL's binaries have no PyPI build).
CONDA_TO_PYPI = {
    "python": None,
    "pytorch": "torch",
    "fsl-bet2": None,
    "fsl-avwutils": None,
}
NO_PYPI_PREFIXES = ("fsl-",)  # any other FSL conda package: binaries, skipped likewise
# PyPI distribution -> import name, where they differ (for the import check of declared packages)
IMPORT_NAME = {
    "scikit-image": "skimage",
    "pyyaml": "yaml",
    "antspyx": "ants",
    "scikit-learn": "sklearn",
    "pillow": "PIL",
    "pip": None,
}
PROJECT_PACKAGES = ("workflow_scripts", "model")

# The tiny demo study (as tests/test_workflow_e2e.py): every rule runs, on a coarse grid.
TINY_CONFIG = [
    "simulate={enabled: true, seed: 7, n_train: 2, n_test: 1, n_validation: 1, ictal: true, voxel_scale: 3}",
    "preprocess={grid: {shape: [32, 32, 24], voxel_mm: 6.0}}",
    "slices={n_slices: 8, size: 32}",
    "train={spaces: [native, template], inputs: [mri, pet], losses: [l1_bce], epochs: 1, batch_size: 4, ngf: 8, ndf: 8}",
    "evaluate={montage_subjects: 1}",
]
PREAMBLE_END = "######## snakemake preamble end #########"


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


# --- what each env declares, as PyPI requirements -------------------------------------------


def read_lock() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        name, sep, version = line.strip().partition("==")
        if sep and not line.startswith("#"):
            pins[normalise(name)] = version.strip()
    return pins


def pypi_requirements(env_file: Path, lock: dict[str, str]) -> dict:
    """The env's packages as PyPI requirements. A conda pin `numpy=2.4` means any 2.4.x; the
    requirement is requirements.lock's exact version when it lies in that series (the version
    the tests use), else `==2.4.*`. pip entries are taken as written."""
    import yaml

    spec = yaml.safe_load(env_file.read_text())
    python, requirements, skipped, direct = None, [], [], {}
    for dep in spec["dependencies"]:
        if isinstance(dep, dict):
            for item in dep.get("pip", []):
                requirements.append(item)
                name = re.split(r"[=<>!~ \[;@]", item, maxsplit=1)[0]
                direct[normalise(name)] = item
            continue
        name, _, version = dep.partition("=")
        version = version.lstrip("=")
        if name == "python":
            python = version
            continue
        pypi = CONDA_TO_PYPI.get(name, name)
        if pypi is None or name.startswith(NO_PYPI_PREFIXES):
            skipped.append(dep)
            continue
        locked = lock.get(normalise(pypi), "")
        if version and re.fullmatch(re.escape(version) + r"(\.[^+]*)?(\+.*)?", locked):
            requirement = f"{pypi}=={locked.split('+')[0]}"
        else:
            requirement = f"{pypi}=={version}.*" if version else pypi
        requirements.append(requirement)
        direct[normalise(pypi)] = requirement
    # everything else the env pulls in: as in requirements.lock, unless the env pins it itself
    constraints = [f"{n}=={v}" for n, v in sorted(lock.items()) if n not in direct]
    return {
        "python": python,
        "requirements": requirements,
        "constraints": constraints,
        "skipped": skipped,
        "direct": sorted(direct),
    }


# --- the rules, from the workflow itself -----------------------------------------------------


def workflow_rules(config: list[str], workdir: Path) -> list[dict]:
    """Every rule with a conda env: name, env file and `entry` (module:function), as Snakemake
    parses rules/*.smk."""
    from snakemake.api import SnakemakeApi
    from snakemake.cli import parse_config
    from snakemake.settings.types import (
        ConfigSettings,
        DeploymentMethod,
        DeploymentSettings,
        OutputSettings,
        ResourceSettings,
    )

    cwd = Path.cwd()
    try:
        with SnakemakeApi(OutputSettings(quiet={"all"})) as api:
            workflow_api = api.workflow(
                resource_settings=ResourceSettings(cores=1),
                config_settings=ConfigSettings(config=parse_config(config)),
                deployment_settings=DeploymentSettings(deployment_method={DeploymentMethod.CONDA}),
                snakefile=ROOT / "Snakefile",
                workdir=workdir,
            )
            rules = []
            for rule in workflow_api._workflow.rules:
                if not rule.conda_env:
                    continue
                env = Path(rule.conda_env)
                if not env.is_absolute():
                    env = Path(rule.snakefile).parent / env
                entry = getattr(rule.params, "entry", None) if rule.params else None
                rules.append({"rule": rule.name, "env": env.resolve(), "entry": entry})
            return rules
    finally:
        os.chdir(cwd)


def module_file(module: str) -> Path | None:
    path = ROOT / Path(*module.split("."))
    for candidate in (path / "__init__.py", path.with_suffix(".py")):
        if candidate.exists():
            return candidate
    return None


def reachable_imports(module: str, seen: set[str] | None = None) -> set[str]:
    """Dotted names of every third-party import (at any depth, including inside functions) in
    a workflow module and the workflow modules it imports."""
    seen = set() if seen is None else seen
    path = module_file(module)
    if module in seen or path is None:
        return set()
    seen.add(module)
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        else:
            continue
        for name in names:
            top = name.partition(".")[0]
            if top in PROJECT_PACKAGES:
                found |= reachable_imports(name, seen) if module_file(name) else set()
            elif top not in sys.stdlib_module_names and top != "__future__":
                found.add(name)
    return found


# --- building the venvs -----------------------------------------------------------------------


def run(cmd: list[str], log: Path, **kwargs) -> subprocess.CompletedProcess:
    with log.open("a") as f:
        f.write(f"$ {' '.join(map(str, cmd))}\n")
        f.flush()
        return subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, text=True, **kwargs)


def interpreter(version: str) -> str:
    if version == f"{sys.version_info.major}.{sys.version_info.minor}":
        return sys.executable
    found = shutil.which(f"python{version}")
    if not found:
        raise SystemExit(f"python{version} (the envs' python pin) is not on PATH")
    return found


def build_venv(name: str, reqs: dict, work: Path) -> dict:
    venv, log = work / "venvs" / name, work / "logs" / f"build-{name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("")
    shutil.rmtree(venv, ignore_errors=True)
    (work / "venvs").mkdir(parents=True, exist_ok=True)
    constraints = work / "venvs" / f"{name}-constraints.txt"
    constraints.write_text("\n".join(reqs["constraints"]) + "\n")
    requirements = work / "venvs" / f"{name}-requirements.txt"
    requirements.write_text("\n".join(reqs["requirements"]) + "\n")
    start = time.monotonic()
    python = venv / "bin" / "python"
    steps = [[interpreter(reqs["python"] or "3.11"), "-m", "venv", str(venv)]]
    pip = [str(python), "-m", "pip", "install", "--quiet", "--no-input"]
    pip_pin = [r for r in reqs["requirements"] if normalise(re.split("[=<>]", r)[0]) == "pip"]
    if pip_pin:  # the env's own pip first, then everything else with it
        steps.append([*pip, *pip_pin])
    steps.append([*pip, "-c", str(constraints), "-r", str(requirements)])
    for step in steps:
        done = run(step, log)
        if done.returncode != 0:
            return {"ok": False, "seconds": time.monotonic() - start, "python": str(python)}
    return {"ok": True, "seconds": time.monotonic() - start, "python": str(python)}


IMPORT_PROBE = r"""
import importlib, importlib.metadata as md, importlib.util, json, sys
from pathlib import Path
root, names, dists, entries = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3]), json.loads(sys.argv[4])
out = {"installed_project": [p for p in ("workflow_scripts", "model") if importlib.util.find_spec(p)]}
sys.path.insert(0, root)  # what workflow_scripts/entry.py does in every job
failed = []
for name in names:
    try:
        importlib.import_module(name)
    except ModuleNotFoundError as e:  # `from pkg import attr`: attr is not a module
        parent, _, attr = name.rpartition(".")
        if not (e.name == name and parent and hasattr(importlib.import_module(parent), attr)):
            failed.append(f"{name}: {e!r}")
    except Exception as e:
        failed.append(f"{name}: {e!r}")
for entry in entries:
    module, _, func = entry.partition(":")
    try:
        getattr(importlib.import_module(module), func)
    except Exception as e:
        failed.append(f"{entry}: {e!r}")
prefix, outside = Path(sys.prefix).resolve(), []
for mod in list(sys.modules.values()):
    f = getattr(mod, "__file__", None)
    if f and "site-packages" in Path(f).parts and not Path(f).resolve().is_relative_to(prefix):
        outside.append(f)
versions = {}
for d in dists:
    try:
        versions[d] = md.version(d)
    except md.PackageNotFoundError:
        versions[d] = None
out.update(failed=failed, outside=outside, versions=versions, modules=len(names) + len(entries))
print(json.dumps(out))
"""


def import_check(python: str, env_rules: list[dict], reqs: dict) -> dict:
    """In the venv alone (python -I: no PYTHONPATH, no user site, no host paths)."""
    declared = {IMPORT_NAME.get(d, d.replace("-", "_")) for d in reqs["direct"]} - {None}
    names = set(declared)
    for r in env_rules:
        if r["entry"]:
            module = r["entry"].split(":")[0]
            names.add(module)
            names |= {n for n in reachable_imports(module) if n.partition(".")[0] in declared}
    entries = sorted({r["entry"] for r in env_rules if r["entry"]})
    cmd = [python, "-I", "-c", IMPORT_PROBE, str(ROOT), json.dumps(sorted(names))]
    cmd += [json.dumps(reqs["direct"]), json.dumps(entries)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        return {"ok": False, "failed": [done.stderr[-2000:]], "modules": len(names)}
    result = json.loads(done.stdout.strip().splitlines()[-1])
    problems = result["failed"] + [f"outside the env: {f}" for f in result["outside"]]
    problems += [f"project installed in the env: {p}" for p in result["installed_project"]]
    return {
        "ok": not problems,
        "failed": problems,
        "modules": result["modules"],
        "versions": result["versions"],
    }


# --- the tiny run and its job scripts ---------------------------------------------------------


def start_tiny_run(work: Path) -> tuple[subprocess.Popen, Path]:
    run_dir, log = work / "run", work / "logs" / "tiny-run.log"
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    log.parent.mkdir(parents=True, exist_ok=True)
    cmd = [str(Path(sys.executable).with_name("snakemake")), "-s", str(ROOT / "Snakefile")]
    cmd += ["--directory", str(run_dir), "--cores", str(min(os.cpu_count() or 1, 4))]
    cmd += ["--skip-script-cleanup", "--notemp", "--config"]
    cmd += [f"bids_dir={run_dir / 'bids'}", f"out_dir={run_dir / 'out'}", *TINY_CONFIG]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(cmd, stdout=log.open("w"), stderr=subprocess.STDOUT, env=env), log


def job_scripts(run_dir: Path) -> dict[str, dict]:
    """The first job script Snakemake wrote for each rule: {rule: {script, output, log}}."""
    import pickle

    jobs = {}
    scripts = sorted((run_dir / ".snakemake" / "scripts").glob("tmp*.py"), key=os.path.getmtime)
    for script in scripts:
        preamble = script.read_text().split(PREAMBLE_END)[0]
        smk = None
        for node in ast.walk(ast.parse(preamble)):
            if (
                isinstance(node, ast.Call)
                and getattr(node.func, "attr", "") == "loads"
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                smk = pickle.loads(node.args[0].value)
        if smk is not None and smk.rule not in jobs:
            jobs[smk.rule] = {
                "script": script,
                "output": [str(o) for o in smk.output],
                "log": [str(lg) for lg in smk.log],
            }
    return jobs


def rerun_job(python: str, job: dict, run_dir: Path, work: Path, rule: str, env: str) -> dict:
    """Run one captured job script again with the env's python; its outputs are moved aside
    first (and put back if it fails, so other rules' jobs still find their inputs)."""
    aside = work / "aside" / env / rule
    shutil.rmtree(aside, ignore_errors=True)
    moved = []
    for i, out in enumerate(job["output"]):
        path = run_dir / out
        if path.exists():
            target = aside / str(i)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(path, target)
            moved.append((path, target))
    for lg in job["log"]:
        (run_dir / lg).unlink(missing_ok=True)
    venv_bin = str(Path(python).parent)
    env_vars = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env_vars.update(
        PATH=f"{venv_bin}:{os.environ.get('PATH', '')}",
        VIRTUAL_ENV=str(Path(venv_bin).parent),
        OMP_NUM_THREADS="1",
    )
    cmd = [python, str(Path(__file__).resolve()), "--guard", str(job["script"])]
    start = time.monotonic()
    done = subprocess.run(cmd, cwd=run_dir, env=env_vars, capture_output=True, text=True)
    seconds = time.monotonic() - start
    missing = [out for out in job["output"] if not (run_dir / out).exists()]
    problems = []
    if done.returncode != 0:
        problems.append(f"exit {done.returncode}: {(done.stdout + done.stderr)[-1500:]}")
    if missing:
        problems.append(f"outputs not written: {missing}")
    if problems:
        for path, target in moved:
            if path.exists():
                shutil.rmtree(path) if path.is_dir() else path.unlink()
            shutil.move(target, path)
    else:
        shutil.rmtree(aside, ignore_errors=True)
    (work / "logs" / f"job-{env}-{rule}.log").write_text(done.stdout + done.stderr)
    return {"ok": not problems, "seconds": seconds, "problems": problems}


# --- the guard: runs inside the env venv, standard library only -------------------------------


def guard(script: Path) -> int:
    """Run a Snakemake job script as `python script` would, as if the Python running Snakemake
    had none of the packages the env lacks.

    Snakemake's preamble appends that Python's sys.path (for Snakemake itself), so an import
    that the env cannot satisfy would quietly succeed from there. After the preamble, an import
    made by workflow code or by an env package is looked for only in the env, the standard
    library and this repository, and one of a module Snakemake already loaded from elsewhere
    raises ModuleNotFoundError: optional imports fall back as they would in a real env, and a
    missing dependency fails the job."""
    prefix = Path(sys.prefix).resolve()
    stdlib = {Path(sysconfig.get_paths()[k]).resolve() for k in ("stdlib", "platstdlib")}
    this_file = str(Path(__file__).resolve())

    def where(file) -> str:
        if not file:
            return "builtin"
        path = Path(file).resolve()
        if path.is_relative_to(prefix):
            return "env"
        # the project's own code; a virtualenv inside the checkout (.venv) is not the project
        if path.is_relative_to(ROOT) and "site-packages" not in path.parts:
            return "project"
        if any(path.is_relative_to(s) for s in stdlib) and "site-packages" not in path.parts:
            return "stdlib"
        return "outside"

    def location(module) -> str | None:
        file = getattr(module, "__file__", None)
        if file is None and getattr(module, "__path__", None):
            file = next(iter(module.__path__), None)
        return file

    def importer() -> str | None:
        """File of the code asking for the import (past importlib's and this guard's frames)."""
        frame = sys._getframe(1)
        while frame is not None:
            name = frame.f_globals.get("__name__", "")
            code_file = frame.f_code.co_filename
            if not (
                code_file.startswith("<frozen")
                or name == "importlib"
                or name.startswith("importlib.")
                or code_file == this_file
            ):
                return frame.f_globals.get("__file__")
            frame = frame.f_back
        return None

    blocked: set[str] = set()

    path_finder = importlib.machinery.PathFinder

    class EnvPathFinder(importlib.abc.MetaPathFinder):
        """sys.meta_path's PathFinder, except that a top-level module asked for by workflow
        code or an env package is looked for only on sys.path entries that are not outside."""

        def find_spec(self, name, path=None, target=None):
            by = importer() if path is None else None
            if path is not None or where(by) not in ("env", "project"):
                return path_finder.find_spec(name, path, target)
            inside = [p for p in sys.path if where(p) != "outside"]
            spec = path_finder.find_spec(name, inside, target)
            if spec is None:
                outside = path_finder.find_spec(name, sys.path, target)
                if outside is not None:
                    blocked.add(f"{name} (only at {outside.origin}; wanted by {by})")
            return spec

    def check_loaded(name: str) -> None:
        """An import of a module Snakemake has already loaded from outside the env."""
        top = name.partition(".")[0]
        module = sys.modules.get(top)
        if module is not None and where(location(module)) == "outside":
            by = importer()
            if where(by) in ("env", "project"):
                blocked.add(f"{top} (loaded from {location(module)}; wanted by {by})")
                raise ModuleNotFoundError(f"No module named {top!r} in this env", name=top)

    real_import, real_import_module = builtins.__import__, importlib.import_module

    def guarded_import(name, globals=None, locals=None, fromlist=(), level=0):
        if level == 0 and name:
            check_loaded(name)
        return real_import(name, globals, locals, fromlist, level)

    def guarded_import_module(name, package=None):
        if not name.startswith("."):
            check_loaded(name)
        return real_import_module(name, package)

    text = script.read_text()
    head, _, body = text.partition(PREAMBLE_END)
    head += PREAMBLE_END
    body = "\n" * head.count("\n") + body  # keep the script's line numbers in tracebacks
    namespace = {"__name__": "__main__", "__file__": str(script), "__builtins__": builtins}
    sys.argv = [str(script)]
    sys.path[0] = str(script.parent)
    exec(compile(head, str(script), "exec"), namespace)  # Snakemake's preamble
    sys.meta_path[:] = [EnvPathFinder() if f is path_finder else f for f in sys.meta_path]
    builtins.__import__, importlib.import_module = guarded_import, guarded_import_module
    try:
        exec(compile(body, str(script), "exec"), namespace)
    finally:
        builtins.__import__, importlib.import_module = real_import, real_import_module
        if blocked:
            print("refused (outside the env):\n  " + "\n  ".join(sorted(blocked)), flush=True)
    return 0


# --- the report -------------------------------------------------------------------------------

DOC_START, DOC_END = "<!-- check-envs:start -->", "<!-- check-envs:end -->"


def summary_table(results: dict, total_seconds: float, run_seconds: float) -> str:
    today = datetime.date.today().isoformat()
    lines = [
        f"Last run: {today}, `python scripts/check_envs.py`, {total_seconds / 60:.1f} min wall "
        f"in all on {os.cpu_count()} CPU cores (tiny workflow run {run_seconds:.0f} s, "
        "alongside the venv builds).",
        "",
        "| env | venv build | imports | jobs run | rules (one job each) | key versions |",
        "|---|---|---|---|---|---|",
    ]
    for env, r in results.items():
        jobs = r.get("jobs", {})
        ok_jobs = sum(j["ok"] for j in jobs.values())
        imports = r.get("imports", {})
        versions = ", ".join(f"{k} {v}" for k, v in (imports.get("versions") or {}).items())
        rules = ", ".join(
            f"{rule}" + ("" if j["ok"] else " **FAILED**") for rule, j in jobs.items()
        )
        if r.get("no_job"):
            rules += "; no job in the tiny run: " + ", ".join(r["no_job"])
        lines.append(
            f"| {env} | {'OK' if r['build']['ok'] else 'FAILED'} {r['build']['seconds']:.0f} s "
            f"| {'OK' if imports.get('ok') else 'FAILED'} ({imports.get('modules', 0)} modules) "
            f"| {ok_jobs}/{len(jobs)} OK | {rules} | {versions} |"
        )
    return "\n".join(lines)


def write_doc(doc: Path, table: str) -> None:
    text = doc.read_text()
    start, end = text.index(DOC_START) + len(DOC_START), text.index(DOC_END)
    doc.write_text(text[:start] + "\n" + table + "\n" + text[end:])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--envs", help="comma-separated env names (default: every envs/*.yaml)")
    parser.add_argument("--work", type=Path, help="working folder (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the working folder")
    parser.add_argument("--write-doc", type=Path, help="put the result table into this file")
    parser.add_argument("--guard", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.guard:
        return guard(args.guard.resolve())

    started = time.monotonic()
    work = (args.work or Path(tempfile.mkdtemp(prefix="check-envs-"))).resolve()
    work.mkdir(parents=True, exist_ok=True)
    print(f"working folder: {work}", flush=True)
    envs = sorted((ROOT / "envs").glob("*.yaml"))
    if args.envs:
        wanted = set(args.envs.split(","))
        envs = [e for e in envs if e.stem in wanted]
    rules = workflow_rules(
        [f"bids_dir={work / 'run' / 'bids'}", f"out_dir={work / 'run' / 'out'}", *TINY_CONFIG],
        work,
    )
    tiny, tiny_log = start_tiny_run(work)  # runs while the venvs build
    lock, results = read_lock(), {}
    for env_file in envs:
        name = env_file.stem
        reqs = pypi_requirements(env_file, lock)
        print(f"[{name}] building venv: {' '.join(reqs['requirements'])}", flush=True)
        if reqs["skipped"]:
            print(f"[{name}] no PyPI build, not installed: {', '.join(reqs['skipped'])}")
        build = build_venv(name, reqs, work)
        results[name] = {"build": build}
        print(f"[{name}] venv {'built' if build['ok'] else 'FAILED'} in {build['seconds']:.0f} s")
        if not build["ok"]:
            continue
        env_rules = [r for r in rules if r["env"] == env_file.resolve()]
        results[name]["imports"] = imports = import_check(build["python"], env_rules, reqs)
        print(f"[{name}] imports {'OK' if imports['ok'] else 'FAILED'} ({imports['modules']})")
        for problem in imports["failed"]:
            print(f"    {problem}")
    tiny.wait()
    run_seconds = time.monotonic() - started
    if tiny.returncode != 0:
        print(f"tiny workflow run FAILED; see {tiny_log}:\n{tiny_log.read_text()[-3000:]}")
        return 1
    jobs = job_scripts(work / "run")
    for env_file in envs:
        name = env_file.stem
        if not results[name]["build"]["ok"]:
            continue
        env_rules = [r["rule"] for r in rules if r["env"] == env_file.resolve()]
        results[name]["jobs"], results[name]["no_job"] = {}, []
        for rule in env_rules:
            if rule not in jobs:
                results[name]["no_job"].append(rule)
                continue
            python = results[name]["build"]["python"]
            outcome = rerun_job(python, jobs[rule], work / "run", work, rule, name)
            results[name]["jobs"][rule] = outcome
            state = "OK" if outcome["ok"] else "FAILED"
            print(f"[{name}] job {rule}: {state} ({outcome['seconds']:.0f} s)", flush=True)
            for problem in outcome["problems"]:
                print(f"    {problem}")
    total = time.monotonic() - started
    table = summary_table(results, total, run_seconds)
    print("\n" + table)
    if args.write_doc:
        write_doc(args.write_doc, table)
    if not args.keep and not args.work:
        shutil.rmtree(work, ignore_errors=True)
    failed = [
        n
        for n, r in results.items()
        if not (
            r["build"]["ok"]
            and r["imports"]["ok"]
            and all(j["ok"] for j in r.get("jobs", {}).values())
            and not r.get("no_job")
        )
    ]
    print(f"\nfinished in {total:.0f} s: " + (f"FAILED: {failed}" if failed else "all envs OK"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
