"""Run the official BIDS validator (``bids-validator-deno``) and return its issues as Python objects.

The validator is the schema-based TypeScript validator, installed from PyPI as
``bids-validator-deno`` (it brings the ``deno`` runtime as a wheel; no Node.js). Its PyPI
version is pinned in requirements.lock.

What we learned about it (version 3.0.2, bundled schema 1.2.7 = BIDS 1.11.1):

- Offline: the BIDS schema is bundled in the JavaScript file; it downloads one only when
  ``--schema`` is given or the ``BIDS_SCHEMA`` environment variable is set. :func:`run_validator`
  passes neither and removes ``BIDS_SCHEMA`` from the child's environment. Checked with the
  network removed (``unshare -rn``). HED schemas for ``HEDVersion`` are bundled too.
- Exit status 0 without errors, 16 with errors (warnings do not count); ``--format json`` (with
  ``-o FILE``) gives ``{"issues": {"issues": [...], "codeMessages": {...}}, "summary": {...}}``,
  each issue with ``code``, ``subCode`` (often the offending key or column), ``severity``,
  ``location`` (dataset-relative, starting with "/"), ``issueMessage`` and ``rule``.
- Derivative datasets: there is no "derivative mode" switch. The rules for derivatives are
  selected by ``"DatasetType": "derivative"`` in the dataset_description.json of the *root*
  being validated (schema selectors ``dataset.dataset_description.DatasetType ==
  "derivative"``), so a BIDS-Derivatives folder is validated by passing it directly as the root.
  ``--datasetTypes derivative`` only restricts which DatasetType is accepted, and in 3.0.2 a
  dataset of another type makes it crash (``UnknownIssueCodeError: UNSUPPORTED_DATASET_TYPE``,
  exit 1) instead of reporting an error. So :func:`run_validator` does not pass it: with
  ``derivative=True`` it checks the declaration itself and adds a ``NOT_A_DERIVATIVE_DATASET``
  error (rule "spectsynth") when the dataset_description does not declare a derivative.
- A raw dataset's ``derivatives/`` folder is skipped by default. ``--recursive`` also validates
  each ``derivatives/<name>/`` that has a dataset_description.json, as its own dataset; the
  results come back in ``derivativesSummary`` (here :attr:`ValidatorResult.derivatives`) and
  their errors also make the exit status 16. In 3.0.2 such nested datasets do *not* honour
  their own ``.bidsignore`` (validated directly as the root, they do), so validate derivative
  datasets directly.
- ``.bidsignore`` patterns are gitignore-style; a directory pattern with a trailing slash
  (``spect/``) ignores the files below it but the directory itself is still reported as
  ``NOT_INCLUDED``: write ``**/spect``.
- The validator reports its own version as the git commit of the folder it is installed in when
  that folder is inside a git work tree; :attr:`ValidatorResult.version` is the PyPI version.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

EXECUTABLE = "bids-validator-deno"
DISTRIBUTION = "bids-validator-deno"
EXIT_OK, EXIT_ERRORS = 0, 16


class ValidatorNotFoundError(RuntimeError):
    """bids-validator-deno is not installed."""


class ValidatorFailedError(RuntimeError):
    """The validator ran but did not produce a result (crash, bad arguments, time out)."""


@dataclass(frozen=True)
class ValidatorIssue:
    """One finding: ``code`` (e.g. SIDECAR_KEY_REQUIRED), ``sub_code`` (e.g. the missing key),
    ``severity`` ("error" | "warning" | "ignore"), ``location`` (dataset-relative path)."""

    code: str
    severity: str
    location: str | None = None
    sub_code: str | None = None
    message: str = ""
    detail: str = ""
    rule: str | None = None

    def __str__(self) -> str:
        what = self.code + (f"[{self.sub_code}]" if self.sub_code else "")
        return f"{self.severity.upper()} {what} {self.location or ''}".rstrip()


@dataclass(frozen=True)
class ValidatorResult:
    """What the validator said about one dataset (and, with recursive=True, its derivatives)."""

    dataset: Path
    version: str
    issues: tuple[ValidatorIssue, ...]
    summary: dict = field(default_factory=dict)
    derivatives: dict[str, ValidatorResult] = field(default_factory=dict)

    @property
    def errors(self) -> list[ValidatorIssue]:
        return [i for i in self.issues if i.severity == "error"]

    @property
    def warnings(self) -> list[ValidatorIssue]:
        return [i for i in self.issues if i.severity == "warning"]

    @property
    def valid(self) -> bool:
        """No errors here nor in any validated derivative dataset."""
        return not self.errors and all(d.valid for d in self.derivatives.values())

    def counts(self, severity: str) -> Counter:
        """How many issues of a severity per (code, sub_code)."""
        return Counter((i.code, i.sub_code) for i in self.issues if i.severity == severity)

    def report(self, limit: int = 30) -> str:
        """Readable lines, errors first (for assertion and log messages)."""
        ordered = self.errors + self.warnings
        lines = [
            f"bids-validator-deno {self.version} on {self.dataset}: "
            f"{len(self.errors)} errors, {len(self.warnings)} warnings"
        ]
        lines += [f"  {i}" for i in ordered[:limit]]
        if len(ordered) > limit:
            lines.append(f"  ... {len(ordered) - limit} more")
        for name, sub in self.derivatives.items():
            lines.append(f"derivative {name}: " + sub.report(limit).replace("\n", "\n  "))
        return "\n".join(lines)


def find_validator() -> Path:
    """The validator's entry point: beside this interpreter (a virtualenv's bin/, even when that
    is not on PATH), else on PATH."""
    here = Path(sys.executable).parent
    for name in (EXECUTABLE, EXECUTABLE + ".exe"):
        if (here / name).is_file():
            return here / name
    found = shutil.which(EXECUTABLE)
    if found is None:
        raise ValidatorNotFoundError(
            f"{EXECUTABLE} is not installed (looked beside {sys.executable} and on PATH). "
            f"Install it with `pip install -r requirements.lock` or `pip install {DISTRIBUTION}`."
        )
    return Path(found)


def validator_version() -> str:
    try:
        return importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _issues(payload: dict) -> tuple[ValidatorIssue, ...]:
    block = payload.get("issues", {})
    messages = block.get("codeMessages", {})
    return tuple(
        ValidatorIssue(
            code=raw["code"],
            severity=raw.get("severity", "error"),
            location=raw.get("location"),
            sub_code=raw.get("subCode"),
            message=messages.get(raw["code"], "").strip(),
            detail=(raw.get("issueMessage") or "").strip(),
            rule=raw.get("rule"),
        )
        for raw in block.get("issues", [])
    )


def _result(dataset: Path, payload: dict, version: str) -> ValidatorResult:
    derivatives = {
        name.strip("/"): _result(dataset / name.strip("/"), sub, version)
        for name, sub in (payload.get("derivativesSummary") or {}).items()
    }
    return ValidatorResult(
        dataset=dataset,
        version=version,
        issues=_issues(payload),
        summary=payload.get("summary", {}),
        derivatives=derivatives,
    )


def run_validator(
    path: str | Path,
    *,
    derivative: bool = False,
    recursive: bool = False,
    ignore_nifti_headers: bool = False,
    config: dict | None = None,
    timeout_s: float = 600.0,
) -> ValidatorResult:
    """Validate the BIDS dataset at ``path`` with the installed bids-validator-deno.

    derivative: the dataset must declare ``"DatasetType": "derivative"`` (the validator applies
        derivative rules because of that declaration; without it a NOT_A_DERIVATIVE_DATASET
        error is added, see the module docstring).
    recursive: also validate ``derivatives/*/`` datasets (ValidatorResult.derivatives).
    config: the validator's ``--config`` content, e.g. ``{"ignore": [{"code": "..."}]}``.
    Raises ValidatorNotFoundError when the validator is not installed, ValidatorFailedError when
    it produces no result, FileNotFoundError when ``path`` is not a folder.
    """
    dataset = Path(path).resolve()
    if not dataset.is_dir():
        raise FileNotFoundError(f"BIDS validation: {dataset} is not a folder")
    executable = find_validator()
    env = {k: v for k, v in os.environ.items() if k != "BIDS_SCHEMA"}  # bundled schema only
    env.update(DENO_NO_UPDATE_CHECK="1", NO_COLOR="1")
    with tempfile.TemporaryDirectory(prefix="bids-validator-") as tmp:
        out = Path(tmp) / "result.json"
        cmd = [str(executable), str(dataset), "--format", "json", "--outfile", str(out)]
        if recursive:
            cmd.append("--recursive")
        if ignore_nifti_headers:
            cmd.append("--ignoreNiftiHeaders")
        if config is not None:
            config_file = Path(tmp) / "config.json"
            config_file.write_text(json.dumps(config))
            cmd += ["--config", str(config_file)]
        try:
            proc = subprocess.run(
                cmd, capture_output=True, text=True, env=env, timeout=timeout_s, check=False
            )
        except subprocess.TimeoutExpired as err:
            raise ValidatorFailedError(
                f"{EXECUTABLE} on {dataset}: no result after {timeout_s:.0f} s"
            ) from err
        if proc.returncode not in (EXIT_OK, EXIT_ERRORS) or not out.is_file():
            raise ValidatorFailedError(
                f"{EXECUTABLE} on {dataset} exited with {proc.returncode}: "
                f"{(proc.stderr or proc.stdout).strip()[-2000:]}"
            )
        payload = json.loads(out.read_text())
    result = _result(dataset, payload, validator_version())
    if derivative and (problem := _not_a_derivative(dataset)):
        result = replace(result, issues=(problem, *result.issues))
    return result


def _not_a_derivative(dataset: Path) -> ValidatorIssue | None:
    try:
        declared = json.loads((dataset / "dataset_description.json").read_text())
    except (OSError, ValueError):
        return None  # the validator reports a missing or unreadable description itself
    kind = declared.get("DatasetType") if isinstance(declared, dict) else None
    if kind == "derivative":
        return None
    return ValidatorIssue(
        code="NOT_A_DERIVATIVE_DATASET",
        severity="error",
        location="/dataset_description.json",
        message='A derivative dataset must declare "DatasetType": "derivative"; '
        "the validator applied the rules for this one's type instead.",
        detail=f"DatasetType: {kind!r}",
        rule="spectsynth",
    )
