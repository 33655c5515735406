"""Training throughput of the full pix2pix step (G + D, batch 8) and what the loop adds to it.

    python benchmarks/train_throughput.py [--threads 2] [--sizes 128 256] [--steps 3]
                                          [--reference /path/to/pix2pix/models]

Prints, per image size and device, images/s of spectsynth's step (model.train.Pix2PixStep with
the default networks: unet_S, ngf 64, PatchGAN ndf 64), GFLOP per step (torch.utils.flop_counter)
and achieved GFLOP/s; then the loop's overheads relative to the step: the batch loader (index
the resident set, jitter, mirror) and the per-epoch checkpoint, amortised over an epoch of the
paper's size (3,000 slices = 375 steps at batch 8).

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

from model.data import jitter_and_mirror
from model.networks import PatchDiscriminator, UNetGenerator, init_weights
from model.train import Pix2PixStep, amp_dtype, save_checkpoint, use_compile

CFG = {"lambda_l1": 100.0, "lambda_ssim": 10.0}
PAPER_STEPS_PER_EPOCH = 3000 // 8
# dense bf16 tensor-core peaks (vendor data sheets) for the model FLOP utilisation on CUDA
BF16_PEAK_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "V100": 125.0}


def batch(size: int, device: torch.device, in_ch: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.rand(8, in_ch, size, size, device=device) * 2 - 1
    y = torch.rand(8, 1, size, size, device=device) * 2 - 1
    return x, y


def make_step(size: int, device: torch.device, in_ch: int = 1) -> Pix2PixStep:
    torch.manual_seed(0)
    g = init_weights(UNetGenerator(in_ch, 1, size, 64)).to(device)
    d = init_weights(PatchDiscriminator(in_ch + 1, 64)).to(device)
    if device.type == "cuda":
        g, d = g.to(memory_format=torch.channels_last), d.to(memory_format=torch.channels_last)
    opt_g = torch.optim.Adam(g.parameters(), lr=1e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), lr=1e-4, betas=(0.5, 0.999))
    if use_compile({"compile": "auto"}, device):  # as training does by default
        g, d = torch.compile(g), torch.compile(d)
    return Pix2PixStep(g, d, opt_g, opt_d, CFG, use_ssim=False, dtype=amp_dtype(device))


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


def timed_steps(step, x, y, device, steps: int) -> float:
    """Seconds per step (the loss tensor is read once at the end: no per-step host sync)."""
    sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        losses = step(x, y)
    losses.cpu()
    sync(device)
    return (time.perf_counter() - t0) / steps


def loader_seconds(size: int, device: torch.device, batches: int) -> float:
    """The loader's work per batch: index the resident set, upscale, crop, mirror."""
    data_x = torch.rand(400, 1, size, size, device=device)
    data_y = torch.rand(400, 1, size, size, device=device)
    gen = torch.Generator().manual_seed(0)
    sync(device)
    t0 = time.perf_counter()
    for _ in range(batches):
        idx = torch.randperm(400, generator=gen)[:8].to(device)
        jitter_and_mirror(data_x[idx], data_y[idx], gen)
    sync(device)
    return (time.perf_counter() - t0) / batches


def checkpoint_seconds(step: Pix2PixStep) -> float:
    """One atomic save of the full training state (both nets and both Adam states)."""
    state = {
        "G": step.g.state_dict(),
        "D": step.d.state_dict(),
        "opt_G": step.opt_g.state_dict(),
        "opt_D": step.opt_d.state_dict(),
    }
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        save_checkpoint(state, Path(tmp) / "last.pt")
        return time.perf_counter() - t0


def bench(size: int, device: torch.device, steps: int, rounds: int, reference=None) -> dict:
    step = make_step(size, device)
    x, y = batch(size, device)
    with FlopCounterMode(display=False) as counter:
        step(x, y)  # also the warm-up
    gflop = counter.get_total_flops() / 1e9
    ref_step = make_reference_step(reference, size, device) if reference else None
    if ref_step:
        ref_step(x, y)  # warm-up
    ours, ref = [], []
    for _ in range(rounds):  # interleaved, so both see the same machine state
        ours.append(timed_steps(step, x, y, device, steps))
        if ref_step:
            ref.append(timed_steps(ref_step, x, y, device, steps))
    seconds = statistics.median(ours)
    loader = loader_seconds(size, device, steps * 4)
    ckpt = checkpoint_seconds(step)
    epoch = PAPER_STEPS_PER_EPOCH * seconds
    out = {
        "img_per_s": 8 / seconds,
        "gflop_per_step": gflop,
        "gflop_per_s": gflop / seconds,
        "loader_ms": 1000 * loader,
        "loader_pct": 100 * loader / seconds,
        "ckpt_s": ckpt,
        "ckpt_pct": 100 * ckpt / epoch,
    }
    if ref:
        out["ref_img_per_s"] = 8 / statistics.median(ref)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 256])
    parser.add_argument("--steps", type=int, default=3, help="steps per timed round (CPU)")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds (median is kept)")
    parser.add_argument("--reference", type=Path, help="folder with the reference networks.py")
    parser.add_argument(
        "--gpu-peak-tflops", type=float, help="dense bf16 peak for the MFU (else looked up)"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    reference = load_reference(args.reference) if args.reference else None
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    print(f"torch {torch.__version__}, {args.threads} CPU threads, batch 8, ngf = ndf = 64")
    for device in devices:
        for size in args.sizes:
            steps = args.steps if device.type == "cpu" else 20
            r = bench(size, device, steps, args.rounds, reference)
            line = f"{device.type} {size}x{size}: spectsynth {r['img_per_s']:.2f} img/s"
            if "ref_img_per_s" in r:
                ratio = r["img_per_s"] / r["ref_img_per_s"]
                line += f", reference {r['ref_img_per_s']:.2f} img/s ({ratio:.2f}x)"
            line += f"; {r['gflop_per_step']:.0f} GFLOP/step, {r['gflop_per_s']:.1f} GFLOP/s"
            if device.type == "cuda":
                name = torch.cuda.get_device_properties(device).name
                peak = args.gpu_peak_tflops or next(
                    (v for k, v in BF16_PEAK_TFLOPS.items() if k in name), None
                )
                mfu = f", MFU {r['gflop_per_s'] / 10 / peak:.1f}%" if peak else ""
                line += f" on {name}{mfu}"
            print(line)
            print(
                f"    loader {r['loader_ms']:.1f} ms/batch = {r['loader_pct']:.2f}% of a step; "
                f"checkpoint {r['ckpt_s']:.2f} s = {r['ckpt_pct']:.3f}% of a "
                f"{PAPER_STEPS_PER_EPOCH}-step epoch"
            )
            if device.type == "cuda" and size == 256:
                hours = 1000 * PAPER_STEPS_PER_EPOCH * 8 / r["img_per_s"] / 3600
                print(f"    paper setting (1000 epochs x 3,000 slices at 256^2): {hours:.1f} h")


if __name__ == "__main__":
    main()
