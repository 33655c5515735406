"""One simulated subject: T1w MRI, FDG-PET, interictal (and ictal) HMPAO SPECT.

Every image is sampled from the subject's anatomy through its own scanner pose and grid, so the
true mapping between any two images is known: a point p of the anatomy frame lies at W_m @ p in
image m's scanner world (see anatomy.py for the frames).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import ndimage
from scipy.spatial.transform import Rotation

from workflow_scripts.simulate.anatomy import (
    Deformation,
    TemplateHead,
    _box,
    head_model,
    random_deformation,
    smooth_field,
)
from workflow_scripts.simulate.effects import DrawnEffects, EffectSettings, draw_effects
from workflow_scripts.simulate.tracer_regions import grey_matter_factor

# Relative uptake of pure tissues (grey:white = 4:1 for FDG, 2.5:1 for HMPAO).
PET_UPTAKE = {"gm": 4.0, "wm": 1.0, "csf": 0.05, "skull": 0.1, "scalp": 0.35}
SPECT_UPTAKE = {"gm": 2.5, "wm": 1.0, "csf": 0.05, "skull": 0.1, "scalp": 0.45}
T1_SIGNAL = {"gm": 0.62, "wm": 1.0, "csf": 0.18, "skull": 0.06, "scalp": 0.85}
PET_FWHM_MM, SPECT_FWHM_MM = 5.0, 10.0
# Focus effect sizes are drawn per subject (effects.py, config simulate.effects).
EFFECTS_STREAM = 7  # the effects' random stream: default_rng([seed, EFFECTS_STREAM])


@dataclass
class ImageGrid:
    """Where an image's voxels are: shape, voxel -> scanner world affine, and its pose W."""

    shape: tuple[int, int, int]
    affine: np.ndarray
    world_from_anatomy: np.ndarray


@dataclass
class SubjectModel:
    """Everything random about one subject, drawn from its seed."""

    subject: str
    split: str
    seed: int
    deformation: Deformation
    focus_template_mm: np.ndarray
    focus_radius_mm: float
    # Multiplicative regional factors on the template grid. They act on the brain only, so they
    # are computed in the brain's bounding box and are 1 outside it (regional_factor).
    metabolism: np.ndarray
    perfusion: np.ndarray
    ictal_perfusion: np.ndarray  # the ictal day's regional factors (own field added)
    effects: DrawnEffects
    settings: EffectSettings
    cavity_template_mm: np.ndarray | None = None
    cavity_radius_mm: float = 0.0
    grids: dict[str, ImageGrid] = field(default_factory=dict)


def random_pose(
    rng: np.random.Generator, max_deg: float = 10.0, max_mm: float = 10.0
) -> np.ndarray:
    """A rigid 4x4 transform with rotations up to max_deg about each axis and shifts up to max_mm."""
    pose = np.eye(4)
    pose[:3, :3] = Rotation.from_euler(
        "xyz", rng.uniform(-max_deg, max_deg, 3), degrees=True
    ).as_matrix()
    pose[:3, 3] = rng.uniform(-max_mm, max_mm, 3)
    return pose


def grid_affine(axes: np.ndarray, voxel: np.ndarray, shape, centre_mm: np.ndarray) -> np.ndarray:
    """Affine whose voxel axes run along the given world directions, centred on centre_mm."""
    affine = np.eye(4)
    affine[:3, :3] = axes * voxel[np.newaxis, :]
    affine[:3, 3] = centre_mm - affine[:3, :3] @ ((np.array(shape) - 1) / 2.0)
    return affine


