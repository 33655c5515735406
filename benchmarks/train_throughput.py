"""Training throughput of the full pix2pix step (G + D, batch 8) and what the loop adds to it.

    python benchmarks/train_throughput.py [--threads 2] [--sizes 128 256] [--ngf 64] [--steps 3]
                                          [--reference /path/to/pix2pix/models]

Prints, per image size and device, images/s of spectsynth's step (model.step.Pix2PixStep with
unet_S, ngf (default 64), PatchGAN ndf = ngf) in fp32 and under the mixed precision that
train.precision: auto picks there (CPU: bf16, timed even where the CPU only emulates it, which
the line then says; CUDA: bf16, or fp16 on compute capability 7.x), side by side and interleaved
round by round; GFLOP per step (torch.utils.flop_counter), achieved GFLOP/s and, on a GPU, the
model FLOP utilisation against that GPU's dense peak for the precision; then the loop's overheads
relative to the step: the batch loader (index the resident set, jitter, mirror) and one
checkpoint of the full state, amortised over an epoch of the paper's size (3,000 slices = 375
steps at batch 8).

--timer cpu: time steps by the process's CPU seconds instead of the wall clock, for a shared
machine where other jobs take cores (use it with --threads 1: OpenMP threads that wait spin,
so CPU time overstates the work of more than one).

--reference: a folder holding `networks.py` of junyanz/pytorch-CycleGAN-and-pix2pix (kept
outside this repository). Its unet_S generator and basic PatchGAN are then trained with the
reference's update order (its pix2pix_model.optimize_parameters, written out below), batch 8,
in the same process, interleaved round by round with spectsynth's step, so both see the same
machine state; the ratio is spectsynth / reference images/s.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import tempfile
import time
from pathlib import Path

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from model.checkpoint import run_state, save_checkpoint
from model.data import crop_and_mirror, epoch_plan
from model.device import (
    AUTOCAST_DTYPES,
    choose_precision,
    cpu_flags,
    cpu_has_native_bf16,
    cuda_capability,
)
from model.networks import PatchDiscriminator, UNetGenerator, init_weights
from model.step import Pix2PixStep, make_optimizers
from model.torch_compile import compile_or_eager, use_compile

CFG = {"lambda_l1": 100.0, "lambda_ssim": 10.0}
PAPER_STEPS_PER_EPOCH = 3000 // 8
# Dense peaks in TFLOPS (vendor data sheets, no sparsity) for the model FLOP utilisation on
# CUDA: (name parts, bf16/fp16 tensor cores, fp32 convolutions as torch runs them: TF32 tensor
# cores from Ampere on, plain fp32 before). First match wins: specific variants first (the
# H100 PCIe card peaks 24% below the SXM module; "A10" is in "A100", "L4" in "L40S").
PEAKS_TFLOPS = [
    (("H100", "PCIe"), 756.0, 378.0),
    (("H100", "NVL"), 835.0, 418.0),
    (("H100",), 989.0, 495.0),  # SXM ("H100 80GB HBM3")
    (("H200", "NVL"), 835.0, 418.0),
    (("H200",), 989.0, 495.0),
    (("A100",), 312.0, 156.0),
    (("L40S",), 362.0, 183.0),
    (("L40",), 181.0, 90.5),
    (("A10",), 125.0, 62.5),
    (("L4",), 121.0, 60.0),
    (("V100", "PCIe"), 112.0, 14.0),
    (("V100",), 125.0, 15.7),  # SXM2; fp16 only (bf16 is emulated there)
    (("T4",), 65.0, 8.1),
]


def peak_tflops(gpu_name: str, precision: str) -> float | None:
    """The dense peak of a GPU (by its CUDA device name) for a precision, or None if unknown."""
    for parts, half, single in PEAKS_TFLOPS:
        if all(p in gpu_name for p in parts):
            return single if precision == "fp32" else half
    return None


def batch(size: int, device: torch.device, in_ch: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.rand(8, in_ch, size, size, device=device) * 2 - 1
    y = torch.rand(8, 1, size, size, device=device) * 2 - 1
    return x, y


def make_step(size: int, device: torch.device, precision: str, ngf: int = 64) -> Pix2PixStep:
    torch.manual_seed(0)
    g = init_weights(UNetGenerator(1, 1, size, ngf)).to(device)
    d = init_weights(PatchDiscriminator(2, ngf)).to(device)
    if device.type == "cuda":
        g, d = g.to(memory_format=torch.channels_last), d.to(memory_format=torch.channels_last)
    opt_g, opt_d = make_optimizers(g, d, 1e-4, 0.5)
    dtype = AUTOCAST_DTYPES[precision]
    step = Pix2PixStep(g, d, opt_g, opt_d, CFG, use_ssim=False, dtype=dtype)
    if use_compile({"compile": "auto"}, device):  # as training does by default
        compile_or_eager(step, [((8, 1, size, size), (8, 1, size, size))], f"{precision} step")
    return step


def make_reference_step(networks, size: int, device: torch.device, in_ch: int = 1):
    """The reference's networks with its update order (fp32, as it trains by default)."""
    torch.manual_seed(0)
    g = networks.define_G(in_ch, 1, 64, f"unet_{size}", norm="batch", use_dropout=True).to(device)
    d = networks.define_D(in_ch + 1, 64, "basic", norm="batch").to(device)
    opt_g = torch.optim.Adam(g.parameters(), lr=1e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), lr=1e-4, betas=(0.5, 0.999))
    bce, l1 = nn.BCEWithLogitsLoss(), nn.L1Loss()

    def gan(pred, real):
        return bce(pred, torch.full_like(pred, 1.0 if real else 0.0))

    def step(x, y):
        fake = g(x)
        for p in d.parameters():
            p.requires_grad = True
        opt_d.zero_grad()
        loss_d = 0.5 * (
            gan(d(torch.cat((x, fake.detach()), 1)), False) + gan(d(torch.cat((x, y), 1)), True)
        )
        loss_d.backward()
        opt_d.step()
        for p in d.parameters():
            p.requires_grad = False
        opt_g.zero_grad()
        loss_g = gan(d(torch.cat((x, fake), 1)), True) + l1(fake, y) * 100.0
        loss_g.backward()
        opt_g.step()
        return loss_g.detach()

    return step


