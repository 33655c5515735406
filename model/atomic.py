"""Writing a file atomically: to a temporary name in the target folder, then renamed over it.

A killed job therefore never leaves a file that looks complete. Standard library only, so
every conda env can import it; the workflow's writers (workflow_scripts.nifti_io) use this one
implementation too, since model/ may not import the workflow.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path: str | Path, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success rename it to `path`, on error remove it.

    `suffix`: the temporary name's ending, for writers that choose a format by it (".nii.gz",
    ".png", ".npz"); default `path`'s own suffixes."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = "".join(path.suffixes) if suffix is None else suffix
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        tmp_path.replace(path)
    finally:
        tmp_path.unlink(missing_ok=True)
