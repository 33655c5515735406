"""Device and precision policy (model/device.py) and the GPU-path guards of the training loop,
tested on CPU: decisions with explicit hardware facts, the real training loop where it runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import yaml
from safetensors.torch import load_file
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from benchmarks.train_throughput import peak_tflops
from model.checkpoint import load_checkpoint
from model.condition import Condition, fingerprint
from model.data import SliceDataset, crop_and_mirror, epoch_plan
from model.device import (
    GPURequestedError,
    choose_precision,
    claim_gpu,
    cpu_flags,
    cpu_has_native_bf16,
    resolve_device,
)
from tests.conftest import slice_paths
from workflow_scripts.train.from_slices import train_from_slices
from workflow_scripts.train.jobs import requested_gpus
from workflow_scripts.train.training_set import load_training_set

ROOT = Path(__file__).resolve().parents[1]
COND = Condition("native", "pet", "l1_bce")


def tiny_cfg(**over) -> dict:
    cfg = yaml.safe_load((ROOT / "config.yaml").read_text())["train"]
    cfg.update(epochs=3, batch_size=4, ngf=8, ndf=8, device="cpu", checkpoint_every=1)
    cfg.update(over)
    return cfg


def weights(model_dir: Path) -> dict:
    return load_file(str(model_dir / "generator.safetensors"))


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# --- precision: the decision, on explicit facts ----------------------------------------------


@pytest.mark.parametrize(
    ("device", "cpu_bf16", "capability", "expected"),
    [
        ("cpu", True, None, "bf16"),  # AVX512-BF16 / AMX
        ("cpu", False, None, "fp32"),  # e.g. an AVX2-only or AVX512 without BF16 CPU
        ("cuda", False, (9, 0), "bf16"),  # H100
        ("cuda", False, (8, 0), "bf16"),  # A100
        ("cuda", False, (7, 5), "fp16"),  # T4: bf16 only emulated
        ("cuda", False, (7, 0), "fp16"),  # V100: bf16 only emulated
        ("cuda", True, (6, 1), "fp32"),  # Pascal: neither
    ],
)
def test_auto_precision_is_native_bf16_else_fp16_on_volta_turing_else_fp32(
    device, cpu_bf16, capability, expected
):
    got = choose_precision("auto", device, cpu_bf16=cpu_bf16, capability=capability)
    assert got == expected


def test_explicit_precision_is_honoured_and_bad_values_refused(caplog):
    assert choose_precision("fp32", "cpu", cpu_bf16=True) == "fp32"
    assert choose_precision("fp32", "cuda", capability=(9, 0)) == "fp32"
    assert choose_precision("bf16", "cuda", capability=(7, 0)) == "bf16"
    assert "only emulates bf16" in caplog.text
    with pytest.raises(ValueError, match="train.precision"):
        choose_precision("half", "cpu")


def test_cpu_flags_are_read_from_cpuinfo(tmp_path):
    x86 = tmp_path / "x86"
    x86.write_text("processor\t: 0\nflags\t\t: fpu sse avx512f avx512_bf16 avx512_vnni\n")
    arm = tmp_path / "arm"
    arm.write_text("processor\t: 0\nFeatures\t: fp asimd sve bf16 i8mm\n")
    old = tmp_path / "old"
    old.write_text("processor\t: 0\nflags\t\t: fpu sse avx2 avx512f avx512bw\n")
    assert cpu_has_native_bf16(cpu_flags(x86)) and cpu_has_native_bf16(cpu_flags(arm))
    assert not cpu_has_native_bf16(cpu_flags(old))  # AVX512 alone only emulates bf16
    assert cpu_flags(tmp_path / "absent") == frozenset()


# --- a job that requested a GPU and sees none fails, clearly ---------------------------------


def test_gpu_requested_but_absent_is_an_error_that_says_how_to_fix_it():
    with pytest.raises(GPURequestedError, match="CPU-only build.*CONDA_OVERRIDE_CUDA"):
        resolve_device("auto", 1, cuda_available=False, cuda_build=None)
    with pytest.raises(GPURequestedError, match="built for CUDA 12.6, but no device is visible"):
        resolve_device("auto", 1, cuda_available=False, cuda_build="12.6")
    with pytest.raises(GPURequestedError, match="train.device=cuda"):
        resolve_device("cuda", 0, cuda_available=False, cuda_build=None)
    with pytest.raises(GPURequestedError, match="train.device=cpu"):
        resolve_device("cpu", 1, cuda_available=True, cuda_build="12.6")
    assert resolve_device("auto", 0, cuda_available=False, cuda_build=None) == "cpu"
    assert resolve_device("auto", 1, cuda_available=True, cuda_build="12.6") == "cuda"
    assert resolve_device("cpu", 0, cuda_available=True, cuda_build="12.6") == "cpu"


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_training_job_that_requested_a_gpu_fails_on_this_cpu_machine(make_slices, tmp_path):
    files = slice_paths(make_slices({"01": "train"}))
    out = tmp_path / "m"
    with pytest.raises(GPURequestedError, match="requested 1 GPU"):
        train_from_slices(files, out, COND, tiny_cfg(device="auto"), gpus=1)
    assert not out.exists()  # failed before any work
    # the Snakemake job's request is its `gpu` resource (overridable), else train.gpus
    job = SimpleNamespace(resources=SimpleNamespace(gpu=1), config={"train": {"gpus": 0}})
    assert requested_gpus(job) == 1
    job = SimpleNamespace(resources=SimpleNamespace(), config={"train": {"gpus": 2}})
    assert requested_gpus(job) == 2


def test_local_jobs_claim_different_gpus(tmp_path):
    """Two jobs on one host with two GPUs get one each (the lock is per GPU UUID); a GPU held
    by a finished process is free again."""
    ids = ["GPU-aaaa", "GPU-bbbb"]
    script = (
        "import sys, time; from model.device import claim_gpu; "
        f"print(claim_gpu({ids!r}, sys.argv[1]), flush=True); time.sleep(30)"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    first = subprocess.Popen(
        [sys.executable, "-c", script, str(tmp_path)], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert first.stdout.readline().strip() == "0"
        assert claim_gpu(ids, tmp_path) == 1  # this process: the other GPU
    finally:
        first.kill()
        first.wait()
    assert claim_gpu(["GPU-aaaa"], tmp_path) == 0  # released by the kernel on kill


# --- bf16 and fp16 training: fp32 weights, resumable to the bit ------------------------------


def test_bf16_training_keeps_fp32_weights_and_records_the_precision(make_slices, tmp_path):
    files = slice_paths(make_slices({"01": "train", "02": "train"}))
    train_from_slices(files, tmp_path / "fp32", COND, tiny_cfg(epochs=1, precision="fp32"))
    train_from_slices(files, tmp_path / "bf16", COND, tiny_cfg(epochs=1, precision="bf16"))
    a, b = weights(tmp_path / "fp32"), weights(tmp_path / "bf16")
    floats = [v for v in (*a.values(), *b.values()) if v.is_floating_point()]
    assert floats and all(v.dtype == torch.float32 for v in floats)
    assert not same(a, b)  # autocast really ran in bf16
    state = load_checkpoint(tmp_path / "bf16" / "checkpoint.pt")
    assert all(v.dtype == torch.float32 for v in state["G"].values() if v.is_floating_point())
    run = json.loads((tmp_path / "bf16" / "train_config.json").read_text())["run"]
    assert run == {"device": "cpu", "precision": ["bf16"], "compiled": False}
    # the setting is part of the checkpoint fingerprint: a changed precision trains afresh
    cfg = tiny_cfg()
    assert fingerprint(COND, {**cfg, "precision": "fp32"}, ["01"], 32) != fingerprint(
        COND, {**cfg, "precision": "bf16"}, ["01"], 32
    )


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_resumed_run_is_bit_identical_at_the_same_precision(make_slices, tmp_path, precision):
    """fp16 also checkpoints its gradient scaler: it backs off from 65536 in the first epoch,
    so a resume that forgot it would skip steps and end elsewhere."""
    files = slice_paths(make_slices({"01": "train", "02": "train"}))
    cfg = tiny_cfg(precision=precision)
    train_from_slices(files, tmp_path / "whole", COND, cfg)
    stopped = train_from_slices(files, tmp_path / "cut", COND, cfg, stop_after_epochs=1)
    assert stopped == {"stopped_after_epoch": 1}
    state = load_checkpoint(tmp_path / "cut" / "resume" / "last.pt")
    if precision == "fp16":
        assert state["scaler"]["scale"] < 65536.0
    else:
        assert "scaler" not in state
    train_from_slices(files, tmp_path / "cut", COND, cfg)
    assert same(weights(tmp_path / "whole"), weights(tmp_path / "cut"))


# --- checkpoint interval: epochs or minutes ---------------------------------------------------


def test_time_based_checkpoints(make_slices, tmp_path):
    files = slice_paths(make_slices({"01": "train"}))
    rare = tiny_cfg(checkpoint_every=100, checkpoint_minutes=0)
    train_from_slices(files, tmp_path / "rare", COND, rare, stop_after_epochs=2)
    assert not (tmp_path / "rare" / "resume" / "last.pt").exists()
    timed = tiny_cfg(checkpoint_every=100, checkpoint_minutes=1e-9)  # due after every epoch
    train_from_slices(files, tmp_path / "timed", COND, timed, stop_after_epochs=2)
    assert load_checkpoint(tmp_path / "timed" / "resume" / "last.pt")["epoch"] == 1


# --- the loader: one host-to-device copy per epoch, nothing read back ------------------------


class CrossDeviceLog(TorchDispatchMode):
    """Every op whose tensors span two devices (a host<->device copy)."""

    def __init__(self):
        super().__init__()
        self.ops: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        tensors = [t for t in tree_flatten((args, kwargs, out))[0] if isinstance(t, torch.Tensor)]
        if len({t.device.type for t in tensors}) > 1:
            self.ops.append(str(func))
        return out


def test_loader_copies_to_the_device_once_per_epoch_and_never_reads_back(make_slices):
    """On the meta device any host read (.tolist(), int(), .item()) raises, as it would sync a
    GPU; host-to-device copies are counted: the set once, then one per epoch, whatever the
    number of batches."""
    files = slice_paths(make_slices({"01": "train", "02": "train"}))
    ts = load_training_set(files, "pet")
    ds = SliceDataset(ts.x, ts.y, augment=True, seed=3)
    per_epoch = []
    for epoch in range(2):
        with CrossDeviceLog() as log:
            batches = list(ds.batches(4, epoch, device="meta"))
        assert len(batches) == 8 and batches[0][0].device.type == "meta"
        per_epoch.append(len(log.ops))
    assert per_epoch == [3, 1]  # x, y and the plan; then the plan


def test_crop_and_mirror_is_pix2pix_jitter():
    """The one-gather crop + mirror equals cropping and flipping each image on its own."""
    torch.manual_seed(0)
    x, y = torch.rand(6, 2, 32, 32), torch.rand(6, 1, 32, 32)
    plan = epoch_plan(6, 32, seed=1, augment=True)
    assert plan[:, 3].sum() not in (0, 6)  # some mirrored, some not
    xa, ya = crop_and_mirror(x, y, plan[:, 1:3], plan[:, 3])
    big = torch.nn.functional.interpolate(
        torch.cat([x, y], 1), size=(36, 36), mode="bilinear", align_corners=False
    )
    for i, (oy, ox, flip) in enumerate(plan[:, 1:].tolist()):
        ref = big[i, :, oy : oy + 32, ox : ox + 32]
        ref = ref.flip(-1) if flip else ref
        assert torch.equal(xa[i], ref[:2]) and torch.equal(ya[i], ref[2:])


# --- torch.compile: a failing compiler falls back to eager -------------------------------------

SCRIPT = """
import logging, sys, yaml
logging.basicConfig(level=logging.WARNING)
from model.condition import Condition
from workflow_scripts.train.from_slices import train_from_slices
cfg = yaml.safe_load(open(sys.argv[3]))
train_from_slices(sys.argv[1].split(","), sys.argv[2], Condition("native", "pet", "l1_bce"), cfg)
"""


def test_compile_failure_falls_back_to_eager_with_a_warning(make_slices, tmp_path):
    """A node without a working C++ compiler (inductor's CPU backend needs one; an old GPU fails
    Triton alike): the job trains eager, warns, and ends with the weights of an eager run (the
    trial steps leave no trace)."""
    files = [str(f) for f in slice_paths(make_slices({"01": "train", "02": "train"}))]
    cfg = tiny_cfg(epochs=2, batch_size=6, compile="always", precision="fp32")
    cfg_file = tmp_path / "cfg.yaml"
    cfg_file.write_text(yaml.safe_dump(cfg))
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "OMP_NUM_THREADS": "1",
        "CXX": str(tmp_path / "no-such-compiler"),
        "TORCHINDUCTOR_CACHE_DIR": str(tmp_path / "inductor"),  # no cached kernels to reuse
    }
    out = tmp_path / "fallback"
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, ",".join(files), str(out), str(cfg_file)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "torch.compile failed" in proc.stderr and "training eager instead" in proc.stderr
    assert json.loads((out / "train_config.json").read_text())["run"]["compiled"] is False
    train_from_slices(files, tmp_path / "eager", COND, {**cfg, "compile": "never"})
    assert same(weights(out), weights(tmp_path / "eager"))


# --- the benchmark's MFU uses the right peak ---------------------------------------------------


def test_mfu_peaks_tell_h100_pcie_from_sxm():
    assert peak_tflops("NVIDIA H100 PCIe", "bf16") == 756.0
    assert peak_tflops("NVIDIA H100 80GB HBM3", "bf16") == 989.0  # SXM
    assert peak_tflops("NVIDIA H100 NVL", "bf16") == 835.0
    assert peak_tflops("NVIDIA H100 80GB HBM3", "fp32") == 495.0  # TF32 convolutions
    assert peak_tflops("Tesla V100-SXM2-32GB", "fp16") == 125.0
    assert peak_tflops("Some Future GPU", "bf16") is None
