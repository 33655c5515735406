"""Where training runs and at what precision: the policy, in one place, knowing nothing of
Snakemake.

Facts about the machine are read at run time (`cpu_flags`, `cuda_capability`); the decisions
are pure functions of those facts (`resolve_device`, `choose_precision`), so they are tested
with explicit inputs on any machine.

Precision (`train.precision`): weights, optimiser states and checkpoints are always fp32; the
setting picks the autocast dtype of the forward passes.
  auto  CPU: bf16 where the CPU has it natively (AVX512-BF16 or AMX on x86, BF16 on Arm),
        else fp32. CUDA: bf16 on compute capability >= 8.0 (Ampere and later); fp16 with a
        gradient scaler on 7.x (V100, T4: they run bf16 only through slow emulation, although
        torch.cuda.is_bf16_supported() says True there); fp32 below 7.0.
  fp32 | bf16 | fp16  force one (fp16 always with a gradient scaler).
"""

from __future__ import annotations

import fcntl
import logging
import os
import tempfile
from pathlib import Path

import torch

log = logging.getLogger(__name__)

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
AUTOCAST_DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
# /proc/cpuinfo flags of native bf16 arithmetic: x86 AVX512-BF16 or AMX-BF16; Arm FEAT_BF16
NATIVE_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16", "bf16"})
ENV_HINT = (
    "With --use-conda the torch env is built where snakemake runs (usually a host without a "
    "GPU), so conda may pick pytorch's CPU build: build it for CUDA with, e.g., "
    "CONDA_OVERRIDE_CUDA=12.6 snakemake --use-conda --conda-create-envs-only ... "
    "(remove the old env under .snakemake/conda first)."
)


class GPURequestedError(RuntimeError):
    """The job asked for a GPU and sees none (it would otherwise train at CPU speed)."""


# --- facts ---------------------------------------------------------------------------------


def cpu_flags(cpuinfo: str | Path = "/proc/cpuinfo") -> frozenset[str]:
    """The CPU's feature flags as the kernel reports them (x86 `flags`, Arm `Features`);
    empty where there is no /proc/cpuinfo (then auto precision stays fp32)."""
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return frozenset()


def cpu_has_native_bf16(flags: frozenset[str] | set[str]) -> bool:
    return bool(NATIVE_BF16_FLAGS & set(flags))


def cuda_capability(device: torch.device) -> tuple[int, int] | None:
    return tuple(torch.cuda.get_device_capability(device)) if device.type == "cuda" else None


# --- decisions -----------------------------------------------------------------------------


def resolve_device(
    setting: str, gpus_requested: int, cuda_available: bool, cuda_build: str | None
) -> str:
    """'cpu' or 'cuda' for train.device (auto | cpu | cuda) in a job that requested
    `gpus_requested` GPUs. A job that requested a GPU and sees none fails here, at once, instead
    of training at CPU speed until its time limit. cuda_build: torch.version.cuda (None for a
    CPU build of torch)."""
    if setting not in ("auto", "cpu", "cuda"):
        raise ValueError(f"train.device must be auto, cpu or cuda (got {setting!r})")
    if gpus_requested > 0 and setting == "cpu":
        raise GPURequestedError(
            f"the job requested {gpus_requested} GPU(s) (train.gpus) but train.device=cpu: "
            "set train.gpus: 0 to train on CPU, or train.device: auto"
        )
    if (gpus_requested > 0 or setting == "cuda") and not cuda_available:
        asked = (
            f"the job requested {gpus_requested} GPU(s) (train.gpus)"
            if gpus_requested > 0
            else "train.device=cuda"
        )
        if cuda_build is None:
            why = f"this torch ({torch.__version__}) is a CPU-only build. {ENV_HINT}"
        else:
            why = (
                f"torch is built for CUDA {cuda_build}, but no device is visible "
                f"(CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', '<unset>')}): "
                "check that the job got a GPU (the cluster profile maps the `gpu` resource to "
                "--gres/--gpus) and that the node's driver works (nvidia-smi)."
            )
        raise GPURequestedError(
            f"{asked}, but CUDA is not available: {why} "
            "To train on CPU on purpose, set train.gpus: 0 (and train.device: auto or cpu)."
        )
    return "cuda" if setting == "cuda" or (setting == "auto" and cuda_available) else "cpu"


def choose_precision(
    setting: str,
    device_type: str,
    *,
    cpu_bf16: bool = False,
    capability: tuple[int, int] | None = None,
) -> str:
    """'fp32' | 'bf16' | 'fp16' for train.precision on this device (see the module docstring).
    An explicit choice is honoured, with a warning where the hardware only emulates it."""
    if setting not in PRECISIONS:
        raise ValueError(
            f"train.precision must be one of {', '.join(PRECISIONS)} (got {setting!r})"
        )
    cuda = device_type == "cuda"
    if cuda and capability is None:
        raise ValueError("a CUDA device needs its compute capability")
    native_bf16 = capability >= (8, 0) if cuda else cpu_bf16
    if setting == "auto":
        if native_bf16:
            return "bf16"
        return "fp16" if cuda and capability >= (7, 0) else "fp32"
    if setting == "bf16" and not native_bf16:
        where = f"compute capability {capability[0]}.{capability[1]}" if cuda else "this CPU"
        log.warning("train.precision=bf16 on %s, which only emulates bf16: slow", where)
    if setting == "fp16" and not cuda:
        log.warning("train.precision=fp16 on CPU: supported, but slow (meant for tests)")
    return setting


# --- several local jobs, several GPUs ---------------------------------------------------------

_claimed: list = []  # open lock files: held until the process ends


def claim_gpu(ids: list[str], lock_dir: str | Path | None = None) -> int:
    """Index of a visible GPU that no other spectsynth job on this host holds, which this
    process then holds until it ends (an flock, released by the kernel even on SIGKILL).

    Locally Snakemake starts as many GPU jobs as the `gpu` resource allows (profiles/default)
    but does not say which GPU each one gets; without this they would all use cuda:0. ids: the
    GPUs' UUIDs (unique per physical GPU, so jobs that see different GPUs under SLURM's
    CUDA_VISIBLE_DEVICES never contend). With every GPU held, the first is shared (warned).
    """
    lock_dir = Path(lock_dir or tempfile.gettempdir())
    for index, uid in enumerate(ids):
        handle = (lock_dir / f"spectsynth-gpu-{uid}.lock").open("a")  # noqa: SIM115 (held)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            continue
        _claimed.append(handle)
        return index
    log.warning(
        "all %d visible GPU(s) are held by other spectsynth jobs on this host: sharing cuda:0 "
        "(limit concurrent GPU jobs with the `gpu` resource, e.g. --resources gpu=%d)",
        len(ids),
        len(ids),
    )
    return 0


def training_device(setting: str, gpus_requested: int = 0) -> torch.device:
    """The device a training job uses: resolve_device on this machine's facts, then on CUDA a
    GPU that no other local job holds."""
    kind = resolve_device(setting, gpus_requested, torch.cuda.is_available(), torch.version.cuda)
    if kind == "cpu":
        return torch.device("cpu")
    n = torch.cuda.device_count()
    ids = [str(getattr(torch.cuda.get_device_properties(i), "uuid", i)) for i in range(n)]
    index = claim_gpu(ids) if n > 1 else 0
    torch.cuda.set_device(index)
    return torch.device("cuda", index)


def training_precision(setting: str, device: torch.device) -> str:
    """choose_precision on this machine's facts."""
    return choose_precision(
        setting,
        device.type,
        cpu_bf16=cpu_has_native_bf16(cpu_flags()),
        capability=cuda_capability(device),
    )
