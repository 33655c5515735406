"""Inference: load a trained generator and synthesise SPECT slices."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file
from torch import nn

from model.device import AUTOCAST_DTYPES, cpu_flags, cpu_has_native_bf16, cuda_capability
from model.networks import UNetGenerator

# Images per forward pass: larger batches keep the deep, small layers busy (fp32 results do not
# depend on it; 96 vs 16: 1.1x fp32, 1.5x bf16 on the demo's generator, one CPU thread).
BATCH_SIZE = 96


def load_generator(model_dir: str | Path, device: str = "cpu") -> nn.Module:
    """The trained generator of a model folder, in eval mode (batch-norm running statistics,
    no dropout: the same input always gives the same synthetic SPECT)."""
    model_dir = Path(model_dir)
    meta = json.loads((model_dir / "train_config.json").read_text())
    g = UNetGenerator(meta["in_channels"], 1, meta["size"], meta["train"]["ngf"])
    g.load_state_dict(load_file(str(model_dir / "generator.safetensors"), device="cpu"))
    return g.to(device).eval()


def inference_precision(trained: str, device: str | torch.device = "cpu") -> str:
    """The precision to run a generator at: the one it was trained at (its last, where a run
    resumed at another), where this device computes it natively; else fp32. bf16 and fp16 are
    autocast (weights stay fp32), as in training."""
    device = torch.device(device)
    if trained == "bf16":
        capability = cuda_capability(device)
        native = capability >= (8, 0) if capability else cpu_has_native_bf16(cpu_flags())
        return "bf16" if native else "fp32"
    return "fp16" if trained == "fp16" and device.type == "cuda" else "fp32"


@torch.inference_mode()
def synthesise(
    generator: nn.Module, x: np.ndarray, batch_size: int = BATCH_SIZE, precision: str = "fp32"
) -> np.ndarray:
    """(N, C, S, S) inputs in [-1, 1] -> (N, S, S) synthetic SPECT slices in [-1, 1]."""
    device = next(generator.parameters()).device
    dtype = AUTOCAST_DTYPES[precision]
    out = []
    for start in range(0, len(x), batch_size):
        batch = torch.from_numpy(
            np.ascontiguousarray(x[start : start + batch_size], dtype=np.float32)
        )
        with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            out.append(generator(batch.to(device)).float().cpu().numpy()[:, 0])
    return np.concatenate(out) if out else np.zeros((0, *x.shape[2:]), np.float32)


def shift(a: np.ndarray, dx: int, dy: int, fill: float) -> np.ndarray:
    """Shift the last two axes by (dx, dy) pixels, filling what comes in with `fill`."""
    out = np.full_like(a, fill)
    h, w = a.shape[-2:]
    out[..., max(dx, 0) : h + min(dx, 0), max(dy, 0) : w + min(dy, 0)] = a[
        ..., max(-dx, 0) : h + min(-dx, 0), max(-dy, 0) : w + min(-dy, 0)
    ]
    return out


def synthesise_augmented(
    generator: nn.Module, x: np.ndarray, shift_px: int = 2, precision: str = "fp32"
) -> np.ndarray:
    """(passes, N, S, S) synthetic slices under test-time augmentation: the input mirrored or not,
    and moved by 0 or +-shift_px pixels along each in-plane axis (10 passes; 2 with shift_px 0),
    each output moved back; pass 0 is the input unchanged (the synthesis itself). Their spread is
    the uncertainty map: how much the synthesis depends on where the anatomy lies in the window,
    the perturbations pix2pix trains with."""
    moves = [(0, 0)] + [m for d in (shift_px, -shift_px) for m in ((d, 0), (0, d)) if shift_px]
    passes = []
    for mirror in (False, True):
        for dx, dy in moves:
            xx = shift(x, dx, dy, -1.0)  # -1: the background of the scaled inputs
            xx = xx[..., ::-1, :] if mirror else xx
            p = synthesise(generator, np.ascontiguousarray(xx), precision=precision)
            p = p[..., ::-1, :] if mirror else p
            passes.append(shift(p, -dx, -dy, -1.0))
    return np.stack(passes)
