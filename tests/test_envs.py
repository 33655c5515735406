"""Static checks of the per-rule conda environments (conda channels are unreachable in CI, so
the envs are not solved here): each env parses and pins versions, and lists every third-party
package the code behind its rules imports."""

from __future__ import annotations

import ast
import re
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
