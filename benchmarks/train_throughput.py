"""Training throughput of the full pix2pix step (G + D, batch 8) and the loader's share of it.

    python benchmarks/train_throughput.py [--threads 2] [--sizes 128 256] [--steps 3]

Prints images/s, GFLOP per step (torch.utils.flop_counter) and achieved GFLOP/s per size, on
CPU and, when present, on CUDA (bf16 autocast, channels_last, data on the device); and the time
the batch loader (jitter + mirror, from the in-memory training set) adds per step.
Reference measured on this 2-core machine type (junyanz/pytorch-CycleGAN-and-pix2pix, same
networks, batch 8, 2 threads): 0.67 img/s at 256x256 (~685 GFLOP/step), 2.5 img/s at 128x128.
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from model.data import jitter_and_mirror
from model.networks import PatchDiscriminator, UNetGenerator, init_weights
from model.train import Pix2PixStep, amp_dtype

CFG = {"lambda_l1": 100.0, "lambda_ssim": 10.0}
REFERENCE_IMG_S = {256: 0.67, 128: 2.5}


def make_step(
    size: int, device: torch.device, in_ch: int = 1
) -> tuple[Pix2PixStep, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    g = init_weights(UNetGenerator(in_ch, 1, size, 64)).to(device)
    d = init_weights(PatchDiscriminator(in_ch + 1, 64)).to(device)
    if device.type == "cuda":
        g, d = g.to(memory_format=torch.channels_last), d.to(memory_format=torch.channels_last)
    opt_g = torch.optim.Adam(g.parameters(), lr=1e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), lr=1e-4, betas=(0.5, 0.999))
    step = Pix2PixStep(g, d, opt_g, opt_d, CFG, use_ssim=False, dtype=amp_dtype(device))
    x = torch.rand(8, in_ch, size, size, device=device) * 2 - 1
    y = torch.rand(8, 1, size, size, device=device) * 2 - 1
    return step, x, y


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def bench(size: int, device: torch.device, steps: int) -> dict:
    step, x, y = make_step(size, device)
    with FlopCounterMode(display=False) as counter:
        step(x, y)
    gflop = counter.get_total_flops() / 1e9
    sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        losses = step(x, y)
    losses.cpu()
    sync(device)
    seconds = (time.perf_counter() - t0) / steps
    # the loader's work per batch: index the resident set, upscale, crop, mirror
    data_x = torch.rand(400, 1, size, size, device=device)
    data_y = torch.rand(400, 1, size, size, device=device)
    gen = torch.Generator().manual_seed(0)
    t1 = time.perf_counter()
    for _ in range(steps * 4):
        idx = torch.randperm(400, generator=gen)[:8].to(device)
        jitter_and_mirror(data_x[idx], data_y[idx], gen)
    sync(device)
    loader = (time.perf_counter() - t1) / (steps * 4)
    return {
        "size": size,
        "device": device.type,
        "img_per_s": 8 / seconds,
        "step_s": seconds,
        "gflop_per_step": gflop,
        "gflop_per_s": gflop / seconds,
        "loader_ms_per_batch": 1000 * loader,
        "loader_share_percent": 100 * loader / (seconds + loader),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 256])
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    print(f"torch {torch.__version__}, {args.threads} CPU threads")
    for device in devices:
        for size in args.sizes:
            r = bench(size, device, args.steps if device.type == "cpu" else 20)
            ref = REFERENCE_IMG_S.get(size) if device.type == "cpu" else None
            parity = f", {r['img_per_s'] / ref:.2f}x reference ({ref} img/s)" if ref else ""
            print(
                f"{device.type} {size}x{size}: {r['img_per_s']:.2f} img/s{parity}; "
                f"{r['gflop_per_step']:.0f} GFLOP/step, {r['gflop_per_s']:.1f} GFLOP/s; "
                f"loader {r['loader_ms_per_batch']:.1f} ms/batch ({r['loader_share_percent']:.1f}% of a step)"
            )


if __name__ == "__main__":
    main()
