"""CUDA smoke test: the training path our GPU users take (device auto with a GPU requested,
precision auto, torch.compile auto with its eager fallback), on the GPU this machine has.
Skipped where there is none (the CPU tests cover each decision with explicit inputs)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml

from model.checkpoint import load_checkpoint
from model.condition import Condition
from model.device import choose_precision
from model.infer import load_generator, synthesise
from tests.conftest import slice_paths
from workflow_scripts.train.from_slices import train_from_slices

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
ROOT = Path(__file__).resolve().parents[1]


def test_trains_on_the_gpu_at_auto_precision_and_resumes(make_slices, tmp_path):
    files = slice_paths(make_slices({"01": "train", "02": "train"}))
    cfg = yaml.safe_load((ROOT / "config.yaml").read_text())["train"]
    cfg.update(epochs=2, batch_size=6, ngf=8, ndf=8, device="auto", checkpoint_every=1)
    cond = Condition("native", "mri_pet", "l1_bce_ssim")
    out = tmp_path / "m"
    stopped = train_from_slices(files, out, cond, cfg, gpus=1, stop_after_epochs=1)
    assert stopped == {"stopped_after_epoch": 1}
    state = load_checkpoint(out / "resume" / "last.pt")
    assert "rng_cuda" in state
    last = train_from_slices(files, out, cond, cfg, gpus=1)  # resumes
    assert all(torch.isfinite(torch.tensor(v)) for k, v in last.items() if k != "epoch")
    run = json.loads((out / "train_config.json").read_text())["run"]
    expected = choose_precision("auto", "cuda", capability=torch.cuda.get_device_capability())
    assert run["device"].startswith("cuda") and run["precision"] == [expected]
    if expected == "fp16":
        assert "scaler" in state
    g = load_generator(out, device="cuda")
    y = synthesise(g, torch.rand(3, 2, 32, 32).numpy() * 2 - 1)
    assert y.shape == (3, 32, 32) and abs(y).max() <= 1
