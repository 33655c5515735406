"""The training checkpoint: what it holds, how it is written, read and checked for resuming.

A checkpoint (CHECKPOINT_FORMAT) is one torch file of plain tensors and lists: the run state
(both networks, both Adam states, the fp16 gradient scaler, the RNGs that drive dropout), the
epoch it ends, the loss history, the precisions the run trained at, and the fingerprint of its
settings (model/condition.py). It is written atomically and read with weights_only=True.
The same run state, copied in memory, lets torch.compile's trial steps leave no trace
(model/torch_compile.py).
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from model.atomic import atomic_path
from model.step import Pix2PixStep

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "spectsynth-pix2pix-v1"


class CheckpointError(RuntimeError):
    """A checkpoint that is not ours or is tampered with."""


def run_state(step: Pix2PixStep) -> dict:
    """The live state the run's next steps depend on (references, not copies): the plain
    networks (step.g may be a compiled wrapper sharing their parameters; the files get no
    "_orig_mod." prefixes), both Adam states, the fp16 scaler where it is on, the RNGs."""
    g, d = (getattr(m, "_orig_mod", m) for m in (step.g, step.d))
    state = {
        "G": g.state_dict(),
        "D": d.state_dict(),
        "opt_G": step.opt_g.state_dict(),
        "opt_D": step.opt_d.state_dict(),
        "rng_cpu": torch.get_rng_state(),
    }
    if step.scaler.is_enabled():
        state["scaler"] = step.scaler.state_dict()
    if step.device.type == "cuda":
        state["rng_cuda"] = torch.cuda.get_rng_state(step.device)
    return state


def restore_run_state(step: Pix2PixStep, state: dict) -> None:
    """Load a run_state (or a checkpoint) into `step`. A state without a scaler (saved at
    another precision) leaves the step's fresh; a CUDA state's GPU RNG is skipped on a CPU."""
    g, d = (getattr(m, "_orig_mod", m) for m in (step.g, step.d))
    g.load_state_dict(state["G"])
    d.load_state_dict(state["D"])
    step.opt_g.load_state_dict(state["opt_G"])
    step.opt_d.load_state_dict(state["opt_D"])
    if step.scaler.is_enabled() and "scaler" in state:
        step.scaler.load_state_dict(state["scaler"])
    torch.set_rng_state(state["rng_cpu"])
    if step.device.type == "cuda" and "rng_cuda" in state:
        torch.cuda.set_rng_state(state["rng_cuda"], step.device)


def checkpoint_state(
    fp: str, epoch: int, step: Pix2PixStep, history: list[dict], precisions: list[str]
) -> dict:
    """The checkpoint after (0-based) `epoch`: the run state and what the loop resumes with."""
    return {
        "format": CHECKPOINT_FORMAT,
        "fingerprint": fp,
        "epoch": epoch,
        **run_state(step),
        "history": history,
        "precisions": precisions,
    }


def save_checkpoint(state: dict, path: Path) -> None:
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_checkpoint(path: Path) -> dict:
    """Load with weights_only=True (no code from the file runs) and check it is ours."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise CheckpointError(
            f"{path}: refused ({type(err).__name__}: {str(err).splitlines()[0][:200]}); "
            "it is not a plain-tensor spectsynth checkpoint — delete it to start afresh"
        ) from err
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path}: not a spectsynth training checkpoint ({CHECKPOINT_FORMAT})")
    return state


def resumable_state(path: Path, fingerprint: str, name: str) -> dict | None:
    """The checkpoint to resume from, or None. One of other settings (a changed condition,
    subject list or hyper-parameter, which is why Snakemake reruns the job) is obsolete: training
    starts afresh and overwrites it at the first checkpoint. A foreign file is refused."""
    if not path.exists():
        return None
    state = load_checkpoint(path)
    if state.get("fingerprint") != fingerprint:
        log.warning(
            "%s: %s is from other settings (fingerprint %s, now %s): training afresh",
            name,
            path,
            state.get("fingerprint"),
            fingerprint,
        )
        return None
    return state
