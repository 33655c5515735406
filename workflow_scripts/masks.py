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
