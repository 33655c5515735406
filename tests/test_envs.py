"""Static checks of the per-rule conda environments (conda channels are unreachable in CI, so
the envs are not solved here): each env parses and pins versions, and lists every third-party
package the code behind its rules imports."""

from __future__ import annotations

import ast
import hashlib
import re
import shutil
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
# import name -> conda/pip package name
PACKAGE = {
    "skimage": "scikit-image",
    "yaml": "pyyaml",
    "ants": "antspyx",
    "torch": "pytorch",
    "sklearn": "scikit-learn",
}
PROJECT = {"workflow_scripts", "model", "tests"}


def env_packages(path: Path) -> dict[str, str]:
    spec = yaml.safe_load(path.read_text())
    pins = {}
    for dep in spec["dependencies"]:
        items = dep["pip"] if isinstance(dep, dict) else [dep]
        for item in items:
            if item.startswith("-e") or item.startswith("-"):
                continue
            name, _, version = (
                re.split(r"(==|=)", item, maxsplit=1) if re.search("=", item) else (item, "", "")
            )
            pins[name.strip().lower()] = version.strip()
    return pins


def rule_entries() -> list[tuple[str, str, str]]:
    """(rule, conda env file, entry module:function) for every rule, from rules/*.smk."""
    out = []
    for smk in sorted((ROOT / "rules").glob("*.smk")):
        text = smk.read_text()
        blocks = re.split(r"\n(?=(?:rule|checkpoint|use rule) )", text)
        last_conda = None
        for block in blocks:
            head = re.match(r"(?:rule|checkpoint) (\w+):|use rule \w+ as (\w+)", block)
            if not head:
                continue
            name = head.group(1) or head.group(2)
            conda = re.search(r'conda:\s*\n\s*"([^"]+)"', block)
            entry = re.search(r'entry="([\w.]+):(\w+)"', block)
            conda_file = conda.group(1) if conda else last_conda
            last_conda = conda_file if block.startswith(("rule", "checkpoint")) else last_conda
            if entry and conda_file:
                out.append((name, conda_file, f"{entry.group(1)}:{entry.group(2)}"))
    return out


def module_path(module: str) -> Path:
    p = ROOT / Path(*module.split("."))
    return p / "__init__.py" if p.is_dir() else p.with_suffix(".py")


