"""Training loop: runs, writes its outputs, resumes bit-exactly after SIGKILL, refuses bad checkpoints."""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from model.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from model.condition import Condition
from model.data import SliceDataset
from model.infer import load_generator, synthesise
from model.step import Pix2PixStep, build_networks, lr_factor
from model.torch_compile import batch_shapes, compile_or_eager, use_compile
from tests.conftest import slice_paths
from workflow_scripts.train.from_slices import train_from_slices
from workflow_scripts.train.training_set import load_training_set

ROOT = Path(__file__).resolve().parents[1]


def tiny_cfg(**over) -> dict:
    cfg = yaml.safe_load((ROOT / "config.yaml").read_text())["train"]
    cfg.update(epochs=4, batch_size=4, ngf=8, ndf=8, device="cpu", checkpoint_every=1)
    cfg.update(over)
    return cfg


def test_trains_and_writes_every_output(make_slices, tmp_path):
    files = make_slices({"01": "train", "02": "train", "09": "validation"})
    cond = Condition("native", "mri_pet", "l1_bce_ssim")
    out = tmp_path / "model"
    cfg = tiny_cfg(epochs=2, epochs_decay=1, validate_every=1)
    last = train_from_slices(slice_paths(files, "01", "02"), out, cond, cfg, val_files=files["09"])
    for name in (
        "generator.safetensors",
        "checkpoint.pt",
        "train_config.json",
        "subjects.json",
        "losses.tsv",
        "losses.png",
    ):
        assert (out / name).exists(), name
    table = (out / "losses.tsv").read_text().splitlines()
    assert table[0].split("\t")[:6] == ["epoch", "G_GAN", "G_L1", "G_SSIM", "D_real", "D_fake"]
    assert len(table) == 1 + 3 and "val_SSIM" in table[0]
    assert last["G_SSIM"] > 0 and last["lr"] == pytest.approx(cfg["lr"] / 2)
    assert json.loads((out / "subjects.json").read_text())["train"] == ["01", "02"]
    # checkpoint.pt is the final state and stays so when training is later extended
    assert load_checkpoint(out / "checkpoint.pt")["epoch"] == 2
    save_checkpoint({"format": "spectsynth-pix2pix-v1", "epoch": 9}, out / "resume" / "last.pt")
    assert load_checkpoint(out / "checkpoint.pt")["epoch"] == 2
    g = load_generator(out)
    x = torch.rand(3, 2, 32, 32).numpy() * 2 - 1
    y = synthesise(g, x, batch_size=2)
    assert y.shape == (3, 32, 32) and abs(y).max() <= 1
    assert (synthesise(g, x) == y).all()  # eval mode: deterministic


def test_linear_decay_policy():
    assert [lr_factor(e, 2, 2) for e in range(4)] == pytest.approx([1, 1, 2 / 3, 1 / 3])


SCRIPT = """
import sys, yaml
from model.condition import Condition
from workflow_scripts.train.from_slices import train_from_slices
cfg = yaml.safe_load(open(sys.argv[3]))
train_from_slices(sys.argv[1].split(","), sys.argv[2], Condition("native", "pet", "l1_bce"), cfg)
"""


