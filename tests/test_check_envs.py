"""Fast checks of scripts/check_envs.py (the full check builds venvs: `make check-envs`)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "check_envs.py"
spec = importlib.util.spec_from_file_location("check_envs", SCRIPT)
check_envs = importlib.util.module_from_spec(spec)
spec.loader.exec_module(check_envs)


def test_conda_pins_become_pypi_requirements(tmp_path):
    env = tmp_path / "env.yaml"
    env.write_text(
        "dependencies:\n  - python=3.11\n  - pytorch=2.13\n  - numpy=2.3\n  - fsl-bet2=2111.8\n"
        "  - pip=25\n  - pip:\n      - antspyx==0.6.1\n"
    )
    lock = {"torch": "2.13.0", "numpy": "2.4.6", "statsmodels": "0.15.0"}
    reqs = check_envs.pypi_requirements(env, lock)
    assert reqs["python"] == "3.11"
    # lock version inside the conda series; otherwise the series itself
    assert reqs["requirements"] == ["torch==2.13.0", "numpy==2.3.*", "pip==25.*", "antspyx==0.6.1"]
    assert reqs["skipped"] == ["fsl-bet2=2111.8"]
    # what the env does not pin is held at the lock's version
    assert reqs["constraints"] == ["statsmodels==0.15.0"]


def test_every_env_maps_to_pypi():
    lock = check_envs.read_lock()
    for env in sorted((ROOT / "envs").glob("*.yaml")):
        reqs = check_envs.pypi_requirements(env, lock)
        assert reqs["python"] and reqs["requirements"], env.name
        assert all(s.startswith(check_envs.NO_PYPI_PREFIXES) for s in reqs["skipped"]), env.name


def fake_job(tmp_path: Path, body: str, preamble: str = "") -> Path:
    """A job script shaped like Snakemake's: the preamble appends the host's site-packages (and
    may import from there, as Snakemake does), and makes __file__ the rule's script."""
    host = sysconfig.get_paths()["purelib"]
    script = tmp_path / "tmpjob.entry.py"
    script.write_text(
        f"import sys; sys.path.extend([{host!r}]); {preamble}__real_file__ = __file__; "
        f"__file__ = {str(ROOT / 'workflow_scripts' / 'entry.py')!r};\n"
        f"{check_envs.PREAMBLE_END}\n{body}\n"
    )
    return script


@pytest.fixture(scope="module")
def bare_venv(tmp_path_factory) -> Path:
    venv = tmp_path_factory.mktemp("venv") / "bare"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    return venv / "bin" / "python"


def guarded(python: Path, job: Path) -> subprocess.CompletedProcess:
    return subprocess.run([python, SCRIPT, "--guard", job], capture_output=True, text=True)


@pytest.mark.parametrize("preamble", ["", "import yaml; "], ids=["on_host_path", "loaded_by_host"])
def test_guard_refuses_what_only_the_host_has(bare_venv, tmp_path, preamble):
    """yaml is in the project's venv, not in the bare env: the job fails, whether yaml would be
    found on the appended host paths or Snakemake's preamble had already imported it."""
    done = guarded(bare_venv, fake_job(tmp_path, "import json\nimport yaml", preamble))
    assert done.returncode != 0
    assert "No module named 'yaml'" in done.stderr and "refused" in done.stdout


def test_guard_lets_optional_imports_fall_back(bare_venv, tmp_path):
    body = "try:\n    import yaml\nexcept ImportError:\n    yaml = None\nassert yaml is None"
    done = guarded(bare_venv, fake_job(tmp_path, body, "import yaml; "))
    assert done.returncode == 0, done.stdout + done.stderr


def test_guard_passes_a_job_that_stays_in_the_env(bare_venv, tmp_path):
    # as workflow_scripts/entry.py: the repository first on sys.path, then the workflow's code
    body = (
        f"import sys, json\nsys.path.insert(0, {str(ROOT)!r})\nfrom workflow_scripts import joblog"
    )
    done = guarded(bare_venv, fake_job(tmp_path, body))
    assert done.returncode == 0, done.stdout + done.stderr
