"""Training one pix2pix condition: resumable, seeded, CPU or CUDA, fp32 or mixed precision.

The training pairs come as arrays (model/data.py's SliceDataset); reading slice files, checking
splits and recording the training subjects are the workflow's (workflow_scripts/train_job.py).

Resuming: after every `checkpoint_every` epochs, or once `checkpoint_minutes` have passed since
the last save, the full state (both networks, both Adam states, the fp16 gradient scaler, the
global RNG that drives dropout, the loss history) is written atomically to
`<model_dir>/resume/last.pt`. That folder is not a Snakemake output, so it survives a killed or
failed job; rerunning the job continues from it. Batches are a pure function of (seed, epoch)
(model/data.py), so a resumed run ends with the same weights as an uninterrupted one at the same
precision on CPU.

Device and precision policy: model/device.py (train.device, train.precision; a job that asked
for a GPU and sees none fails at once). torch.compile (train.compile) is tried on one step per
batch shape before training starts; where it fails (no C compiler, a GPU too old for Triton)
training goes on eager, with a warning.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import logging
import math
import os
import platform
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file
from torch import nn

from model.atomic import atomic_path
from model.data import SliceDataset
from model.device import AUTOCAST_DTYPES, training_device, training_precision
from model.losses import GANLoss, ssim
from model.networks import PatchDiscriminator, UNetGenerator, count_parameters, init_weights

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "spectsynth-pix2pix-v1"
LOSS_COLUMNS = ("G_GAN", "G_L1", "G_SSIM", "D_real", "D_fake")


class CheckpointError(RuntimeError):
    """A checkpoint that is not ours or is tampered with."""


@dataclass(frozen=True)
class Condition:
    space: str
    model_input: str
    loss: str
    # neighbouring input slices on either side (2.5D); None: the slice files' own context, fixed
    # when training starts (a smaller one uses the files' centre channels: a 2D twin)
    context: int | None = None
    target_scaling: str = "per_slice"  # how the target SPECT was put on [-1, 1]

    @property
    def in_channels(self) -> int:
        return (2 if self.model_input == "mri_pet" else 1) * (2 * (self.context or 0) + 1)

    @property
    def name(self) -> str:
        return f"space-{self.space}_input-{self.model_input}_loss-{self.loss}"


def use_compile(cfg: dict, device: torch.device) -> bool:
    """torch.compile the networks: `auto` on CUDA only (on CPU it did not pay off here)."""
    setting = cfg.get("compile", "auto")
    return setting == "always" or (setting == "auto" and device.type == "cuda")


def build_networks(cond: Condition, size: int, cfg: dict) -> tuple[nn.Module, nn.Module]:
    g = init_weights(UNetGenerator(cond.in_channels, 1, size, cfg["ngf"]))
    d = init_weights(PatchDiscriminator(cond.in_channels + 1, cfg["ndf"]))
    return g, d


def make_optimizers(
    g: nn.Module, d: nn.Module, lr: float, beta1: float
) -> tuple[torch.optim.Adam, torch.optim.Adam]:
    """pix2pix's Adam (beta2 0.999) for G and D. Fused: one kernel per step instead of a loop of
    small ops per parameter (the same update; 1.16x the demo's whole CPU training step)."""
    fused = next(g.parameters()).device.type in ("cpu", "cuda")
    return (
        torch.optim.Adam(g.parameters(), lr=lr, betas=(beta1, 0.999), fused=fused),
        torch.optim.Adam(d.parameters(), lr=lr, betas=(beta1, 0.999), fused=fused),
    )


def fingerprint(cond: Condition, cfg: dict, subjects: list[str], size: int) -> str:
    """What a checkpoint must match to be resumed (the epoch count may grow)."""
    keys = (
        "batch_size",
        "lr",
        "beta1",
        "lambda_l1",
        "lambda_ssim",
        "ngf",
        "ndf",
        "augment",
        "seed",
    )
    blob = json.dumps(
        {
            "cond": dataclasses.asdict(cond),
            "size": size,
            "subjects": sorted(subjects),
            **{k: cfg[k] for k in keys},
            # the setting, not what it resolved to: `auto` may resolve otherwise on the node a
            # resumed job lands on (then training goes on at that precision, logged)
            "precision": cfg.get("precision", "auto"),
        },
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def lr_factor(epoch: int, epochs: int, epochs_decay: int) -> float:
    """pix2pix's linear policy: constant for `epochs`, then linearly to zero over `epochs_decay`."""
    return 1.0 - max(0, epoch + 1 - epochs) / float(epochs_decay + 1)


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
        g.load_state_dict(state["G"])
        d.load_state_dict(state["D"])
        opt_g.load_state_dict(state["opt_G"])
        opt_d.load_state_dict(state["opt_D"])
        if step.scaler.is_enabled() and "scaler" in state:
            step.scaler.load_state_dict(state["scaler"])
        torch.set_rng_state(state["rng_cpu"])
        if device.type == "cuda" and "rng_cuda" in state:
            torch.cuda.set_rng_state(state["rng_cuda"])
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
            save_checkpoint(_state(fp, epoch, step, history, precisions, device), resume_path)
            last_save = time.perf_counter()
        epochs_this_call += 1
        if stop_after_epochs is not None and epochs_this_call >= stop_after_epochs and not last:
            return {"stopped_after_epoch": epoch + 1}
    run = {"device": str(device), "precision": precisions, "compiled": compiled}
    return _write_outputs(model_dir, cond, cfg, g, history, size, fp, resume_path, run)


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
    saved = _snapshot(step)
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
    _restore(step, g, d, saved)
    return ok


def _snapshot(step: Pix2PixStep) -> dict:
    saved = {
        "G": copy.deepcopy(step.g.state_dict()),
        "D": copy.deepcopy(step.d.state_dict()),
        "opt_G": copy.deepcopy(step.opt_g.state_dict()),
        "opt_D": copy.deepcopy(step.opt_d.state_dict()),
        "scaler": copy.deepcopy(step.scaler.state_dict()),
        "rng_cpu": torch.get_rng_state(),
    }
    if step.device.type == "cuda":
        saved["rng_cuda"] = torch.cuda.get_rng_state(step.device)
    return saved


def _restore(step: Pix2PixStep, g: nn.Module, d: nn.Module, saved: dict) -> None:
    g.load_state_dict(saved["G"])
    d.load_state_dict(saved["D"])
    step.opt_g.load_state_dict(saved["opt_G"])
    step.opt_d.load_state_dict(saved["opt_D"])
    if step.scaler.is_enabled():
        step.scaler.load_state_dict(saved["scaler"])
    for p in (*g.parameters(), *d.parameters()):
        p.grad = None
    d.requires_grad_(True)
    torch.set_rng_state(saved["rng_cpu"])
    if "rng_cuda" in saved:
        torch.cuda.set_rng_state(saved["rng_cuda"], step.device)


class Pix2PixStep:
    """One pix2pix update on a batch: discriminator on real and generated pairs, then the
    generator (adversarial + lambda_L1 * L1 [+ lambda_SSIM * (1 - SSIM)]). Returns the five
    loss terms as one detached tensor, so the loop never waits on the device."""

    def __init__(self, g, d, opt_g, opt_d, cfg: dict, use_ssim: bool, dtype: torch.dtype | None):
        self.g, self.d, self.opt_g, self.opt_d = g, d, opt_g, opt_d
        self.cfg, self.use_ssim, self.dtype = cfg, use_ssim, dtype
        self.device = next(g.parameters()).device
        # fp16 only (bf16 has fp32's range); its state is checkpointed
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=dtype == torch.float16)
        self.gan = GANLoss()
        self.l1 = nn.L1Loss()

    def _autocast(self):
        return torch.autocast(
            self.device.type, dtype=self.dtype or torch.float32, enabled=self.dtype is not None
        )

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        g, d, cfg, scaler = self.g, self.d, self.cfg, self.scaler
        if self.device.type == "cuda":
            x = x.contiguous(memory_format=torch.channels_last)
            y = y.contiguous(memory_format=torch.channels_last)
        with self._autocast():
            fake = g(x)
        # discriminator: real pairs -> 1, generated pairs -> 0
        d.requires_grad_(True)
        self.opt_d.zero_grad(set_to_none=True)
        with self._autocast():
            d_fake = self.gan(d(torch.cat([x, fake.detach()], 1)), False)
            d_real = self.gan(d(torch.cat([x, y], 1)), True)
            loss_d = 0.5 * (d_fake + d_real)
        scaler.scale(loss_d).backward()
        scaler.step(self.opt_d)
        # generator: fool D, stay close to the target
        d.requires_grad_(False)
        self.opt_g.zero_grad(set_to_none=True)
        with self._autocast():
            g_gan = self.gan(d(torch.cat([x, fake], 1)), True)
        g_l1 = self.l1(fake.float(), y.float()) * cfg["lambda_l1"]
        if self.use_ssim:
            g_ssim = (1.0 - ssim(fake.float(), y.float()).mean()) * cfg["lambda_ssim"]
        else:
            g_ssim = torch.zeros((), device=self.device)
        loss_g = g_gan + g_l1 + g_ssim
        scaler.scale(loss_g).backward()
        scaler.step(self.opt_g)
        scaler.update()
        return torch.stack([g_gan, g_l1, g_ssim, d_real, d_fake]).detach().float()


def _state(fp, epoch, step: Pix2PixStep, history, precisions, device) -> dict:
    # the plain networks (step.g may be a compiled wrapper sharing their parameters)
    g, d = (getattr(m, "_orig_mod", m) for m in (step.g, step.d))
    state = {
        "format": CHECKPOINT_FORMAT,
        "fingerprint": fp,
        "epoch": epoch,
        "G": g.state_dict(),
        "D": d.state_dict(),
        "opt_G": step.opt_g.state_dict(),
        "opt_D": step.opt_d.state_dict(),
        "rng_cpu": torch.get_rng_state(),
        "history": history,
        "precisions": precisions,
    }
    if step.scaler.is_enabled():
        state["scaler"] = step.scaler.state_dict()
    if device.type == "cuda":
        state["rng_cuda"] = torch.cuda.get_rng_state(device)
    return state


@torch.inference_mode()
def validation_scores(g: nn.Module, pairs: Sequence[tuple[np.ndarray, np.ndarray]], device) -> dict:
    """Mean slice SSIM and PSNR (range [-1, 1]) of the generator on held-out (x, y) pairs."""
    g.eval()
    scores_ssim, scores_psnr = [], []
    for x_np, y_np in pairs:
        x = torch.from_numpy(np.asarray(x_np, dtype=np.float32)).to(device)
        y = torch.tensor(np.asarray(y_np, dtype=np.float32)).reshape(len(x), 1, *x.shape[2:])
        y = y.to(device)
        fake = g(x).float()
        scores_ssim.append(ssim(fake, y))
        mse = ((fake - y) ** 2).flatten(1).mean(1)
        scores_psnr.append(10 * torch.log10(4.0 / mse.clamp_min(1e-12)))
    g.train()
    return {
        "val_SSIM": torch.cat(scores_ssim).mean().item(),
        "val_PSNR": torch.cat(scores_psnr).mean().item(),
    }


def _write_outputs(model_dir, cond, cfg, g, history, size, fp, resume_path, run: dict) -> dict:
    import pandas as pd

    model_dir.mkdir(parents=True, exist_ok=True)
    weights = {k: v.detach().to("cpu").contiguous() for k, v in g.state_dict().items()}
    with atomic_path(model_dir / "generator.safetensors") as tmp:
        save_file(weights, str(tmp), metadata={"condition": cond.name, "fingerprint": fp})
    # the final full state as a declared output; the resume copy stays for extending training.
    # A hard link, not a second copy (a paper-size state is ~0.7 GB): save_checkpoint replaces
    # last.pt by rename, so a later save never changes this file.
    final = model_dir / "checkpoint.pt"
    final.unlink(missing_ok=True)
    try:
        os.link(resume_path, final)
    except OSError:  # a file system without hard links
        with atomic_path(final) as tmp:
            shutil.copyfile(resume_path, tmp)
    table = pd.DataFrame(history)
    with atomic_path(model_dir / "losses.tsv") as tmp:
        tmp.write_text(table.to_csv(sep="\t", index=False, float_format="%.6g"))
    plot_losses(table, model_dir / "losses.png", cond.name)
    _write_json(
        {
            "condition": {"space": cond.space, "input": cond.model_input, "loss": cond.loss},
            "in_channels": cond.in_channels,
            "context": cond.context,
            "target_scaling": cond.target_scaling,
            "size": size,
            "train": cfg,
            "fingerprint": fp,
            # how it ran: the device, the precision(s) train.precision resolved to (more than one
            # where a resumed job landed on other hardware), whether torch.compile was used
            "run": run,
            "versions": {
                "torch": torch.__version__,
                "numpy": np.__version__,
                "python": platform.python_version(),
            },
            "final_losses": history[-1] if history else {},
        },
        model_dir / "train_config.json",
    )
    return history[-1] if history else {}


def _write_json(obj: dict, path: Path) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2) + "\n")


def plot_losses(table, out_png: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    for col in ("G_GAN", "D_real", "D_fake"):
        axes[0].plot(table["epoch"], table[col], label=col)
    for col in ("G_L1", "G_SSIM"):
        axes[1].plot(table["epoch"], table[col], label=col)
    for ax, name in zip(axes, ("adversarial (BCE)", "reconstruction (weighted)"), strict=True):
        ax.set_xlabel("epoch")
        ax.set_title(name)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, dpi=80)
    plt.close(fig)


def images_per_second(table) -> float:
    return float(np.median(table["images_per_s"])) if len(table) else math.nan
