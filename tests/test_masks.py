"""Mask operations (workflow_scripts/masks.py): Dice, largest component, hole filling."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage
from scipy.spatial.distance import dice as dice_dissimilarity

from workflow_scripts.masks import dice, fill_holes, largest_component


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


def test_fill_holes_is_scipys_binary_fill_holes():
    rng = np.random.default_rng(1)
    shapes = [(12, 13, 11), (9, 1, 7), (1, 1, 1), (15, 17), (6,), (0, 3, 3)]
    for shape in shapes:
        for p in (0.2, 0.5, 0.8):
            x = rng.random(shape) < p
            assert np.array_equal(fill_holes(x), ndimage.binary_fill_holes(x)), (shape, p)
    # a shell with a cavity, touching each face of the array in turn: only what the shell
    # encloses is filled, never background that reaches a face
    for axis in range(3):
        for end in (0, -1):
            shell = np.zeros((9, 10, 11), bool)
            shell[1:8, 1:9, 1:10] = True
            shell[3:6, 3:7, 3:8] = False  # the cavity
            index = [slice(None)] * 3
            index[axis] = end
            shell[tuple(index)] = True  # the shell reaches this face
            tunnel = shell.copy()
            tunnel[4, 4, 0:4] = False  # a channel from the cavity out through the shell
            for m in (shell, tunnel):
                assert np.array_equal(fill_holes(m), ndimage.binary_fill_holes(m))
    assert not fill_holes(np.zeros((4, 4, 4), bool)).any()
    assert fill_holes(np.ones((4, 4, 4), bool)).all()
