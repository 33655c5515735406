"""Training pairs, augmentation and the leakage guard (model/data.py)."""

from __future__ import annotations

import pytest
import torch

from model.data import SliceDataset, jitter_and_mirror
from tests.conftest import slice_paths
from workflow_scripts.slices.files import load_slices, stack_input
from workflow_scripts.train.training_set import (
    LeakageError,
    assert_not_trained_on,
    load_training_set,
    write_subject_list,
)


def dataset(files, model_input: str, **kw) -> SliceDataset:
    ts = load_training_set(list(files), model_input)
    return SliceDataset(ts.x, ts.y, **kw)


def test_pairs_for_each_input_choice(make_slices):
    files = make_slices({"01": "train", "02": "train"})
    for model_input, channels in (("mri", 1), ("pet", 1), ("mri_pet", 2)):
        ts = load_training_set(slice_paths(files), model_input)
        ds = SliceDataset(ts.x, ts.y, augment=False)
        x, y = ds[0]
        assert x.shape == (channels, 32, 32) and y.shape == (1, 32, 32)
        assert len(ds) == 32 and ts.subjects == ["01", "02"]
    ss = load_slices(*files["01"])
    both = stack_input(ss, "mri_pet")
    assert torch.equal(torch.from_numpy(both[:, 0]), torch.from_numpy(stack_input(ss, "mri")[:, 0]))
    assert torch.equal(torch.from_numpy(both[:, 1]), torch.from_numpy(stack_input(ss, "pet")[:, 0]))


def test_loader_is_deterministic_for_a_seed(make_slices):
    files = slice_paths(make_slices({"01": "train", "02": "train"}))
    a = [x for x, _ in dataset(files, "pet", augment=True, seed=5).batches(8, epoch=3)]
    b = [x for x, _ in dataset(files, "pet", augment=True, seed=5).batches(8, epoch=3)]
    c = [x for x, _ in dataset(files, "pet", augment=True, seed=5).batches(8, epoch=4)]
    assert all(torch.equal(p, q) for p, q in zip(a, b, strict=True))
    assert not all(torch.equal(p, q) for p, q in zip(a, c, strict=True))


def test_augmentation_moves_input_and_target_together():
    gen = torch.Generator().manual_seed(0)
    x = torch.zeros(4, 1, 32, 32)
    x[:, :, 10:20, 4:8] = 1
    xa, ya = jitter_and_mirror(x, x.clone(), gen)
    assert xa.shape == x.shape and torch.equal(xa, ya)
    assert not torch.equal(xa, x)  # jittered and/or mirrored


def test_guard_refuses_held_out_subjects_in_training(make_slices):
    files = make_slices({"01": "train", "09": "test", "11": "validation", "20": "predict"})
    for leaked in ("09", "11", "20"):
        with pytest.raises(LeakageError, match=f"sub-{leaked}"):
            load_training_set(slice_paths(files, "01", leaked), "mri")


def test_scoring_refuses_a_training_subject(tmp_path):
    write_subject_list(tmp_path, ["01", "02"])
    assert_not_trained_on(tmp_path, "09")
    with pytest.raises(LeakageError, match="sub-02 was in the training set"):
        assert_not_trained_on(tmp_path, "02")
