"""Axial slices of a subject's preprocessed volumes: the 2D material the model sees.

Per subject and space, N axial slices are chosen from the MRI brain mask (the same slices for
every modality; for synthesis, every slice that meets the brain), cropped or zero-padded to
S x S around the brain (one window for all of a subject's slices), and scaled to [-1, 1].

Inputs (MRI, PET): x' = 2 (x - lo) / (hi - lo) - 1, with lo/hi the slice's minimum/maximum
(`per_slice`, the paper) or the brain slab's (`per_volume`). With `context` k > 0 each input
slice comes with its k neighbours on either side (2.5D; zero beyond the volume).

Target (SPECT), `target_scaling`: `per_slice` as above (the paper; each slice gets its own,
arbitrary gain), or `per_volume`: uptake relative to the subject's mean over the MRI brain mask,
mapped to [-1, 1] by one fixed line (relative uptake 0 -> -1, RELATIVE_MAX -> 1), which a
model can reproduce without the real scan.

lo ("offset") and hi - lo ("scale") are kept per slice so that image units come back exactly:
x = (x' + 1) / 2 * scale + offset. An all-zero slice gets scale 1 (all -1).

One uncompressed .npz per subject, space and modality (mri, pet, spect), each written by its own
job, so that a setting of one modality remakes that modality's slices only. Every file carries
the slice indices and the brain-mask slices, derived from the MRI brain mask alone (the same in
every job); :func:`load_slices` memory-maps the files of one subject and joins them, checking
that they were cut alike.
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np

from workflow_scripts.slices.files import RELATIVE_MAX, TARGET, SubjectSlices


def brain_slices(brain: np.ndarray) -> np.ndarray:
    """Every axial index that meets the brain (what synthesis covers)."""
    z = np.flatnonzero(brain.reshape(-1, brain.shape[2]).any(axis=0))
    if z.size == 0:
        raise ValueError("the brain mask is empty")
    return z


def select_slices(brain: np.ndarray, n: int | None, min_fraction: float) -> np.ndarray:
    """N axial indices spread evenly over the slices whose brain fraction reaches min_fraction
    (n None: every slice that meets the brain)."""
    if n is None:
        return brain_slices(brain)
    frac = brain.reshape(-1, brain.shape[2]).mean(axis=0)
    valid = np.flatnonzero(frac >= min_fraction)
    if valid.size == 0:
        raise ValueError("no axial slice contains enough brain (empty brain mask?)")
    if valid.size <= n:
        return valid
    picks = np.round(np.linspace(0, valid.size - 1, n)).astype(int)
    return valid[np.unique(picks)]


def window_corner(brain: np.ndarray, z: np.ndarray, size: int) -> tuple[int, int]:
    """Top-left (x, y) of an S x S window centred on the brain's in-plane extent."""
    proj = brain[:, :, z].any(axis=2)
    xs, ys = np.flatnonzero(proj.any(axis=1)), np.flatnonzero(proj.any(axis=0))
    cx = (xs[0] + xs[-1] + 1) / 2 if xs.size else brain.shape[0] / 2
    cy = (ys[0] + ys[-1] + 1) / 2 if ys.size else brain.shape[1] / 2
    return int(round(cx - size / 2)), int(round(cy - size / 2))


def cut(volume: np.ndarray, z: np.ndarray, corner: tuple[int, int], size: int) -> np.ndarray:
    """(N, S, S) window of the given axial slices, zero outside the volume (also in z)."""
    z = np.asarray(z)
    out = np.zeros((len(z), size, size), dtype=np.float32)
    x0, y0 = corner
    sx0, sy0 = max(x0, 0), max(y0, 0)
    sx1, sy1 = min(x0 + size, volume.shape[0]), min(y0 + size, volume.shape[1])
    inside = (z >= 0) & (z < volume.shape[2])
    if sx1 > sx0 and sy1 > sy0 and inside.any():
        block = volume[sx0:sx1, sy0:sy1][:, :, z[inside]]  # (w, h, n)
        out[inside, sx0 - x0 : sx1 - x0, sy0 - y0 : sy1 - y0] = np.moveaxis(block, 2, 0)
    return out


