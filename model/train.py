"""The training loop of one pix2pix condition: resumable, seeded, CPU or CUDA, fp32 or mixed
precision.

The training pairs come as arrays (model/data.py's SliceDataset); reading slice files, checking
splits and recording the training subjects are the workflow's (workflow_scripts/train/from_slices.py).
What the loop uses lives beside it: the condition and its fingerprint (model/condition.py), the
networks, optimisers and one update (model/step.py), torch.compile (model/torch_compile.py), the
checkpoint (model/checkpoint.py), validation scores (model/validation.py) and the model folder's
files (model/outputs.py).

Resuming: after every `checkpoint_every` epochs, or once `checkpoint_minutes` have passed since
the last save, the full state (both networks, both Adam states, the fp16 gradient scaler, the
global RNG that drives dropout, the loss history) is written atomically to
`<model_dir>/resume/last.pt`. That folder is not a Snakemake output, so it survives a killed or
failed job; rerunning the job continues from it. Batches are a pure function of (seed, epoch)
(model/data.py), so a resumed run ends with the same weights as an uninterrupted one at the same
precision on CPU.

Device and precision policy: model/device.py (train.device, train.precision; a job that asked
for a GPU and sees none fails at once).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from model.checkpoint import checkpoint_state, restore_run_state, resumable_state, save_checkpoint
from model.condition import Condition, fingerprint
from model.data import SliceDataset
from model.device import AUTOCAST_DTYPES, training_device, training_precision
from model.networks import count_parameters
from model.outputs import write_outputs
from model.step import LOSS_COLUMNS, Pix2PixStep, build_networks, lr_factor, make_optimizers
from model.torch_compile import batch_shapes, compile_or_eager, use_compile
from model.validation import validation_scores

log = logging.getLogger(__name__)


def train_condition(
    data: SliceDataset,
    model_dir: str | Path,
    cond: Condition,
    cfg: dict,
    *,
    subjects: Sequence[str],
    threads: int = 1,
    gpus: int = 0,
    validation: Sequence[tuple[np.ndarray, np.ndarray]] | None = None,
    stop_after_epochs: int | None = None,
) -> dict:
    """Train (or resume) one condition on `data`; writes the final files into model_dir.

    cond: its context must be the data's (in_channels must match); subjects: who the slices
    come from (part of what a checkpoint must match to be resumed). validation: (inputs (N, C, S, S), targets (N, [1,] S, S)) per held-out
    subject, scored every `validate_every` epochs. gpus: the GPUs the job requested (its `gpu`
    resource); with none visible it fails at once. stop_after_epochs: end the process-level run
    early after that many epochs of *this call* (used by tests to simulate an interruption at an
    epoch boundary); the final files are then not written.
    """
    model_dir = Path(model_dir)
    if cond.in_channels != data.in_channels:
        raise ValueError(
            f"{cond.name}: the model takes {cond.in_channels} input channels (context "
            f"{cond.context}), the training slices have {data.in_channels}"
        )
    # the batch order and augmentation are part of what a resumed run must repeat
    if (data.seed, data.augment) != (cfg["seed"], cfg["augment"]):
        raise ValueError(
            f"{cond.name}: the dataset's seed/augment ({data.seed}, {data.augment}) are not the "
            f"settings' ({cfg['seed']}, {cfg['augment']})"
        )
    torch.set_num_threads(max(1, int(threads)))
    device = training_device(cfg["device"], gpus)
    precision = training_precision(cfg.get("precision", "auto"), device)
    dtype = AUTOCAST_DTYPES[precision]
    torch.manual_seed(cfg["seed"])
    subjects = list(subjects)
    size = data.size
    g, d = build_networks(cond, size, cfg)
    g, d = g.to(device), d.to(device)
    if device.type == "cuda":
        g, d = g.to(memory_format=torch.channels_last), d.to(memory_format=torch.channels_last)
    opt_g, opt_d = make_optimizers(g, d, cfg["lr"], cfg["beta1"])
    step = Pix2PixStep(g, d, opt_g, opt_d, cfg, use_ssim=cond.loss == "l1_bce_ssim", dtype=dtype)
    fp = fingerprint(cond, cfg, subjects, size)
    resume_path = model_dir / "resume" / "last.pt"
    history: list[dict] = []
    precisions: list[str] = []
    start = 0
    state = resumable_state(resume_path, fp, cond.name)
    if state is not None:
        restore_run_state(step, state)
        history = list(state["history"])
        precisions = list(state.get("precisions", []))
        start = int(state["epoch"]) + 1
        log.info("%s: resumed from %s after epoch %d", cond.name, resume_path, start)
        if precisions and precisions[-1] != precision:
            log.warning(
                "%s: epochs 1-%d ran at %s, this node runs %s (train.precision=%s): the result "
                "is not bit-identical to an uninterrupted run; set train.precision to fix it",
                cond.name,
                start,
                precisions[-1],
                precision,
                cfg.get("precision", "auto"),
            )
    if not precisions or precisions[-1] != precision:
        precisions.append(precision)
    # the step runs compiled modules where asked and where compiling works (tried on one step
    # per batch shape first); they share parameters with g and d, which are what gets
    # checkpointed and saved (no "_orig_mod." prefixes in the files)
    compiled = use_compile(cfg, device) and compile_or_eager(
        step, batch_shapes(data, cfg["batch_size"]), cond.name
    )
    total = cfg["epochs"] + cfg["epochs_decay"]
    log.info(
        "%s: %d slices from %d subjects, %dx%d, G %d / D %d parameters, device %s, %s%s, "
        "%d threads",
        cond.name,
        len(data),
        len(subjects),
        size,
        size,
        count_parameters(g),
        count_parameters(d),
        device,
        precision,
        ", compiled" if compiled else "",
        torch.get_num_threads(),
    )
    run_start = last_save = time.perf_counter()
    every_s = 60.0 * cfg.get("checkpoint_minutes", 0)
    epochs_this_call = 0
    for epoch in range(start, total):
        t0 = time.perf_counter()
        for opt in (opt_g, opt_d):
            for group in opt.param_groups:
                group["lr"] = cfg["lr"] * lr_factor(epoch, cfg["epochs"], cfg["epochs_decay"])
        g.train()
        d.train()
        sums = torch.zeros(len(LOSS_COLUMNS), device=device)
        n_batches = 0
        for x, y in data.batches(cfg["batch_size"], epoch, device):
            sums += step(x, y)
            n_batches += 1
        means = (sums / max(n_batches, 1)).tolist()  # one host sync per epoch
        seconds = time.perf_counter() - t0
        row = {"epoch": epoch + 1, **dict(zip(LOSS_COLUMNS, means, strict=True))}
        row["images_per_s"] = len(data) / seconds
        row["lr"] = cfg["lr"] * lr_factor(epoch, cfg["epochs"], cfg["epochs_decay"])
        if validation and cfg["validate_every"] and (epoch + 1) % cfg["validate_every"] == 0:
            row.update(validation_scores(g, validation, device))
        history.append(row)
        done = epoch + 1 - start
        eta = (time.perf_counter() - run_start) / done * (total - epoch - 1)
        log.info(
            "%s epoch %d/%d  G_GAN %.3f  G_L1 %.3f  G_SSIM %.3f  D_real %.3f  D_fake %.3f  "
            "%.1f img/s  ETA %s",
            cond.name,
            epoch + 1,
            total,
            *means,
            row["images_per_s"],
            time.strftime("%H:%M:%S", time.gmtime(eta)),
        )
        last = epoch + 1 == total
        due = (epoch + 1) % cfg["checkpoint_every"] == 0
        if last or due or (every_s and time.perf_counter() - last_save >= every_s):
            save_checkpoint(checkpoint_state(fp, epoch, step, history, precisions), resume_path)
            last_save = time.perf_counter()
        epochs_this_call += 1
        if stop_after_epochs is not None and epochs_this_call >= stop_after_epochs and not last:
            return {"stopped_after_epoch": epoch + 1}
    run = {"device": str(device), "precision": precisions, "compiled": compiled}
    return write_outputs(model_dir, cond, cfg, g, history, size, fp, resume_path, run)
