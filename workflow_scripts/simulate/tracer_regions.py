"""Regions where HMPAO perfusion and FDG metabolism differ from the cerebral cortex.

nilearn ships no labelled atlas that works offline, so each region is an ellipsoid in MNI152
millimetres; its factor multiplies the grey-matter uptake inside it (white matter and fluid keep
their uptake), i.e. the ellipsoid is intersected with the grey-matter map. Values are relative to
cerebral cortical grey matter; docs/simulation.md gives the reasons.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TracerRegion:
    name: str
    centre_mm: tuple[float, float, float]  # MNI152 (x right, y anterior, z superior)
    semi_axes_mm: tuple[float, float, float]
    hmpao: float  # grey-matter uptake factor in HMPAO SPECT
    fdg: float  # grey-matter uptake factor in FDG-PET


# Later rows win where two ellipsoids touch (striatum and thalamus meet near the internal capsule).
TRACER_REGIONS = (
    TracerRegion("cerebellum", (0.0, -62.0, -32.0), (48.0, 26.0, 20.0), hmpao=1.10, fdg=0.85),
    TracerRegion("striatum_left", (-20.0, 6.0, 2.0), (11.0, 17.0, 12.0), hmpao=1.00, fdg=1.15),
    TracerRegion("striatum_right", (20.0, 6.0, 2.0), (11.0, 17.0, 12.0), hmpao=1.00, fdg=1.15),
    TracerRegion("thalamus_left", (-11.0, -18.0, 7.0), (8.0, 12.0, 8.0), hmpao=1.00, fdg=1.10),
    TracerRegion("thalamus_right", (11.0, -18.0, 7.0), (8.0, 12.0, 8.0), hmpao=1.00, fdg=1.10),
)
TRACERS = ("hmpao", "fdg")


def _region_block(
    region: TracerRegion, shape: tuple[int, int, int], affine: np.ndarray
) -> tuple[tuple[slice, ...], np.ndarray]:
    """The voxel box around a region's ellipsoid, and which of its voxels are inside."""
    box, sq = [], []
    for a in range(3):
        mm = affine[a, a] * np.arange(shape[a]) + affine[a, 3]
        u = ((mm - region.centre_mm[a]) / region.semi_axes_mm[a]) ** 2
        hit = np.flatnonzero(u <= 1.0)
        lo, hi = (hit[0], hit[-1] + 1) if len(hit) else (0, 0)
        box.append(slice(lo, hi))
        sq.append(u[lo:hi])
    inside = sq[0][:, None, None] + sq[1][None, :, None] + sq[2][None, None, :] <= 1.0
    return tuple(box), inside


def region_mask(
    region: TracerRegion, shape: tuple[int, int, int], affine: np.ndarray
) -> np.ndarray:
    """Voxels of a grid (axis-aligned affine, voxel -> MNI mm) inside the region's ellipsoid."""
    mask = np.zeros(shape, bool)
    box, inside = _region_block(region, shape, affine)
    mask[box] = inside
    return mask


def grey_matter_factor(
    tracer: str, shape: tuple[int, int, int], affine: np.ndarray, regions=TRACER_REGIONS
) -> np.ndarray:
    """Multiplier of grey-matter uptake for one tracer on a template grid (1 outside regions).
    Each region is evaluated only in the box around it."""
    if tracer not in TRACERS:
        raise ValueError(f"unknown tracer {tracer!r}; expected one of {TRACERS}")
    factor = np.ones(shape, np.float32)
    for region in regions:
        box, inside = _region_block(region, shape, affine)
        factor[box][inside] = getattr(region, tracer)
    return factor


def table() -> list[dict]:
    """The region table as plain values, for the truth file."""
    return [
        {
            "name": r.name,
            "centre_mni_mm": list(r.centre_mm),
            "semi_axes_mm": list(r.semi_axes_mm),
            "hmpao_grey_matter_factor": r.hmpao,
            "fdg_grey_matter_factor": r.fdg,
        }
        for r in TRACER_REGIONS
    ]
