"""model/ is a pix2pix package that knows nothing of the workflow: it imports no workflow code."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def workflow_imports(path: Path) -> list[str]:
    """`module:line` of every import of workflow_scripts (at any depth: lazy imports too)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found += [f"{n}:{node.lineno}" for n in names if n.partition(".")[0] == "workflow_scripts"]
    return found


def test_model_imports_nothing_of_the_workflow():
    files = sorted((ROOT / "model").rglob("*.py"))
    assert files
    offenders = {str(p.relative_to(ROOT)): workflow_imports(p) for p in files}
    assert not {k: v for k, v in offenders.items() if v}


def test_the_check_sees_a_lazy_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from workflow_scripts.slices import load_slices\n")
    assert workflow_imports(bad) == ["workflow_scripts.slices:2"]