def scale_to_unit(
    stack: np.ndarray, mode: str, volume_range: tuple[float, float] | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Scale (N, S, S) to [-1, 1]; returns scaled, scale (hi - lo) and offset (lo) per slice.
    per_volume uses `volume_range` (lo, hi) when given, else the stack's own."""
    n = stack.shape[0]
    if mode == "per_slice":
        lo = stack.reshape(n, -1).min(axis=1)
        hi = stack.reshape(n, -1).max(axis=1)
    elif mode == "per_volume":
        vlo, vhi = volume_range if volume_range is not None else (stack.min(), stack.max())
        lo, hi = np.full(n, vlo), np.full(n, vhi)
    else:
        raise ValueError(f"unknown scaling mode {mode!r}")
    scale = np.where(hi > lo, hi - lo, 1.0).astype(np.float64)
    scaled = 2.0 * (stack - lo[:, None, None]) / scale[:, None, None] - 1.0
    return scaled.astype(np.float32), scale, lo.astype(np.float64)


def relative_target(
    data: np.ndarray, brain: np.ndarray, z: np.ndarray, corner, size: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """per_volume target: uptake relative to the brain mean, on the fixed [-1, 1] line."""
    mean = float(data[brain].mean()) if brain.any() else 0.0
    if not mean > 0:
        raise ValueError("the SPECT has no positive uptake inside the brain mask")
    rel = cut(data, z, corner, size) / mean
    scaled = np.clip(2.0 * rel / RELATIVE_MAX - 1.0, -1.0, 1.0).astype(np.float32)
    return scaled, np.full(len(z), RELATIVE_MAX * mean), np.zeros(len(z))


def extract(
    volumes: dict[str, str | Path],
    brainmask: str | Path,
    *,
    subject: str,
    split: str,
    space: str,
    n_slices: int | None,
    size: int,
    min_brain_fraction: float,
    scaling: str | None = None,
    target_scaling: str = "per_slice",
    context: int = 0,
) -> SubjectSlices:
    """Build a subject's slices from its preprocessed volumes (keys among mri, pet, spect).

    n_slices None: every slice that meets the brain (synthesis). The slices, the window and the
    per_volume input range come from the brain mask (and each modality's own volume) only, so
    each modality may be cut on its own, with the same result, and training and synthesis cut
    the same pixels. `scaling` (inputs) is needed only when an input modality is given."""
    mask_img = nib.load(brainmask)
    brain = np.asarray(mask_img.dataobj) > 0
    slab = brain_slices(brain)
    z = select_slices(brain, n_slices, min_brain_fraction)
    corner = window_corner(brain, slab, size)
    ss = SubjectSlices(
        subject=subject,
        split=split,
        space=space,
        images={},
        mask=cut(brain.astype(np.float32), z, corner, size) > 0.5,
        z=z,
        affine=mask_img.affine,
        volume_shape=tuple(int(s) for s in brain.shape),
        corner=corner,
        context=context,
        target_scaling=target_scaling,
    )
    offsets = [d for d in range(-context, context + 1) if d != 0]
    for modality, path in volumes.items():
        img = nib.load(path)
        if img.shape != brain.shape or not np.allclose(img.affine, mask_img.affine, atol=1e-4):
            raise ValueError(f"sub-{subject} {path}: not on the brain mask's grid ({brainmask})")
        data = np.asarray(img.dataobj, dtype=np.float32)
        if modality != TARGET and scaling is None:
            raise ValueError(f"sub-{subject}: no scaling given for the {modality} slices")
        if modality == TARGET and target_scaling == "per_volume":
            scaled, scale, offset = relative_target(data, brain, z, corner, size)
        else:
            mode = target_scaling if modality == TARGET else scaling
            slab_block = cut(data, slab, corner, size)
            vrange = (float(slab_block.min()), float(slab_block.max()))
            scaled, scale, offset = scale_to_unit(cut(data, z, corner, size), mode, vrange)
            if modality != TARGET and offsets:
                ss.neighbours[modality] = np.stack(
                    [
                        scale_to_unit(cut(data, z + d, corner, size), mode, vrange)[0]
                        for d in offsets
                    ],
                    axis=1,
                )
        ss.images[modality], ss.scale[modality], ss.offset[modality] = scaled, scale, offset
    return ss