def third_party_imports(module: str, function: str | None = None, seen=None) -> set[str]:
    """Top-level imports of a module (and of the project modules it imports at top level), plus
    the imports inside the entry function itself."""
    seen = set() if seen is None else seen
    if module in seen:
        return set()
    seen.add(module)
    tree = ast.parse(module_path(module).read_text())
    nodes = [n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
    if function:
        fn = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == function)
        nodes += [n for n in ast.walk(fn) if isinstance(n, ast.Import | ast.ImportFrom)]
    found = set()
    for node in nodes:
        names = (
            [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
        )
        for name in names:
            top = name.split(".")[0]
            if top in PROJECT:
                found |= third_party_imports(
                    name if module_path(name).exists() else top, None, seen
                )
            elif top and top not in sys.stdlib_module_names and top != "__future__":
                found.add(PACKAGE.get(top, top).lower())
    return found


ENVS = sorted((ROOT / "envs").glob("*.yaml"))


@pytest.mark.parametrize("env", ENVS, ids=[e.stem for e in ENVS])
def test_env_parses_and_pins_versions(env):
    pins = env_packages(env)
    assert pins, env
    unpinned = [name for name, version in pins.items() if not version]
    assert not unpinned, f"{env.name}: unpinned {unpinned}"


def test_every_rule_env_lists_what_its_code_imports():
    entries = rule_entries()
    assert len(entries) >= 20
    problems = []
    for rule, conda, entry in entries:
        env = (ROOT / "rules" / conda).resolve()
        assert env.exists(), f"rule {rule}: {conda} missing"
        pins = env_packages(env)
        module, function = entry.split(":")
        needed = third_party_imports(module, function)
        missing = sorted(n for n in needed if n not in pins)
        if missing:
            problems.append(f"rule {rule} ({env.name}, {entry}): {missing}")
    assert not problems, "\n".join(problems)


# --- env files as `snakemake --use-conda` deploys them ----------------------------------------
# Snakemake (deployment/conda.py, Env.create) copies each env file to <envs dir>/<hash>.yaml, the
# envs dir being <workdir>/.snakemake/conda unless --conda-prefix says otherwise, and runs
# `conda env create --file <that copy>`. conda then runs pip from the copy's folder
# (conda/env/installers/pip.py: pip_workdir = dirname(file)), so every relative path in the file
# is read from there, not from envs/.

PIP_PATH_OPTIONS = ("-e", "--editable", "-r", "--requirement", "-c", "--constraint")
FILE_OPTIONS = ("-r", "--requirement", "-c", "--constraint")


def stage_like_snakemake(env: Path, envs_dir: Path) -> Path:
    envs_dir.mkdir(parents=True, exist_ok=True)
    digest = hashlib.md5(str(envs_dir.resolve()).encode() + env.read_bytes()).hexdigest()
    staged = envs_dir / f"{digest}.yaml"
    shutil.copyfile(env, staged)
    return staged


def local_references(spec: dict) -> list[tuple[str, str, str]]:
    """(kind, entry as written, path) for every entry of an env file that names a local path:
    channels given as paths, pip options with a path, and pip requirements that are paths."""
    refs = []
    for channel in spec.get("channels") or []:
        if channel.startswith(("/", ".", "~", "file:")):
            refs.append(("channel", channel, channel.removeprefix("file://")))
    for dep in spec.get("dependencies") or []:
        if not isinstance(dep, dict):
            continue
        for item in dep.get("pip") or []:
            option, _, rest = item.partition(" ")
            if option in PIP_PATH_OPTIONS:
                kind = "file" if option in FILE_OPTIONS else "project"
                target = rest.strip()
            elif option.startswith(("--editable=", "--requirement=", "--constraint=")):
                kind = "project" if option.startswith("--editable") else "file"
                target = item.partition("=")[2].strip()
            elif " @ file:" in item:
                kind, target = "project", item.split(" @ file:", 1)[1].lstrip("/")
                target = "/" + target
            elif item.startswith(("/", ".", "~", "file:")):
                kind, target = "project", item
            else:
                continue
            if "://" not in target.removeprefix("file://") and not target.startswith("git+"):
                refs.append((kind, item, target.removeprefix("file://")))
    return refs


def unresolved_paths(staged: Path) -> list[str]:
    """Local paths of a staged env file that conda/pip could not use from where it lies."""
    problems = []
    for kind, item, target in local_references(yaml.safe_load(staged.read_text())):
        path = (staged.parent / Path(target).expanduser()).resolve()
        if kind == "file":
            ok = path.is_file()
        elif kind == "channel":
            ok = path.is_dir()
        else:  # something pip installs: a project folder or an archive
            ok = (
                path.is_file() or (path / "pyproject.toml").exists() or (path / "setup.py").exists()
            )
        if not ok:
            problems.append(f"{item!r} -> {path}")
    return problems


@pytest.mark.parametrize("env", ENVS, ids=[e.stem for e in ENVS])
def test_local_paths_resolve_where_snakemake_puts_the_env_file(env, tmp_path):
    # the default envs dir under a working directory, and one given with --conda-prefix
    for envs_dir in (tmp_path / "work" / ".snakemake" / "conda", tmp_path / "shared" / "envs"):
        staged = stage_like_snakemake(env, envs_dir)
        problems = unresolved_paths(staged)
        assert not problems, f"{env.name} staged as {staged}: {problems}"


def test_staged_check_catches_a_relative_project_path(tmp_path):
    """The check above fails on `-e ..` (the bug it guards against) and accepts a real path."""
    env = tmp_path / "env.yaml"
    env.write_text("dependencies:\n  - pip:\n      - -e ..\n      - -r reqs.txt\n")
    staged = stage_like_snakemake(env, tmp_path / "work" / ".snakemake" / "conda")
    assert len(unresolved_paths(staged)) == 2
    env.write_text(f"dependencies:\n  - pip:\n      - -e {ROOT}\n      - numpy==2.4.*\n")
    assert unresolved_paths(stage_like_snakemake(env, tmp_path / "other")) == []
