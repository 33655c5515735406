"""Inference: load a trained generator and synthesise SPECT slices."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file
from torch import nn

from model.networks import UNetGenerator


def load_generator(model_dir: str | Path, device: str = "cpu") -> nn.Module:
    """The trained generator of a model folder, in eval mode (batch-norm running statistics,
    no dropout: the same input always gives the same synthetic SPECT)."""
    model_dir = Path(model_dir)
    meta = json.loads((model_dir / "train_config.json").read_text())
    g = UNetGenerator(meta["in_channels"], 1, meta["size"], meta["train"]["ngf"])
    g.load_state_dict(load_file(str(model_dir / "generator.safetensors"), device="cpu"))
    return g.to(device).eval()


@torch.inference_mode()
def synthesise(generator: nn.Module, x: np.ndarray, batch_size: int = 16) -> np.ndarray:
    """(N, C, S, S) inputs in [-1, 1] -> (N, S, S) synthetic SPECT slices in [-1, 1]."""
    device = next(generator.parameters()).device
    out = []
    for start in range(0, len(x), batch_size):
        batch = torch.from_numpy(
            np.ascontiguousarray(x[start : start + batch_size], dtype=np.float32)
        )
        out.append(generator(batch.to(device)).float().cpu().numpy()[:, 0])
    return np.concatenate(out) if out else np.zeros((0, *x.shape[2:]), np.float32)


@torch.inference_mode()
def synthesise_stochastic(
    generator: nn.Module, x: np.ndarray, passes: int, seed: int = 0, batch_size: int = 16
) -> np.ndarray:
    """(passes, N, S, S) synthetic slices with the generator's dropout active (batch norm keeps
    its running statistics): Monte Carlo dropout, whose spread is the uncertainty map."""
    dropouts = [m for m in generator.modules() if isinstance(m, nn.Dropout)]
    if not dropouts:
        raise ValueError(
            "the generator has no dropout layer to sample (U-Nets below 64 x 64 have none): "
            "use synthesis.uncertainty_passes: 1 or a larger slices.size"
        )
    torch.manual_seed(seed)
    try:
        for m in dropouts:
            m.train()
        return np.stack([synthesise(generator, x, batch_size) for _ in range(passes)])
    finally:
        for m in dropouts:
            m.eval()