def test_sigkill_then_rerun_gives_the_same_weights(make_slices, tmp_path):
    files = [str(f) for f in slice_paths(make_slices({"01": "train", "02": "train"}))]
    cfg = tiny_cfg(epochs=6)
    cfg_file = tmp_path / "cfg.yaml"
    cfg_file.write_text(yaml.safe_dump(cfg))
    cond = Condition("native", "pet", "l1_bce")
    reference = tmp_path / "reference"
    train_from_slices(files, reference, cond, cfg)

    killed = tmp_path / "killed"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, ",".join(files), str(killed), str(cfg_file)], env=env
    )
    resume = killed / "resume" / "last.pt"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if resume.exists() and load_checkpoint(resume)["epoch"] >= 1:
            break
        time.sleep(0.01)
    assert proc.poll() is None, "training finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    stopped_at = load_checkpoint(resume)["epoch"]
    assert stopped_at < cfg["epochs"] - 1 and not (killed / "generator.safetensors").exists()
    train_from_slices(files, killed, cond, cfg)  # the rerun resumes
    a = load_file(str(reference / "generator.safetensors"))
    b = load_file(str(killed / "generator.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert (reference / "losses.tsv").read_text().split("\n")[0] == (
        killed / "losses.tsv"
    ).read_text().split("\n")[0]


def test_other_settings_train_afresh_and_tampered_checkpoints_are_refused(make_slices, tmp_path):
    files = slice_paths(make_slices({"01": "train", "02": "train"}))
    out, fresh = tmp_path / "m", tmp_path / "fresh"
    train_from_slices(files, out, Condition("native", "pet", "l1_bce"), tiny_cfg(epochs=1))
    # the same folder with another hyper-parameter (what a config change reruns): the old
    # checkpoint is not resumed; the result equals a run in an empty folder
    changed = {**tiny_cfg(epochs=2), "lr": 2e-4}
    train_from_slices(files, out, Condition("native", "pet", "l1_bce"), changed)
    train_from_slices(files, fresh, Condition("native", "pet", "l1_bce"), changed)
    a, b = (load_file(str(d / "generator.safetensors")) for d in (out, fresh))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert load_checkpoint(out / "resume" / "last.pt")["epoch"] == 1

    class Payload:  # pickled code: weights_only=True must refuse it
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    evil = out / "resume" / "last.pt"
    torch.save({"format": "spectsynth-pix2pix-v1", "x": Payload()}, evil)
    with pytest.raises(CheckpointError, match="refused"):
        load_checkpoint(evil)


def test_compiled_training_saves_plain_weights(make_slices, tmp_path):
    """train.compile (on CUDA by default; forced here on CPU): the step runs compiled modules,
    the files hold the plain networks' weights, which the inference loader reads."""
    assert not use_compile({"compile": "auto"}, torch.device("cpu"))
    assert use_compile({"compile": "auto"}, torch.device("cuda"))
    assert not use_compile({"compile": "never"}, torch.device("cuda"))
    files = slice_paths(make_slices({"01": "train"}))
    out = tmp_path / "m"
    torch._dynamo.reset()
    cfg = tiny_cfg(epochs=1, batch_size=6, compile="always", precision="fp32")
    last = train_from_slices(files, out, Condition("native", "pet", "l1_bce"), cfg)
    assert last["G_L1"] > 0
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] >= 2  # G and D compiled
    assert json.loads((out / "train_config.json").read_text())["run"]["compiled"]
    weights = load_file(str(out / "generator.safetensors"))
    assert not any("_orig_mod" in k for k in weights)
    g = load_generator(out)
    assert synthesise(g, torch.zeros(2, 1, 32, 32).numpy()).shape == (2, 32, 32)

    # the trial steps compile every batch shape before training (16 slices: 6, 6, then 4) and
    # leave no trace: weights, batch-norm statistics, optimiser states and the RNG as before
    ts = load_training_set(files, "pet")
    data = SliceDataset(ts.x, ts.y, augment=True, seed=0)
    torch._dynamo.reset()  # forget the graphs of the run above (dynamo shares them)
    torch.manual_seed(1)
    g, d = build_networks(Condition("native", "pet", "l1_bce"), 32, cfg)
    opt_g, opt_d = torch.optim.Adam(g.parameters()), torch.optim.Adam(d.parameters())
    step = Pix2PixStep(g, d, opt_g, opt_d, cfg, use_ssim=False, dtype=None)
    before = [copy.deepcopy(m.state_dict()) for m in (g, d)]
    rng = torch.get_rng_state()
    shapes = batch_shapes(data, 6)
    assert [x_shape[0] for x_shape, _ in shapes] == [6, 4]
    assert compile_or_eager(step, shapes, "test")
    for m, saved in zip((g, d), before, strict=True):
        assert all(torch.equal(v, saved[k]) for k, v in m.state_dict().items())
    assert not opt_g.state and not opt_d.state and torch.equal(torch.get_rng_state(), rng)
    graphs = torch._dynamo.utils.counters["stats"]["unique_graphs"]
    for x, y in data.batches(6, epoch=0):
        step(x, y)
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] == graphs  # no recompile
