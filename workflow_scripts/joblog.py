"""Send a job's Python logging (and warnings) to its Snakemake `log:` file."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


@contextlib.contextmanager
def job_logging(log_file: str | Path, level: int = logging.INFO) -> Iterator[logging.Logger]:
    """Within the block, records of every logger go to `log_file` (appended), and an exception
    leaving the block is logged with its traceback before it propagates (so the log says why the
    job failed)."""
    path = Path(log_file)
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, mode="a")
    handler.setFormatter(logging.Formatter(FORMAT))
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(level)
    logging.captureWarnings(True)
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
