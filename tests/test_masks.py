"""Mask operations (workflow_scripts/masks.py): one Dice, one largest component."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.spatial.distance import dice as dice_dissimilarity

from workflow_scripts.masks import dice, largest_component


def test_dice_hand_worked_and_against_scipy():
    a = np.zeros((4, 4), bool)
    b = np.zeros((4, 4), bool)
    a[:2, :2] = True  # 4 voxels
    b[1:3, :2] = True  # 4 voxels, 2 shared: 2*2 / (4+4)
    assert dice(a, b) == pytest.approx(0.5)
    rng = np.random.default_rng(0)
    for _ in range(5):
        x, y = rng.random((2, 6, 7, 5)) < 0.3
        assert dice(x, y) == pytest.approx(1 - dice_dissimilarity(x.ravel(), y.ravel()))


def test_dice_of_empty_masks_is_undefined():
    empty = np.zeros((3, 3, 3), bool)
    full = np.ones((3, 3, 3), bool)
    assert math.isnan(dice(empty, empty))
    assert dice(empty, full) == 0.0 and dice(full, full) == 1.0
    with pytest.raises(ValueError, match="different shapes"):
        dice(empty, np.zeros((3, 3), bool))


def test_largest_component():
    m = np.zeros((6, 6, 6), bool)
    m[0:2, 0:2, 0:2] = True  # 8 voxels
    m[3:6, 3:6, 3:6] = True  # 27 voxels
    m[0, 5, 5] = True  # a stray voxel
    out = largest_component(m)
    assert out.sum() == 27 and out[3:6, 3:6, 3:6].all()
    diagonal = np.zeros((3, 3, 3), bool)
    diagonal[0, 0, 0] = diagonal[1, 1, 0] = diagonal[1, 1, 1] = True  # corner touch is not a face
    assert largest_component(diagonal).sum() == 2
    assert not largest_component(np.zeros((2, 2, 2), bool)).any()
