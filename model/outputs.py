"""The model folder a finished training run leaves: the generator's weights, the final checkpoint,
the loss table and its plot, and train_config.json (the settings and how the run ran)."""

from __future__ import annotations

import json
import os
import platform
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from safetensors.torch import save_file
from torch import nn

from model.atomic import atomic_path
from model.condition import Condition

if TYPE_CHECKING:
    import pandas as pd


def write_outputs(
    model_dir: Path,
    cond: Condition,
    cfg: dict,
    g: nn.Module,
    history: list[dict],
    size: int,
    fp: str,
    resume_path: Path,
    run: dict,
) -> dict:
    """Write the model folder's files; returns the last epoch's row of `history`."""
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


def plot_losses(table: pd.DataFrame, out_png: Path, title: str) -> None:
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
