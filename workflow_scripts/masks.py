"""Binary-mask operations shared by preprocessing, registration checks and SISCOM.

Dice of two empty masks is undefined and returned as NaN (not 0, which would call two
agreeing empty masks a total disagreement, nor 1): a caller that needs a number decides what an
empty pair means for it (the registration check, for one, counts it as a failure).
"""

from __future__ import annotations

import numpy as np


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice coefficient 2|A and B| / (|A| + |B|) of two boolean masks; NaN when both are empty."""
    a, b = np.asarray(a, dtype=bool), np.asarray(b, dtype=bool)
    if a.shape != b.shape:
        raise ValueError(f"dice: masks of different shapes {a.shape} and {b.shape}")
    total = int(a.sum()) + int(b.sum())
    return 2.0 * int(np.logical_and(a, b).sum()) / total if total else float("nan")


def largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest face-connected component of a boolean mask (the mask itself when it has at
    most one component, so an empty mask stays empty)."""
    from scipy import ndimage  # here: most jobs that import this module never label (0.2 s)

    labels, n = ndimage.label(mask)
    if n <= 1:
        return np.asarray(mask, dtype=bool)
    sizes = ndimage.sum_labels(mask, labels, range(1, n + 1))
    return labels == (1 + int(np.argmax(sizes)))


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """scipy.ndimage.binary_fill_holes with its default (face) connectivity, the same mask, by
    labelling: holes are the background components that do not reach the array's faces. Only
    the mask's bounding box is labelled: background outside it reaches a face in a straight
    line, so background on the box's faces does too. scipy's version dilates from the border
    until nothing changes (0.7 s on a 1 mm head mask, this 0.17 s)."""
    from scipy import ndimage

    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return mask.copy()
    box = []
    for axis in range(mask.ndim):
        present = np.flatnonzero(mask.any(axis=tuple(a for a in range(mask.ndim) if a != axis)))
        box.append(slice(int(present[0]), int(present[-1]) + 1))
    box = tuple(box)
    background, n = ndimage.label(~mask[box])
    hole = np.ones(n + 1, dtype=bool)  # per label: does it stay inside?
    hole[0] = False  # the mask itself
    for axis in range(background.ndim):
        for end in (0, -1):
            hole[background[(slice(None),) * axis + (end,)]] = False
    out = mask.copy()
    out[box] |= hole[background]
    return out