def draw_grids(rng: np.random.Generator, voxel_scale: float, ictal: bool) -> dict[str, ImageGrid]:
    """Each modality in its own orientation, voxel size, matrix, field of view and pose."""
    head_centre = np.array([0.0, -18.0, 10.0])  # MNI head centre (mm), roughly
    grids = {}
    # T1w: 1 mm sagittal, voxel axes (A, S, R): slices along left-right.
    t1_axes = np.array([[0, 0, 1], [1, 0, 0], [0, 1, 0]], dtype=float)
    t1_vox = np.full(3, 1.0 * voxel_scale)
    t1_shape = tuple(int(round(n / voxel_scale)) for n in (256, 256, 176))
    # PET: axial, ~2 mm, RAS voxel order.
    pet_vox = np.array([rng.uniform(1.95, 2.2)] * 2 + [rng.uniform(2.0, 2.45)]) * voxel_scale
    pet_shape = (int(round(128 / voxel_scale)),) * 2 + (int(np.ceil(190 / pet_vox[2])),)
    # SPECT: axial, 3.5-4.5 mm, matrix 64 (or 128 for finer voxels), LPS voxel order.
    spect_mm = rng.uniform(3.5, 4.5)
    matrix = 64 if spect_mm >= 3.9 or rng.uniform() < 0.5 else 128
    spect_vox = np.full(3, spect_mm)
    spect_shape = (matrix, matrix, int(np.ceil(200 / spect_mm)))
    lps = np.diag([-1.0, -1.0, 1.0])
    specs = {
        "T1w": (t1_axes, t1_vox, t1_shape),
        "pet": (np.eye(3), pet_vox, pet_shape),
        "spect": (lps, spect_vox, spect_shape),
    }
    if ictal:
        specs["ictal"] = (lps, spect_vox, spect_shape)
    for name, (axes, vox, shape) in specs.items():
        fov_shift = rng.uniform(-8, 8, 3)
        grids[name] = ImageGrid(
            shape=shape,
            affine=grid_affine(axes, vox, shape, head_centre + fov_shift),
            world_from_anatomy=random_pose(rng),
        )
    return grids


def _pick_point(rng: np.random.Generator, mask: np.ndarray, affine: np.ndarray) -> np.ndarray:
    idx = np.argwhere(mask)
    choice = idx[rng.integers(len(idx))]
    return affine[:3, :3] @ choice + affine[:3, 3]


