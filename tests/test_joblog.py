"""workflow_scripts.joblog: a job's records and its failure reason land in its log file."""

import logging
import warnings

import pytest

from workflow_scripts.joblog import job_logging


def test_records_warnings_and_failures_reach_the_log(tmp_path):
    log_file = tmp_path / "logs" / "job.log"
    with pytest.raises(ValueError, match="sub-01"):
        with job_logging(log_file) as log:
            log.info("started")
            logging.getLogger("workflow_scripts.x").warning("frames averaged")
            warnings.warn("deprecated thing", UserWarning, stacklevel=1)
            raise ValueError("sub-01: image is all zeros")
    text = log_file.read_text()
    assert "started" in text and "frames averaged" in text and "deprecated thing" in text
    assert "job failed" in text and "sub-01: image is all zeros" in text
    # the handler is removed afterwards
    logging.getLogger("after").warning("not logged")
    assert "not logged" not in log_file.read_text()
