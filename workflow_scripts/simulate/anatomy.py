"""Template tissue maps, a head around the brain, and per-subject smooth deformations.

Coordinate frames (all in mm):
- *template* frame q: MNI152 (ICBM 2009) world coordinates of nilearn's 1 mm maps;
- *anatomy* frame p: the subject's own anatomy. A subject is the template warped by
  q = D(p) = s * p + u(p), a global scale s and a smooth displacement u (a few mm);
- each image's *scanner world* x = W @ p, with W a rigid pose per image (see modalities.py).

The head model and cortex mask depend only on the voxel size: the workflow builds them once per
run (rule simulate_template, `save_template`) and every subject job loads that file
(`head_model`), bit for bit what `template_head` and `cortex_mask` build in process.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from nibabel.affines import apply_affine
from scipy import ndimage

from workflow_scripts.masks import fill_holes

log = logging.getLogger(__name__)

# Tissue classes of the head model (template frame).
TISSUES = ("gm", "wm", "csf", "skull", "scalp")
# Shell thicknesses (mm) outside the brain: CSF, then skull, then scalp.
CSF_MM, SKULL_MM, SCALP_MM = 3.0, 6.0, 5.0
CLOSE_MM = 8.0  # gaps narrower than ~2x this between lobes are fluid inside the skull
PAD_MM = 18.0  # room for the head around nilearn's brain-only grid


@dataclass(frozen=True)
class TemplateHead:
    """Tissue fractions on a padded template grid (voxel -> template mm via `affine`)."""

    affine: np.ndarray
    tissues: dict[str, np.ndarray]  # float32 fractions in [0, 1]
    brain: np.ndarray  # bool, the true brain (GM + WM + inner CSF)

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.brain.shape

    @property
    def voxel_mm(self) -> float:
        return float(abs(self.affine[0, 0]))


def _box(mask: np.ndarray, margin: int) -> tuple[slice, ...]:
    """Bounding box of a mask grown by margin voxels (clipped to the array).

    A Euclidean distance transform inside this box is exact up to `margin - 1` voxels from the
    mask: every mask voxel is inside, and from any voxel the box face is no farther than a
    voxel beyond it. On the 1 mm head this skips half of the grid (issue 17)."""
    box = []
    for axis in range(mask.ndim):
        other = tuple(a for a in range(mask.ndim) if a != axis)
        hit = np.flatnonzero(mask.any(axis=other))
        box.append(slice(max(0, hit[0] - margin), min(mask.shape[axis], hit[-1] + margin + 1)))
    return tuple(box)


@lru_cache(maxsize=4)
def template_head(voxel_mm: float = 1.0) -> TemplateHead:
    """Build the head model from nilearn's MNI152 GM/WM maps and brain mask (no download)."""
    from nilearn import datasets  # only here: subject jobs load the built model (head_model)

    gm_img = datasets.load_mni152_gm_template(resolution=1)
    gm = gm_img.get_fdata(dtype=np.float32)
    wm = datasets.load_mni152_wm_template(resolution=1).get_fdata(dtype=np.float32)
    brain = datasets.load_mni152_brain_mask(resolution=1).get_fdata(dtype=np.float32) > 0.5
    affine = gm_img.affine.copy()
    pad = int(round(PAD_MM))
    gm, wm = (np.pad(a, pad) for a in (gm, wm))
    brain = np.pad(brain, pad)
    affine[:3, 3] -= pad * np.diag(affine)[:3]
    if voxel_mm != 1.0:
        zoom = 1.0 / voxel_mm
        gm = ndimage.zoom(gm, zoom, order=1)
        wm = ndimage.zoom(wm, zoom, order=1)
        brain = ndimage.zoom(brain.astype(np.float32), zoom, order=1) > 0.5
        affine = affine.copy()
        affine[:3, :3] *= voxel_mm
    brain = fill_holes(brain)
    gm = np.clip(gm, 0, 1) * brain
    wm = np.clip(wm, 0, 1) * brain
    total = gm + wm
    over = total > 1
    gm[over] /= total[over]
    wm[over] /= total[over]
    csf_in = np.clip(1 - gm - wm, 0, 1) * brain  # ventricles and sulci
    # The skull follows a closed (gap-free) brain outline, not every gyrus and fissure: close the
    # mask by CLOSE_MM with two distance transforms (dilate, then erode) instead of a big kernel.
    # Each transform runs in a box around its mask that holds every distance used (see _box).
    box = _box(brain, int(np.ceil(CLOSE_MM / voxel_mm)) + 2)
    near = np.zeros_like(brain)
    near[box] = ndimage.distance_transform_edt(~brain[box]) * voxel_mm <= CLOSE_MM
    closed = np.zeros_like(brain)
    closed[box] = ndimage.distance_transform_edt(near[box]) * voxel_mm > CLOSE_MM
    closed |= brain
    # Distance (mm) outside the closed brain defines the shells of the head.
    shells_mm = CSF_MM + SKULL_MM + SCALP_MM
    box = _box(closed, int(np.ceil(shells_mm / voxel_mm)) + 2)
    dist = np.full(brain.shape, np.inf)
    dist[box] = ndimage.distance_transform_edt(~closed[box]) * voxel_mm
    csf_out = (closed & ~brain) | ((dist > 0) & (dist <= CSF_MM))
    skull = (dist > CSF_MM) & (dist <= CSF_MM + SKULL_MM)
    scalp = (dist > CSF_MM + SKULL_MM) & (dist <= CSF_MM + SKULL_MM + SCALP_MM)
    # No head below the cerebellum cut of the template: the neck is out of the field of view.
    tissues = {
        "gm": gm.astype(np.float32),
        "wm": wm.astype(np.float32),
        "csf": (csf_in + csf_out).astype(np.float32),
        "skull": skull.astype(np.float32),
        "scalp": scalp.astype(np.float32),
    }
    return TemplateHead(affine=affine, tissues=tissues, brain=brain)