def draw_subject(
    subject: str,
    split: str,
    seed: int,
    voxel_scale: float = 1.0,
    ictal: bool = True,
    effects: EffectSettings | None = None,
    template: str | Path | None = None,
) -> tuple[SubjectModel, TemplateHead]:
    """Draw a subject's warp, regional factors, focus, cavity and image grids from its seed.

    The effect sizes come from a second stream of the same seed, so changing their settings
    leaves the subject's anatomy, focus site, cavity and poses as they were. `template`: the
    head model file of this voxel_scale (anatomy.save_template); None builds it here.
    """
    settings = effects or EffectSettings()
    rng = np.random.default_rng(seed)
    head, cortex = head_model(float(voxel_scale), template)
    deformation = random_deformation(rng, head)
    # Regional factors on a coarse grid (smooth over ~2-3 cm), then upsampled.
    coarse = tuple(max(4, s // 4) for s in head.shape)
    sigma = 15.0 / (4 * head.voxel_mm)
    common = smooth_field(rng, coarse, sigma, 0.08)
    pet_only = smooth_field(rng, coarse, sigma, 0.05)
    spect_only = smooth_field(rng, coarse, sigma, 0.05)
    brain_box = _bounding_box(head.brain)
    # Focus in cerebral cortical grey matter, away from the brain's deep centre (cortex).
    focus = _pick_point(rng, cortex, head.affine)
    focus_radius = float(rng.uniform(*settings.focus_radius_mm))
    effect_rng = np.random.default_rng([seed, EFFECTS_STREAM])
    drawn = draw_effects(effect_rng, settings, focus, focus_radius, cortex, head.affine)
    # The ictal day's own perfusion pattern: the interictal field plus an independent one.
    ictal_day = smooth_field(effect_rng, coarse, sigma, settings.day_to_day_regional)
    model = SubjectModel(
        subject=subject,
        split=split,
        seed=seed,
        deformation=deformation,
        focus_template_mm=focus,
        focus_radius_mm=focus_radius,
        metabolism=regional_factor(common + pet_only, head.shape, brain_box),
        perfusion=regional_factor(0.8 * common + spect_only, head.shape, brain_box),
        ictal_perfusion=regional_factor(
            0.8 * common + spect_only + ictal_day, head.shape, brain_box
        ),
        effects=drawn,
        settings=settings,
    )
    if split == "validation":
        # Resection cavity: a sphere of brain replaced by fluid, away from the focus.
        far = cortex & (_distance2(head, focus) > 40.0**2)
        model.cavity_template_mm = _pick_point(rng, far, head.affine)
        model.cavity_radius_mm = float(rng.uniform(14, 20))
    model.grids = draw_grids(rng, voxel_scale, ictal)
    return model, head


def regional_factor(
    coarse: np.ndarray, shape: tuple[int, ...], box: tuple[slice, ...]
) -> np.ndarray:
    """1 + the coarse field upsampled to the template grid (ndimage.zoom, linear), bit for bit
    inside the box and 1 outside it.

    Only the box (moved down a voxel or so where needed, see below) is interpolated, by
    ndimage.affine_transform with zoom's factors: it maps output voxel k to input coordinate
    (k + offset / factor) * factor, and with an offset whose quotient is exactly the box's first
    voxel s, that is zoom's own (k + s) * factor for whole-grid voxel k + s (the same weights,
    the same sums; tests/test_simulate_speed.py compares the two on random fields)."""
    out = np.ones(shape, np.float32)
    if any(b.stop <= b.start for b in box):
        return out
    # zoom's factor per axis (grid_mode=False): input voxel spacing in output voxels
    factor = np.array(
        [(c - 1) / (n - 1) if n > 1 else 1.0 for c, n in zip(coarse.shape, shape, strict=True)]
    )
    starts = []
    for b, f in zip(box, factor, strict=True):
        first = b.start  # a first voxel whose offset divides back exactly (0 always does)
        while first > 0 and (first * f) / f != first:
            first -= 1
        starts.append(first)
    offset = np.array(starts, dtype=np.float64) * factor  # affine_transform's shift: starts
    inner = tuple(slice(first, b.stop) for first, b in zip(starts, box, strict=True))
    with warnings.catch_warnings():  # "1-D matrix ... changed in SciPy 0.18": zoom's meaning
        warnings.simplefilter("ignore", UserWarning)
        part = ndimage.affine_transform(
            coarse,
            factor,
            offset,
            output_shape=tuple(b.stop - b.start for b in inner),
            order=1,
        )
    out[inner] = 1.0 + part
    return out


def _distance2(head: TemplateHead, centre: np.ndarray) -> np.ndarray:
    ijk = np.indices(head.shape, sparse=True)
    pts = [head.affine[a, a] * ijk[a] + head.affine[a, 3] for a in range(3)]
    return sum((p - c) ** 2 for p, c in zip(pts, centre, strict=True))


def subject_tissues(model: SubjectModel, head: TemplateHead) -> tuple[dict, np.ndarray]:
    """Tissue fractions and brain mask with the subject's resection cavity (if any) applied."""
    tissues = dict(head.tissues)
    brain = head.brain
    if model.cavity_template_mm is not None:
        cavity = _distance2(head, model.cavity_template_mm) <= model.cavity_radius_mm**2
        cavity &= head.brain
        tissues = {k: v.copy() for k, v in tissues.items()}
        for k in ("gm", "wm"):
            tissues[k][cavity] = 0.0
        tissues["csf"][cavity] = 1.0
        brain = head.brain & ~cavity
    return tissues, brain


def _blob(
    head: TemplateHead, centre: np.ndarray, sigma_mm: float, box: tuple[slice, ...] | None = None
) -> np.ndarray:
    """Gaussian of peak 1 around a template point: a product of one 1D Gaussian per axis (the
    grid is axis-aligned), much cheaper than exp() of a full distance volume. `box`: only these
    voxels of the grid (the same numbers as that part of the whole grid's blob)."""
    box = box or tuple(slice(None) for _ in head.shape)
    factors = []
    for a, n in enumerate(head.shape):
        mm = head.affine[a, a] * np.arange(n)[box[a]] + head.affine[a, 3]
        factors.append(np.exp(-((mm - centre[a]) ** 2) / (2 * sigma_mm**2)).astype(np.float32))
    x, y, z = factors
    return x[:, None, None] * y[None, :, None] * z[None, None, :]


def _bounding_box(mask: np.ndarray, margin: int = 0) -> tuple[slice, ...]:
    """Bounding box of a mask grown by margin voxels, clipped to the array (empty mask: an
    empty box)."""
    if not mask.any():
        return tuple(slice(0, 0) for _ in mask.shape)
    return _box(mask, margin)


def _blur(img: np.ndarray, sigma_vox: float) -> np.ndarray:
    """ndimage.gaussian_filter(img, sigma_vox), bit for bit, filtering only the box around the
    non-zero voxels grown by the kernel's radius. Outside that box the whole-grid filter gives
    exact zeros; inside it every tap reads what the whole-grid filter reads: the voxels
    themselves, or beyond the box's faces (mode reflect) mirrored voxels of its zero margin, or,
    where the box meets the grid's edge, the same mirror as the whole grid's."""
    radius = int(4.0 * float(sigma_vox) + 0.5)  # gaussian_filter's kernel (truncate=4.0)
    nonzero = img != 0
    if not nonzero.any():
        return ndimage.gaussian_filter(img, sigma_vox)
    box = _box(nonzero, radius)
    out = np.zeros_like(img)
    out[box] = ndimage.gaussian_filter(img[box], sigma_vox)
    return out


MODALITIES = ("T1w", "pet", "spect", "ictal")


def activity_maps(
    model: SubjectModel,
    head: TemplateHead,
    tissues: dict,
    names: tuple[str, ...] = MODALITIES,
    blur: bool = True,
) -> dict[str, np.ndarray]:
    """Noiseless signal of the named modalities on the template grid, blurred by each scanner's
    PSF (blur=False: the uptake itself, for tests).

    SPECT and PET differ in their regional fields, their grey-matter factors in cerebellum,
    striatum and thalamus (tracer_regions.py) and in their focus: the interictal hypoperfusion
    sits on the onset focus, the PET hypometabolism on its own, displaced and larger zone. The
    ictal map adds the onset hyperperfusion (and any propagation) to the ictal day's perfusion;
    its global count factor is applied with the counts (subject.py), not here.
    """
    e = model.effects
    in_brain = (tissues["gm"] + tissues["wm"]) > 0
    # Regional factors only act in the brain (np.where(in_brain, factor, 1)); elsewhere a map is
    # its tissue mix times exactly 1. So each factor is evaluated in the brain's bounding box
    # only, by the same expressions (the same numbers) as on the whole grid.
    box = _bounding_box(in_brain)
    in_box = in_brain[box]
    onset = _blob(head, model.focus_template_mm, model.focus_radius_mm, box)

    def mix(weights: dict, tracer: str | None = None) -> np.ndarray:
        # sum(w * tissue) in place: the same additions in the same order (sum's 0 + the first
        # term is that term: no term is -0.0, the skull and scalp maps are 0 or 1)
        rest = [k for k in weights if k != "gm"]
        total = weights[rest[0]] * tissues[rest[0]]
        for k in rest[1:]:
            total += weights[k] * tissues[k]
        gm = weights["gm"] * tissues["gm"]
        if tracer is not None and model.settings.tracer_regions:
            gm *= grey_matter_factor(tracer, head.shape, head.affine)
        total += gm
        return total.astype(np.float32, copy=False)

    def times_in_brain(base: np.ndarray, factor: np.ndarray) -> np.ndarray:
        """base * np.where(in_brain, factor, 1), factor given on the brain's box only."""
        out = base.copy()
        out[box] = base[box] * np.where(in_box, factor, 1)
        return out

    def pet() -> np.ndarray:
        zone = _blob(head, e.pet_focus_template_mm, e.pet_focus_radius_mm, box)
        fdg = mix(PET_UPTAKE, "fdg")
        return times_in_brain(fdg, model.metabolism[box] * (1 - e.pet_hypometabolism * zone))

    hmpao = mix(SPECT_UPTAKE, "hmpao") if {"spect", "ictal"} & set(names) else None

    def spect() -> np.ndarray:
        regional = model.perfusion[box] * (1 - e.interictal_hypoperfusion * onset)
        return times_in_brain(hmpao, regional)

    def ictal() -> np.ndarray:
        hyper = e.ictal_increase * onset
        if e.propagation is not None:
            p = e.propagation
            hyper += p.increase * _blob(head, p.template_mm, p.radius_mm, box)
        return times_in_brain(hmpao, model.ictal_perfusion[box] * (1 + hyper))

    build = {"T1w": lambda: mix(T1_SIGNAL), "pet": pet, "spect": spect, "ictal": ictal}
    fwhm = {"pet": PET_FWHM_MM, "spect": SPECT_FWHM_MM, "ictal": SPECT_FWHM_MM}
    maps = {}
    for name in names:
        img = build[name]().astype(np.float32, copy=False)
        if blur and name in fwhm:
            img = _blur(img, fwhm[name] / 2.3548 / head.voxel_mm)
        maps[name] = img.astype(np.float32, copy=False)
    return maps


# The warp is smooth over ~20 mm: where it is evaluated on a subgrid of this spacing and
# interpolated linearly, it moves points by < 0.01 mm (test_simulate_speed.py measures it).
COORD_STRIDE_MM = 2.0


def _subgrid(n: int, step: int) -> np.ndarray:
    """Every step-th voxel index of an axis, always including the last one."""
    pos = np.arange(0, n, step)
    return pos if pos[-1] == n - 1 else np.append(pos, n - 1)


def _upsample_linear(values: np.ndarray, positions: list[np.ndarray], shape) -> np.ndarray:
    """Separable linear interpolation of values known on a subgrid to every voxel of shape (the
    last len(shape) axes; leading axes, e.g. x/y/z components, are carried along)."""
    out = values
    lead = values.ndim - len(shape)
    for axis, (pos, n) in enumerate(zip(positions, shape, strict=True)):
        if len(pos) == n:
            continue
        full = np.arange(n)
        j = np.clip(np.searchsorted(pos, full, side="right") - 1, 0, len(pos) - 2)
        w = ((full - pos[j]) / (pos[j + 1] - pos[j])).astype(np.float32)
        w = w.reshape([n if a == lead + axis else 1 for a in range(out.ndim)])
        # below * (1 - w) + above * w, in place (the same float32 operations)
        below = np.take(out, j, axis=lead + axis)
        below *= 1 - w
        above = np.take(out, j + 1, axis=lead + axis)
        above *= w
        below += above
        out = below
    return out


def template_coordinates(
    head: TemplateHead, model: SubjectModel, grid: ImageGrid, stride_mm: float = COORD_STRIDE_MM
) -> np.ndarray:
    """(3, *grid.shape) float32 template-grid voxel coordinates of every voxel of an image grid,
    through the image's pose and the subject's warp. The warp is evaluated exactly on a subgrid
    of about stride_mm (every voxel where voxels are coarser) and interpolated in between: the
    pose is affine, so only the smooth displacement is approximated."""
    to_anatomy = np.linalg.inv(grid.world_from_anatomy) @ grid.affine
    template_vox = np.linalg.inv(head.affine)
    voxel_mm = np.linalg.norm(grid.affine[:3, :3], axis=0)
    steps = [max(1, int(round(stride_mm / v))) for v in voxel_mm]
    positions = [_subgrid(n, st) for n, st in zip(grid.shape, steps, strict=True)]
    vox = np.stack(np.meshgrid(*positions, indexing="ij")).reshape(3, -1).astype(np.float64)
    p = to_anatomy[:3, :3] @ vox + to_anatomy[:3, 3:4]
    idx = template_vox[:3, :3] @ model.deformation(p) + template_vox[:3, 3:4]
    idx = idx.astype(np.float32).reshape(3, *(len(x) for x in positions))
    return _upsample_linear(idx, positions, grid.shape)


def sample_on_grid(
    volumes: list[np.ndarray], head: TemplateHead, model: SubjectModel, grid: ImageGrid
) -> list[np.ndarray]:
    """Values of template-grid volumes at each voxel of an image grid (through pose and warp).
    The coordinates are computed once for all volumes."""
    coords = template_coordinates(head, model, grid)
    return [
        ndimage.map_coordinates(vol, coords, order=1, mode="constant", cval=0.0, output=np.float32)
        for vol in volumes
    ]