def load_reference(folder: Path):
    spec = importlib.util.spec_from_file_location("reference_networks", folder / "networks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


TIMER = time.perf_counter  # --timer cpu: time.process_time


def timed_steps(step, x, y, device, steps: int) -> float:
    """Seconds per step (the loss tensor is read once at the end: no per-step host sync)."""
    sync(device)
    t0 = TIMER()
    for _ in range(steps):
        losses = step(x, y)
    losses.cpu()
    sync(device)
    return (TIMER() - t0) / steps


def loader_seconds(size: int, device: torch.device, batches: int) -> float:
    """The loader's work per batch: index the resident set, upscale, crop, mirror (the epoch's
    plan is drawn and copied to the device once, as model.data does)."""
    data_x = torch.rand(400, 1, size, size, device=device)
    data_y = torch.rand(400, 1, size, size, device=device)
    plan = torch.cat([epoch_plan(400, size, seed, True) for seed in range(batches // 50 + 1)])
    sync(device)
    t0 = time.perf_counter()
    plan = plan.to(device)
    for i in range(batches):
        rows = plan[8 * i : 8 * i + 8]
        crop_and_mirror(data_x[rows[:, 0]], data_y[rows[:, 0]], rows[:, 1:3], rows[:, 3])
    sync(device)
    return (time.perf_counter() - t0) / batches


def checkpoint_seconds(step: Pix2PixStep) -> tuple[float, float]:
    """Seconds and GB of one atomic save of the full training state (nets, Adam states, scaler,
    RNGs: what training checkpoints, less its small loss history)."""
    state = run_state(step)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        save_checkpoint(state, Path(tmp) / "last.pt")
        return time.perf_counter() - t0, (Path(tmp) / "last.pt").stat().st_size / 1e9


def mixed_precision(device: torch.device) -> tuple[str, bool]:
    """The precision train.precision: auto picks on this device (bf16 on any CPU, to time it
    where it is only emulated too), and whether the hardware has it natively."""
    if device.type == "cpu":
        return "bf16", cpu_has_native_bf16(cpu_flags())
    chosen = choose_precision("auto", "cuda", capability=cuda_capability(device))
    return ("fp16" if chosen == "fp32" else chosen), chosen != "fp32"


def bench(size: int, device: torch.device, steps: int, rounds: int, ngf: int, reference=None):
    mixed, _ = mixed_precision(device)
    precisions = ("fp32", mixed)
    step = {p: make_step(size, device, p, ngf) for p in precisions}
    x, y = batch(size, device)
    gflop = {}
    for p in precisions:
        with FlopCounterMode(display=False) as counter:
            step[p](x, y)  # also the warm-up
        gflop[p] = counter.get_total_flops() / 1e9
    ref_step = make_reference_step(reference, size, device) if reference else None
    if ref_step:
        ref_step(x, y)  # warm-up
    times = {p: [] for p in precisions}
    ref = []
    for _ in range(rounds):  # interleaved, so all see the same machine state
        for p in precisions:
            times[p].append(timed_steps(step[p], x, y, device, steps))
        if ref_step:
            ref.append(timed_steps(ref_step, x, y, device, steps))
    seconds = {p: statistics.median(t) for p, t in times.items()}
    loader = loader_seconds(size, device, steps * 4)
    ckpt, ckpt_gb = checkpoint_seconds(step["fp32"])
    out = {
        "precisions": precisions,
        "img_per_s": {p: 8 / seconds[p] for p in precisions},
        "gflop_per_step": gflop["fp32"],
        "gflop_per_s": {p: gflop[p] / seconds[p] for p in precisions},
        "loader_ms": 1000 * loader,
        "loader_pct": 100 * loader / seconds[mixed],
        "ckpt_s": ckpt,
        "ckpt_gb": ckpt_gb,
        "ckpt_pct": 100 * ckpt / (PAPER_STEPS_PER_EPOCH * seconds[mixed]),
    }
    if ref:
        out["ref_img_per_s"] = 8 / statistics.median(ref)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 256])
    parser.add_argument("--ngf", type=int, default=64, help="generator and discriminator width")
    parser.add_argument("--steps", type=int, default=3, help="steps per timed round (CPU)")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds (median is kept)")
    parser.add_argument("--reference", type=Path, help="folder with the reference networks.py")
    parser.add_argument(
        "--gpu-peak-tflops", type=float, help="dense peak for the MFU (else looked up by name)"
    )
    parser.add_argument("--timer", choices=["wall", "cpu"], default="wall")
    args = parser.parse_args()
    global TIMER
    TIMER = time.process_time if args.timer == "cpu" else time.perf_counter
    torch.set_num_threads(args.threads)
    reference = load_reference(args.reference) if args.reference else None
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    flags = sorted(f for f in cpu_flags() if "bf16" in f or f.startswith("amx"))
    print(
        f"torch {torch.__version__}, {args.threads} CPU threads, batch 8, ngf = ndf = {args.ngf}, "
        f"{args.timer} time; "
        f"CPU bf16 flags: {', '.join(flags) or 'none (bf16 emulated)'}"
    )
    for device in devices:
        mixed, native = mixed_precision(device)
        name = torch.cuda.get_device_properties(device).name if device.type == "cuda" else ""
        for size in args.sizes:
            steps = args.steps if device.type == "cpu" else 20
            r = bench(size, device, steps, args.rounds, args.ngf, reference)
            ips = r["img_per_s"]
            line = (
                f"{device.type} {size}x{size}: fp32 {ips['fp32']:.2f} img/s, {mixed} "
                f"{ips[mixed]:.2f} img/s ({ips[mixed] / ips['fp32']:.2f}x"
                f"{'' if native else f', {mixed} emulated'})"
            )
            if "ref_img_per_s" in r:
                ratio = ips["fp32"] / r["ref_img_per_s"]
                line += f"; reference (fp32) {r['ref_img_per_s']:.2f} img/s ({ratio:.2f}x)"
            line += f"; {r['gflop_per_step']:.0f} GFLOP/step"
            if device.type == "cuda":
                mfu = []
                for p in r["precisions"]:
                    peak = args.gpu_peak_tflops or peak_tflops(name, p)
                    if peak:
                        mfu.append(f"{p} {r['gflop_per_s'][p] / 10 / peak:.1f}% of {peak:.0f}")
                line += f" on {name}, MFU {', '.join(mfu) or 'n/a (peak unknown)'}"
            else:
                line += ", GFLOP/s " + ", ".join(
                    f"{p} {v:.1f}" for p, v in r["gflop_per_s"].items()
                )
            print(line)
            print(
                f"    loader {r['loader_ms']:.1f} ms/batch = {r['loader_pct']:.2f}% of a {mixed} "
                f"step; checkpoint {r['ckpt_gb']:.2f} GB in {r['ckpt_s']:.2f} s = "
                f"{r['ckpt_pct']:.3f}% of a {PAPER_STEPS_PER_EPOCH}-step {mixed} epoch"
            )
            if device.type == "cuda" and size == 256:
                hours = 1000 * PAPER_STEPS_PER_EPOCH * 8 / ips[mixed] / 3600
                print(
                    f"    paper setting (1000 epochs x 3,000 slices at 256^2, {mixed}): {hours:.1f} h"
                )


if __name__ == "__main__":
    main()
