"""A subject's synthetic interictal SPECT from its inputs and a model only.

Leak-free by construction: this module never reads the subject's real SPECT. Every axial slice
that meets the MRI brain mask is synthesised (whole brain), with the model's 2.5D context and
target scaling (recorded in its train_config.json), and put back on the subject's grid, inside
the MRI brain mask, as uptake relative to the mean over that mask:

- `per_volume` models learnt relative uptake on a fixed line, so the slices keep their relation;
- `per_slice` models (the paper) learnt each slice on its own [-1, 1]: their slices come back
  at arbitrary gains, (p + 1) / 2, which no later normalisation can undo.

Beside it, an uncertainty map: the standard deviation over test-time augmentations (mirrored
or not, shifted by 0 or +-shift_px pixels), in the same units. (Monte Carlo dropout was tried
first: on the demo its spread was anti-correlated with the error; see README.)
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np

from workflow_scripts.slices.extract import extract
from workflow_scripts.slices.files import (
    INPUT_CHANNELS,
    RELATIVE_MAX,
    SubjectSlices,
    place_slices,
    stack_input,
)

log = logging.getLogger(__name__)


@dataclass
class Synthesis:
    volume: nib.Nifti1Image  # relative uptake, brain mean 1
    sd: nib.Nifti1Image  # standard deviation over test-time augmentations, same units
    pred: np.ndarray  # (N, S, S) raw model output in [-1, 1]
    z: np.ndarray  # (N,) axial indices synthesised
    precision: str  # what the generator ran at (model.infer.inference_precision)


def model_meta(model_dir: str | Path) -> dict:
    return json.loads((Path(model_dir) / "train_config.json").read_text())


def to_relative(pred: np.ndarray, target_scaling: str) -> np.ndarray:
    """Model output in [-1, 1] -> uptake before brain-mean normalisation (see module doc)."""
    unit = (np.asarray(pred, dtype=np.float64) + 1.0) / 2.0
    if target_scaling == "per_volume":
        return unit * RELATIVE_MAX
    if target_scaling == "per_slice":
        return unit
    raise ValueError(f"unknown target scaling {target_scaling!r}")


def input_slices(
    volumes: dict[str, str | Path],
    brainmask: str | Path,
    meta: dict,
    *,
    subject: str,
    space: str,
    scaling: str,
) -> SubjectSlices:
    """Every brain slice of the model's input modalities (never the SPECT)."""
    needed = INPUT_CHANNELS[meta["condition"]["input"]]
    if set(volumes) != set(needed):
        raise ValueError(f"sub-{subject}: synthesis takes {list(needed)}, got {sorted(volumes)}")
    return extract(
        volumes,
        brainmask,
        subject=subject,
        split="",
        space=space,
        n_slices=None,
        size=meta["size"],
        min_brain_fraction=0.0,
        scaling=scaling,
        target_scaling=meta["target_scaling"],
        context=meta["context"],
    )


def synthesise_subject(
    model_dir: str | Path,
    volumes: dict[str, str | Path],
    brainmask: str | Path,
    *,
    subject: str,
    space: str,
    scaling: str,
    shift_px: int = 2,
) -> Synthesis:
    """Synthesise a subject's whole-brain SPECT (see module doc). `scaling`: the input scaling
    the model was trained with (slices.scaling)."""
    from model.infer import inference_precision, load_generator, synthesise_augmented

    meta = model_meta(model_dir)
    ss = input_slices(volumes, brainmask, meta, subject=subject, space=space, scaling=scaling)
    x = stack_input(ss, meta["condition"]["input"])
    if x.shape[1] != meta["in_channels"]:
        raise ValueError(
            f"sub-{subject}: {x.shape[1]} input channels, the model in {model_dir} takes "
            f"{meta['in_channels']}"
        )
    generator = load_generator(model_dir)
    precision = inference_precision(meta["run"]["precision"][-1])
    draws = synthesise_augmented(generator, x, shift_px, precision)
    pred = draws[0]  # the first pass is the input as it is: the synthesis itself
    # uptake is only defined in the brain (the MRI brain mask: an input, not the SPECT's mask)
    brain = np.asarray(nib.load(brainmask).dataobj) > 0
    rel = np.asarray(place_slices(to_relative(pred, meta["target_scaling"]), ss).dataobj) * brain
    norm = float(rel[brain].mean())
    if not norm > 0:
        raise ValueError(f"sub-{subject}: the synthetic SPECT is empty inside the brain mask")
    sd = to_relative(draws, meta["target_scaling"]).std(axis=0)
    sd = np.asarray(place_slices(sd, ss).dataobj) * brain
    affine = nib.load(brainmask).affine
    volume = nib.Nifti1Image((rel / norm).astype(np.float32), affine)
    sd_img = nib.Nifti1Image((sd / norm).astype(np.float32), affine)
    log.info(
        "sub-%s: %d slices (z %d-%d) synthesised at %s, %d augmented passes for the uncertainty",
        subject,
        len(ss.z),
        ss.z.min(),
        ss.z.max(),
        precision,
        len(draws),
    )
    return Synthesis(volume, sd_img, pred, np.asarray(ss.z), precision)
