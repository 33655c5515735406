"""model/ is a pix2pix package that knows nothing of the workflow: it imports no workflow code."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from model.condition import Condition
from model.data import SliceDataset
from model.infer import load_generator, synthesise
from model.train import train_condition
from tests.conftest import absolute_imports

ROOT = Path(__file__).resolve().parents[1]


def workflow_imports(path: Path) -> list[str]:
    """`module:line` of every import of workflow_scripts (at any depth: lazy imports too)."""
    return [
        f"{name}:{line}"
        for name, line in absolute_imports(path)
        if name.partition(".")[0] == "workflow_scripts"
    ]


def test_model_imports_nothing_of_the_workflow():
    files = sorted((ROOT / "model").rglob("*.py"))
    assert files
    offenders = {str(p.relative_to(ROOT)): workflow_imports(p) for p in files}
    assert not {k: v for k, v in offenders.items() if v}


def test_the_check_sees_a_lazy_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from workflow_scripts.slices import load_slices\n")
    assert workflow_imports(bad) == ["workflow_scripts.slices:2"]


def test_trains_on_plain_arrays_and_checks_them(tmp_path):
    """The package's own use, no slice files: arrays in, a model folder out, a synthesis back."""
    cfg = yaml.safe_load((ROOT / "config.yaml").read_text())["train"]
    cfg.update(epochs=1, epochs_decay=0, ngf=4, ndf=4, batch_size=4, device="cpu")
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (6, 2, 32, 32)).astype(np.float32)
    y = rng.uniform(-1, 1, (6, 32, 32)).astype(np.float32)
    data = SliceDataset(x, y, augment=cfg["augment"], seed=cfg["seed"])
    cond = Condition("native", "mri_pet", "l1_bce", context=0)
    last = train_condition(data, tmp_path / "m", cond, cfg, subjects=["a", "b"])
    assert last["epoch"] == 1 and last["G_L1"] > 0
    assert synthesise(load_generator(tmp_path / "m"), x).shape == (6, 32, 32)
    with pytest.raises(ValueError, match="takes 6 input channels.*slices have 2"):
        train_condition(
            data, tmp_path / "n", Condition("native", "mri_pet", "l1_bce", 1), cfg, subjects=["a"]
        )
    with pytest.raises(ValueError, match="seed/augment"):
        train_condition(
            data, tmp_path / "n", cond, {**cfg, "seed": cfg["seed"] + 1}, subjects=["a"]
        )
    with pytest.raises(ValueError, match="do not match"):
        SliceDataset(x, y[:5])
