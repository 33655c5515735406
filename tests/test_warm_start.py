"""workflow_scripts.warm_start: a job handed to the run's job server runs in a forked child as it
would in its own process (working directory, environment, output, exit status, log), stops when
its launcher is stopped, and runs cold where there is no server for its interpreter."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from workflow_scripts import warm_start
from workflow_scripts.joblog import START, WARM

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(not hasattr(__import__("socket"), "send_fds"), reason="no fds")

JOBS = """
import os, sys, time
from pathlib import Path

def ok(smk):
    import torch  # preloaded by the server
    Path(smk.output[0]).write_text(
        f"{os.getpid()} {Path.cwd()} {os.environ['JOB_VALUE']} {'torch' in sys.modules}"
    )
    print("to stdout")
    print("to stderr", file=sys.stderr)

def pools(smk):
    import tempfile
    from threadpoolctl import threadpool_info

    blas = {pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"}
    Path(smk.output[0]).write_text(f"{os.getpid()} {sorted(blas)} {tempfile.gettempdir()}")

def fail(smk):
    raise ValueError("sub-07: broken input")

def exit3(smk):
    sys.exit(3)

def sleep(smk):
    Path(smk.output[0]).write_text(str(os.getpid()))
    time.sleep(60)
    Path(smk.output[0]).write_text("finished")
"""

LAUNCHER = """
import pickle, sys
sys.path.insert(0, {root!r})
sys.path.insert(0, {mods!r})
from workflow_scripts.entry import main
main(pickle.load(open(sys.argv[1], "rb")))
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    server = warm_start.JobServer()
    assert server.socket.exists()  # listening when the constructor returns: no job runs cold
    yield server
    server.stop()
    assert server.process.poll() is not None
    assert not server.socket.exists()


def launch(tmp_path, server, func, extra_env=None, **popen):
    """Start one job's launcher (what Snakemake's `script:` runs) for jobs.<func>."""
    mods = tmp_path / "mods"
    mods.mkdir(exist_ok=True)
    (mods / "warm_jobs.py").write_text(JOBS)
    (mods / "launcher.py").write_text(
        textwrap.dedent(LAUNCHER.format(root=str(ROOT), mods=str(mods)))
    )
    smk = SimpleNamespace(
        scriptdir=str(ROOT / "workflow_scripts"),
        params=SimpleNamespace(entry=f"warm_jobs:{func}"),
        log=[str(tmp_path / "logs" / f"{func}.log")],
        output=[str(tmp_path / f"{func}.out")],
    )
    import pickle

    (tmp_path / "smk.pkl").write_bytes(pickle.dumps(smk))
    env = {**os.environ, "JOB_VALUE": "from-launcher", **(server.environ if server else {})}
    env.update(extra_env or {})
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    return subprocess.Popen(
        [sys.executable, str(mods / "launcher.py"), str(tmp_path / "smk.pkl")],
        cwd=work,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    )


def test_a_job_runs_warm_like_in_its_own_process(tmp_path, server):
    proc = launch(tmp_path, server, "ok")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    pid, cwd, value, torch_loaded = (tmp_path / "ok.out").read_text().split()
    assert int(pid) != proc.pid  # another process did the work: the server's child
    assert Path(cwd) == tmp_path / "work" and value == "from-launcher" and torch_loaded == "True"
    assert "to stdout" in out and "to stderr" in err  # the launcher's own stdout/stderr
    log = (tmp_path / "logs" / "ok.log").read_text()
    assert f"{START} {pid}, {WARM} {server.process.pid}" in log


def test_the_job_gets_its_own_threads_and_temporary_folder(tmp_path, server):
    """Snakemake sets a job's thread count (OMP_NUM_THREADS, OPENBLAS_NUM_THREADS, ...) and
    TMPDIR in its environment; the server loaded numpy's BLAS with its own."""
    tmp = tmp_path / "job_tmp"
    tmp.mkdir()
    extra = {"OMP_NUM_THREADS": "3", "OPENBLAS_NUM_THREADS": "3", "TMPDIR": str(tmp)}
    proc = launch(tmp_path, server, "pools", extra_env=extra)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    pid, blas, tmpdir = (tmp_path / "pools.out").read_text().split(" ", 2)
    assert int(pid) != proc.pid and blas == "[3]" and tmpdir == str(tmp)


def test_failures_and_exit_codes_pass_through(tmp_path, server):
    proc = launch(tmp_path, server, "fail")
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1 and "sub-07: broken input" in err
    assert "sub-07: broken input" in (tmp_path / "logs" / "fail.log").read_text()
    proc = launch(tmp_path, server, "exit3")
    proc.communicate(timeout=120)
    assert proc.returncode == 3


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL])
def test_stopping_the_launcher_stops_the_job(tmp_path, server, how):
    """SIGTERM (Snakemake cancelling a job) is forwarded; after SIGKILL the child finds its
    launcher gone and ends itself."""
    proc = launch(tmp_path, server, "sleep")
    out = tmp_path / "sleep.out"
    deadline = time.monotonic() + 60
    while not (out.exists() and out.read_text().isdigit()) and time.monotonic() < deadline:
        time.sleep(0.1)
    child = int(out.read_text())
    proc.send_signal(how)
    proc.communicate(timeout=30)
    assert proc.returncode != 0
    deadline = time.monotonic() + 10
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(child)
    assert out.read_text() != "finished"


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_a_broken_request_leaves_the_server_serving(tmp_path, server):
    """A client that connects and hangs up, or sends no file descriptors, is refused; the next
    job runs."""
    import socket

    for payload in (b"", b"12345678"):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.connect(str(server.socket))
            sock.sendall(payload)
    proc = launch(tmp_path, server, "ok")
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert int((tmp_path / "ok.out").read_text().split()[0]) != proc.pid


def test_without_a_server_or_with_another_python_the_job_runs_cold(tmp_path, server):
    proc = launch(tmp_path, None, "ok")
    proc.communicate(timeout=120)
    assert proc.returncode == 0
    pid = (tmp_path / "ok.out").read_text().split()[0]
    assert int(pid) == proc.pid
    assert WARM not in (tmp_path / "logs" / "ok.log").read_text()
    other = {**server.environ, warm_start.PYTHON_ENV: "/opt/conda/envs/torch"}
    proc = launch(tmp_path, SimpleNamespace(environ=other), "ok")
    proc.communicate(timeout=120)
    assert int((tmp_path / "ok.out").read_text().split()[0]) == proc.pid


def test_a_server_ends_with_the_process_that_started_it(tmp_path):
    starter = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; sys.path.insert(0, sys.argv[1]);"
            "from workflow_scripts.warm_start import JobServer;"
            "s = JobServer(); print(s.process.pid, flush=True); time.sleep(60)",
            str(ROOT),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    server_pid = int(starter.stdout.readline())
    starter.kill()
    starter.wait()
    deadline = time.monotonic() + 30
    while _alive(server_pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _alive(server_pid)


def test_wanted_only_for_local_runs_without_conda():
    def workflow(local: bool, methods: set) -> SimpleNamespace:
        return SimpleNamespace(
            local_exec=local, deployment_settings=SimpleNamespace(deployment_method=methods)
        )

    from snakemake.settings.types import DeploymentMethod

    assert warm_start.wanted(workflow(True, set()), True) == (sys.platform == "linux")
    assert not warm_start.wanted(workflow(True, set()), False)
    assert not warm_start.wanted(workflow(False, set()), True)
    assert not warm_start.wanted(workflow(True, {DeploymentMethod.CONDA}), True)
    assert not warm_start.wanted(workflow(True, {DeploymentMethod.APPTAINER}), True)
