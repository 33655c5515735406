"""Warm job starts for local runs: the heavy imports paid once per run, not once per job.

A job of this workflow is a fresh Python process (Snakemake's `script:`), and before it does any
work it imports its libraries: torch alone costs 1.6 s, scipy, nibabel, pandas and matplotlib
another 0.2-0.4 s each. Over the demo's ~560 jobs that was a quarter of all job CPU time. Here
one server process, started by the Snakefile for a local run, imports those libraries once
(never this workflow's own modules, so every job runs the code as it is on disk) and forks a
child per job. The job's own process (the launcher) hands the server its job object, working
directory, environment and stdin/stdout/stderr, waits, and exits with the child's status:
Snakemake sees the same process, files and exit codes as without the server.

- Cancelling the launcher (Snakemake stopping a job) stops the child: signals are forwarded,
  and a child whose launcher is gone ends itself.
- A launcher that finds no server, or a server of another Python (a `--use-conda` job), runs
  the job itself (cold), as does every job of a cluster run.
- Benchmarks: Snakemake measures a job's memory and CPU on the launcher's processes, so for a
  warm job its benchmark file has the right wall time but the launcher's memory and CPU. Each
  job's log says how it started (joblog.START), and the per-rule table leaves those columns
  empty for warm jobs: measure memory with `--config warm_start=false`.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import logging
import os
import pickle
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

SOCKET_ENV = "SPECTSYNTH_JOB_SERVER"  # the server's socket, set for the jobs of a local run
PYTHON_ENV = "SPECTSYNTH_JOB_SERVER_PYTHON"  # its interpreter's sys.prefix: jobs of another skip it
START_TIMEOUT_S = 30.0  # for the server to listen (an interpreter start, no heavy imports)
CONNECT_TIMEOUT_S = 120.0  # the server answers after its imports (~5 s) and one fork per job

# Imported by the server, in this order (a name that is not installed is skipped). The libraries
# this workflow's jobs import at start; matplotlib's non-interactive backend first, as the jobs
# set it.
PRELOAD = (
    "numpy",
    "scipy.ndimage",
    "scipy.stats",
    "scipy.spatial.transform",
    "nibabel",
    "pandas",
    "yaml",
    "matplotlib",
    "matplotlib.pyplot",
    "seaborn",
    "skimage.metrics",
    "skimage.filters",
    "skimage.feature",
    "statsmodels.stats.multitest",
    "statsmodels.stats.proportion",
    "torch",
    "torch.optim",
    "torch._dynamo",  # imported by the first optimizer a process builds: 1.8 s per train job
    "safetensors.torch",
    "nilearn.datasets",
    "nilearn.image",
    "nilearn.plotting",
    "numba",
    "trimesh",
    "brainextractor",
    "nipype.interfaces.base",
    "threadpoolctl",
    "snakemake.io",  # what unpickling the job object loads
    "snakemake.script",
)

_HEADER = struct.Struct("!Q")  # payload length
_INT = struct.Struct("!i")  # child pid, then its exit status


def preload() -> list[str]:
    """Import PRELOAD (and antspyx's registration parts, as registration jobs load them) into
    this process; this workflow's own modules are dropped again. The names imported."""
    loaded = []
    for name in PRELOAD:
        try:
            module = importlib.import_module(name)
        except Exception as err:  # noqa: BLE001 (absent or broken here: the job imports it)
            log.debug("not preloaded: %s (%s)", name, err)
            continue
        if name == "matplotlib":
            module.use("Agg")
        loaded.append(name)
    with contextlib.suppress(Exception):
        from workflow_scripts.preprocess.registration import _ants

        _ants()
        loaded.append("ants (registration parts)")
    with contextlib.suppress(Exception):  # numba sets up its compiler once per process (0.5 s
        import numba  # of every skull strip, which loads its kernels from numba's disk cache)

        numba.njit("int64(int64)")(lambda x: x + 1)
        loaded.append("numba (compiler set up)")
    for name in [m for m in sys.modules if m.split(".")[0] in ("workflow_scripts", "model")]:
        del sys.modules[name]
    return loaded


# ---------------------------------------------------------------- the launcher's side


def run_in_server(smk: Any) -> int | None:
    """Run this job in a child of the run's job server; its exit status, or None when there is
    no server for this interpreter (then the caller runs the job itself)."""
    path = os.environ.get(SOCKET_ENV)
    if not path or os.environ.get(PYTHON_ENV) != sys.prefix or not hasattr(socket, "send_fds"):
        return None
    payload = pickle.dumps(
        {
            "smk": smk,
            "cwd": str(Path.cwd()),
            "env": dict(os.environ),
            "argv": list(sys.argv),
            "path": list(sys.path),
        }
    )
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(CONNECT_TIMEOUT_S)
        sock.connect(path)
        socket.send_fds(sock, [_HEADER.pack(len(payload))], [0, 1, 2])
        sock.sendall(payload)
        pid = _INT.unpack(_recv_exactly(sock, _INT.size))[0]
    except OSError as err:  # no server (ended, never started): run cold
        sock.close()
        print(f"spectsynth: job server at {path} not used ({err}); running cold", file=sys.stderr)
        return None
    sock.settimeout(None)
    forward = lambda signum, _frame: _kill(pid, signum)  # noqa: E731
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, forward)
    try:
        return _INT.unpack(_recv_exactly(sock, _INT.size))[0]
    except OSError:
        print(f"spectsynth: job process {pid} ended without a status (killed?)", file=sys.stderr)
        return 1
    finally:
        sock.close()