@lru_cache(maxsize=4)
def cortex_mask(voxel_mm: float = 1.0) -> np.ndarray:
    """Cerebral cortical grey matter of the template head, where foci and cavities are placed:
    grey matter > 0.7, deeper than 3 mm and within 12 mm of the brain's outside, not in the
    cerebellum or brainstem (focal epilepsy is cortical)."""
    head = template_head(voxel_mm)
    # n iterations of binary erosion/dilation with the 6-neighbour element reach exactly the
    # voxels within city-block distance n: one chamfer transform gives both, and is far cheaper
    # than 12 dilation passes over the 1 mm grid.
    depth = ndimage.distance_transform_cdt(head.brain, metric="taxicab")
    deep = depth > max(1, int(3 / head.voxel_mm))
    near_outside = depth <= int(np.ceil(12 / head.voxel_mm))
    cortex = (head.tissues["gm"] > 0.7) & deep & near_outside
    ijk = np.indices(head.shape, sparse=True)
    y, z = (head.affine[a, a] * ijk[a] + head.affine[a, 3] for a in (1, 2))
    cortex &= ~((y < -38) & (z < -8)) & (z > -40)
    return cortex


# ---- the built head model as a file (rule simulate_template) ----
TEMPLATE_FORMAT = 1  # bump when the file's layout changes
_ONE = np.float32(1.0).view(np.uint32)


def _pack(mask: np.ndarray) -> np.ndarray:
    return np.packbits(mask, axis=None)


