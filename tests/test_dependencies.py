"""pyproject.toml declares what the workflow's code imports, and nothing it does not."""

from __future__ import annotations

import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

from tests.conftest import absolute_imports

ROOT = Path(__file__).resolve().parents[1]
CODE = ("workflow_scripts", "model")
# Declared runtime dependencies that no module imports by name, and why they are needed.
USED_WITHOUT_IMPORT = {
    "snakemake": "runs the workflow (the Snakefile imports it)",
    "jsonschema": "snakemake.utils.validate checks config.yaml against its schema",
}


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(requirement: str) -> str:
    return normalise(re.split(r"[\s<>=!~;\[]", requirement, maxsplit=1)[0])


def imported_distributions() -> dict[str, set[str]]:
    """Distribution -> files importing it, for every third-party import (at any depth) in
    workflow_scripts/ and model/."""
    dists = packages_distributions()
    found: dict[str, set[str]] = {}
    for package in CODE:
        for path in sorted((ROOT / package).rglob("*.py")):
            for name, _ in absolute_imports(path):
                top = name.partition(".")[0]
                if top in CODE or top in sys.stdlib_module_names or top == "__future__":
                    continue
                for dist in dists.get(top, [top]):
                    found.setdefault(normalise(dist), set()).add(str(path.relative_to(ROOT)))
    return found


def test_imports_are_declared_and_declarations_are_used():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = {requirement_name(r) for r in project["dependencies"]}
    extras = {
        requirement_name(r)
        for name, reqs in project["optional-dependencies"].items()
        if name != "dev"
        for r in reqs
    }
    imported = imported_distributions()
    undeclared = {d: sorted(f) for d, f in imported.items() if d not in runtime | extras}
    assert not undeclared, f"imported but not declared in pyproject.toml: {undeclared}"
    unused = runtime - set(imported) - set(USED_WITHOUT_IMPORT)
    assert not unused, f"declared in pyproject.toml but never imported: {sorted(unused)}"


def test_optional_backends_are_extras():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    assert "snakemake-executor-plugin-slurm" in {requirement_name(r) for r in extras["slurm"]}
    assert "brainextractor" in {requirement_name(r) for r in extras["bet"]}