def _kill(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("connection closed")
        data += chunk
    return data


# ---------------------------------------------------------------- the server's side


def serve(path: str, parent_pid: int) -> None:
    """Accept jobs on the socket `path` and fork a child for each, until `parent_pid` (the
    Snakemake process) is gone or SIGTERM arrives."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(f"{path}.new")
    listener.listen(64)  # jobs that connect during the imports wait in the backlog
    Path(f"{path}.new").rename(path)  # the path appears only once it takes connections
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children reap themselves
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches Snakemake, which stops jobs
    try:
        preload()
        listener.settimeout(1.0)
        while os.getppid() == parent_pid:
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(30.0)
                fds: list[int] = []
                try:
                    msg, fds, _flags, _addr = socket.recv_fds(conn, _HEADER.size, 3)
                    if len(fds) != 3 or len(msg) != _HEADER.size:
                        raise ConnectionError("no job header")
                    request = _recv_exactly(conn, _HEADER.unpack(msg)[0])
                except OSError as err:
                    log.warning("job server: bad request (%s)", err)
                    for fd in fds:
                        os.close(fd)
                    continue
                try:
                    if os.fork() == 0:
                        listener.close()
                        _child(conn, fds, request)  # never returns
                finally:
                    for fd in fds:
                        os.close(fd)
    finally:
        listener.close()
        Path(path).unlink(missing_ok=True)


def _child(conn: socket.socket, fds: list[int], request: bytes) -> None:
    status = 1
    try:
        for signum in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, signal.SIG_DFL)
        conn.settimeout(None)
        conn.sendall(_INT.pack(os.getpid()))  # first: the launcher reads a pid, then a status
        # the launcher never writes again: end of file means it is gone (cancelled, killed)
        threading.Thread(target=_end_with, args=(conn,), daemon=True).start()
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        job = pickle.loads(request)
        os.chdir(job["cwd"])
        os.environ.clear()
        os.environ.update(job["env"])
        sys.argv, sys.path[:] = job["argv"], job["path"]
        _as_if_started_here()
        from workflow_scripts.entry import run

        run(job["smk"], server_pid=os.getppid())
        status = 0
    except SystemExit as exit_:
        status = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    except BaseException:  # noqa: BLE001 (reported like an uncaught exception)
        traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        with contextlib.suppress(OSError):
            conn.sendall(_INT.pack(status))
        os._exit(status)


def _as_if_started_here() -> None:
    """What the server's libraries read from the environment when they were loaded, taken from
    the job's instead: Snakemake gives each job its thread count (OMP_NUM_THREADS,
    OPENBLAS_NUM_THREADS, ...: the BLAS and OpenMP pools already exist, sized for the server)
    and may give it a TMPDIR (Python caches the temporary folder once asked)."""
    tempfile.tempdir = None
    threads = os.environ.get("OMP_NUM_THREADS", "")
    if threads.isdigit() and int(threads) > 0:
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=int(threads))


def _end_with(conn: socket.socket) -> None:
    with contextlib.suppress(OSError):
        conn.recv(1)
    os._exit(1)


# ---------------------------------------------------------------- started by the Snakefile


class JobServer:
    """The server process of one Snakemake run; `environ` is what its jobs need to find it."""

    def __init__(self, python: str = sys.executable) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="spectsynth-jobs-"))
        self.socket = self.dir / "server.sock"
        self.process = subprocess.Popen(
            [python, "-m", "workflow_scripts.warm_start", str(self.socket), str(os.getpid())],
            cwd=Path(__file__).resolve().parent.parent,
            start_new_session=True,  # Ctrl-C goes to Snakemake, which cancels the jobs
            stdin=subprocess.DEVNULL,
        )
        self.environ = {SOCKET_ENV: str(self.socket), PYTHON_ENV: sys.prefix}
        # jobs start as soon as this returns: wait until the server listens (a fraction of a
        # second; it listens before its imports), or has failed (then jobs run cold)
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self.socket.exists() and self.process.poll() is None:
            if time.monotonic() > deadline:
                break
            time.sleep(0.01)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=10)
        with contextlib.suppress(OSError):
            self.socket.unlink(missing_ok=True)
            self.dir.rmdir()


def wanted(workflow: Any, enabled: bool) -> bool:
    """Whether a run should start a server: enabled, local, neither conda nor containers, on
    Linux (fork after these libraries' imports is safe there; macOS forbids it)."""
    if not enabled or sys.platform != "linux" or not hasattr(socket, "send_fds"):
        return False
    deployment = workflow.deployment_settings.deployment_method
    methods = {getattr(m, "name", str(m)).lower() for m in deployment}
    return bool(workflow.local_exec) and not methods & {"conda", "apptainer"}


_SERVERS: list[JobServer] = []


def start_for(workflow: Any, enabled: bool) -> JobServer | None:
    """Start the run's server when `wanted`; its address goes into this process's environment,
    which Snakemake's jobs inherit. It stops with stop_all (the Snakefile's onsuccess/onerror),
    at this process's exit, or by itself when this process is gone."""
    if not wanted(workflow, enabled):
        return None
    if not _SERVERS:
        atexit.register(stop_all)
    server = JobServer()
    _SERVERS.append(server)
    os.environ.update(server.environ)
    return server


def stop_all() -> None:
    """Stop the servers this process started; later jobs run cold."""
    for key in (SOCKET_ENV, PYTHON_ENV):
        os.environ.pop(key, None)
    while _SERVERS:
        _SERVERS.pop().stop()


if __name__ == "__main__":
    serve(sys.argv[1], int(sys.argv[2]))