def _unpack(bits: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    return np.unpackbits(bits, count=int(np.prod(shape))).reshape(shape).view(bool)


def save_template(path: str | Path, voxel_mm: float = 1.0) -> Path:
    """Write the head model and cortex mask of a voxel size to an uncompressed .npz.

    Compact and exact: each tissue map is mostly exact zeros and ones (outside the brain every
    map is), so it is stored as a bit mask of its ones, a bit mask of its other non-zero voxels
    and those voxels' float32 values; the masks as bits (about 40 MB at 1 mm instead of 300)."""
    from workflow_scripts.nifti_io import atomic_path

    head = template_head(float(voxel_mm))
    arrays = {
        "format": np.array(TEMPLATE_FORMAT),
        "voxel_mm": np.array(float(voxel_mm)),
        "shape": np.array(head.shape),
        "affine": head.affine,
        "brain": _pack(head.brain),
        "cortex": _pack(cortex_mask(float(voxel_mm))),
    }
    for name in TISSUES:
        bits = head.tissues[name].view(np.uint32)  # exact: no float comparison (-0.0, NaN)
        one = bits == _ONE
        other = ~one & (bits != 0)
        arrays[f"{name}_one"] = _pack(one)
        arrays[f"{name}_other"] = _pack(other)
        arrays[f"{name}_values"] = head.tissues[name][other]
    with atomic_path(path, ".npz") as tmp:
        np.savez(tmp, **arrays)  # uncompressed: loading costs no inflating
    log.info("head model of %s mm voxels, grid %s: %s", voxel_mm, head.shape, path)
    return Path(path)


def load_template(
    path: str | Path, voxel_mm: float | None = None
) -> tuple[TemplateHead, np.ndarray]:
    """The head model and cortex mask written by save_template (ValueError when the file is of
    another format or, given voxel_mm, another voxel size)."""
    with np.load(path) as f:
        if int(f["format"]) != TEMPLATE_FORMAT:
            raise ValueError(f"{path}: template format {int(f['format'])}, not {TEMPLATE_FORMAT}")
        if voxel_mm is not None and float(f["voxel_mm"]) != float(voxel_mm):
            raise ValueError(
                f"{path}: a template of {float(f['voxel_mm'])} mm voxels, not {voxel_mm}"
            )
        shape = tuple(int(n) for n in f["shape"])
        tissues = {}
        for name in TISSUES:
            t = _unpack(f[f"{name}_one"], shape).astype(np.float32)
            t[_unpack(f[f"{name}_other"], shape)] = f[f"{name}_values"]
            tissues[name] = t
        head = TemplateHead(
            affine=f["affine"], tissues=tissues, brain=_unpack(f["brain"], shape).copy()
        )
        cortex = _unpack(f["cortex"], shape).copy()
    return head, cortex


def head_model(
    voxel_mm: float = 1.0, template: str | Path | None = None
) -> tuple[TemplateHead, np.ndarray]:
    """The head model and its cortex mask: loaded from a save_template file, or built here."""
    if template is not None:
        return load_template(template, voxel_mm)
    return template_head(float(voxel_mm)), cortex_mask(float(voxel_mm))


@dataclass(frozen=True)
class Deformation:
    """q = scale * p + u(p): anatomy frame -> template frame (mm)."""

    scale: float
    field_affine: np.ndarray  # voxel -> anatomy mm of the coarse displacement grid
    field: np.ndarray  # (3, X, Y, Z) displacement in mm

    def __call__(self, points: np.ndarray) -> np.ndarray:
        """Map (3, N) anatomy-frame points to the template frame."""
        to_field = np.linalg.inv(self.field_affine)
        zooms, shift = np.diag(to_field)[:3], to_field[:3, 3]
        if np.array_equal(to_field[:3, :3], np.diag(zooms)):
            # The field's grid is axis-aligned (random_deformation's always is): the same
            # numbers as apply_affine's matrix product, whose other terms are exact zeros, in
            # one pass over C-ordered arrays instead of products and copies of the transpose.
            idx = points * zooms[:, None] + shift[:, None]
        else:
            idx = apply_affine(to_field, points.T).T
        disp = np.stack(
            [ndimage.map_coordinates(c, idx, order=1, mode="nearest") for c in self.field]
        )
        return self.scale * points + disp

    def inverse(self, q: np.ndarray, iterations: int = 20) -> np.ndarray:
        """Anatomy point(s) p with D(p) = q, by fixed-point iteration (u is small and smooth)."""
        q = np.asarray(q, dtype=float).reshape(3, -1)
        p = q / self.scale
        for _ in range(iterations):
            p = p - (self(p) - q) / self.scale
        return p


def random_deformation(
    rng: np.random.Generator,
    head: TemplateHead,
    amplitude_mm: float = 3.0,
    smoothness_mm: float = 20.0,
    scale_range: float = 0.05,
) -> Deformation:
    """A smooth random warp: Gaussian-filtered noise on a coarse grid plus a global scale."""
    spacing = 4.0
    lo = head.affine[:3, 3]
    hi = lo + (np.array(head.shape) - 1) * head.voxel_mm
    shape = tuple(int(np.ceil((h - low) / spacing)) + 1 for low, h in zip(lo, hi, strict=True))
    field = rng.standard_normal((3, *shape)).astype(np.float32)
    for c in range(3):
        field[c] = ndimage.gaussian_filter(field[c], smoothness_mm / spacing)
        field[c] *= amplitude_mm / (field[c].std() + 1e-12)
    affine = np.diag([spacing, spacing, spacing, 1.0])
    affine[:3, 3] = lo
    scale = float(1.0 + rng.uniform(-scale_range, scale_range))
    return Deformation(scale=scale, field_affine=affine, field=field)


def smooth_field(
    rng: np.random.Generator, shape: tuple[int, ...], sigma_vox: float, std: float
) -> np.ndarray:
    """Zero-mean smooth random field with a given standard deviation."""
    f = ndimage.gaussian_filter(rng.standard_normal(shape).astype(np.float32), sigma_vox)
    f -= f.mean()
    return f * (std / (f.std() + 1e-12))
