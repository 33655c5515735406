"""Send a job's Python logging (and warnings) to its Snakemake `log:` file."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# First line of every run of a job (a log keeps the runs before it). A warm job (forked from the
# run's job server, workflow_scripts/warm_start.py) says so: its benchmark's memory and CPU are
# its launcher's, not its own.
START = "job start, pid"
WARM = "warm start, forked from job server pid"


@contextlib.contextmanager
def job_logging(
    log_file: str | Path, level: int = logging.INFO, server_pid: int | None = None
) -> Iterator[logging.Logger]:
    """Within the block, records of every logger go to `log_file` (appended), and an exception
    leaving the block is logged with its traceback before it propagates (so the log says why the
    job failed). The block starts with a START line, WARM added for a job of `server_pid`."""
    path = Path(log_file)
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, mode="a")
    handler.setFormatter(logging.Formatter(FORMAT))
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(level)
    logging.captureWarnings(True)
    start = f"{START} {os.getpid()}" + (f", {WARM} {server_pid}" if server_pid else "")
    logging.getLogger("spectsynth").info(start)
    try:
        yield logging.getLogger("spectsynth")
    except Exception:
        logging.getLogger("spectsynth").exception("job failed")
        raise
    finally:
        logging.captureWarnings(False)
        root.removeHandler(handler)
        root.setLevel(old_level)
        handler.close()
