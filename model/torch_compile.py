"""torch.compile for the training step: whether to use it (train.compile) and trying it first.

Compiling is tried on one full step per batch shape before training starts; where it fails (no
C compiler, a GPU too old for Triton) training goes on eager, with a warning. The trial steps
leave no trace: the run state they touch is copied before and restored after.
"""

from __future__ import annotations

import copy
import logging

import torch

from model.checkpoint import restore_run_state, run_state
from model.data import SliceDataset
from model.step import Pix2PixStep

log = logging.getLogger(__name__)


def use_compile(cfg: dict, device: torch.device) -> bool:
    """torch.compile the networks: `auto` on CUDA only (on CPU it did not pay off here)."""
    setting = cfg.get("compile", "auto")
    return setting == "always" or (setting == "auto" and device.type == "cuda")


def batch_shapes(data: SliceDataset, batch_size: int) -> list[tuple[tuple, tuple]]:
    """The (input, target) shapes of an epoch's batches: full ones and the shorter last one."""
    n, c, s, _ = data.x.shape
    sizes = ([batch_size] if n >= batch_size else []) + ([n % batch_size] if n % batch_size else [])
    return [((b, c, s, s), (b, 1, s, s)) for b in sizes]


def compile_or_eager(step: Pix2PixStep, shapes: list[tuple[tuple, tuple]], name: str) -> bool:
    """Switch `step` to torch.compile'd networks (fixed shapes) if one full step per batch shape
    compiles and runs; else leave it eager, with a warning. Compiling happens here, up front,
    not at the first batch (or at the end of the first epoch, for the shorter last batch), and
    every state the trial steps touch (weights, batch-norm statistics, optimiser and scaler
    states, RNGs) is restored, so the run goes on as if they had not happened."""
    g, d = step.g, step.d
    saved = copy.deepcopy(run_state(step))
    step.g, step.d = torch.compile(g, dynamic=False), torch.compile(d, dynamic=False)
    try:
        for x_shape, y_shape in shapes:
            step(torch.zeros(x_shape, device=step.device), torch.zeros(y_shape, device=step.device))
        ok = True
    except Exception as err:  # any failure of the compiler stack: fall back, never die
        log.warning(
            "%s: torch.compile failed (%s: %s); training eager instead (train.compile: never "
            "silences this)",
            name,
            type(err).__name__,
            (str(err).strip().splitlines() or [""])[0][:300],
        )
        step.g, step.d = g, d
        ok = False
    restore_run_state(step, saved)
    # the trial steps' gradients and D's frozen flag are not run state; reset them too
    for p in (*g.parameters(), *d.parameters()):
        p.grad = None
    d.requires_grad_(True)
    return ok
