"""The cheaper simulator (issue 17) simulates the same thing as the code it replaced.

The replaced implementations are kept here, only as references: the cortex mask by repeated
erosion/dilation, the focus blob as exp() of a distance volume, and sampling that warps every
voxel through the displacement field. Grids at voxel_scale=3 are sampled exactly (the warp
subgrid is every voxel); a small 1 mm grid checks the interpolated warp at its default spacing.

A subject simulated from the head model file (rule simulate_template) is byte for byte the
subject that builds its head model in process.
"""

from __future__ import annotations

import filecmp
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from workflow_scripts.simulate.anatomy import (
    CLOSE_MM,
    CSF_MM,
    SCALP_MM,
    SKULL_MM,
    cortex_mask,
    load_template,
    save_template,
    template_head,
)
from workflow_scripts.simulate.modalities import (
    PET_FWHM_MM,
    PET_UPTAKE,
    SPECT_FWHM_MM,
    SPECT_UPTAKE,
    T1_SIGNAL,
    ImageGrid,
    _blob,
    _blur,
    _distance2,
    _subgrid,
    _upsample_linear,
    activity_maps,
    draw_subject,
    grid_affine,
    regional_factor,
    sample_on_grid,
    subject_tissues,
    template_coordinates,
)
from workflow_scripts.simulate.subject import simulate_subject
from workflow_scripts.simulate.tracer_regions import grey_matter_factor

SCALE = 3.0


def old_head_shells(voxel_mm: float) -> dict[str, np.ndarray]:
    """The former head shells: distance transforms over the whole padded grid."""
    brain = template_head(voxel_mm).brain
    outside = ndimage.distance_transform_edt(~brain) * voxel_mm
    closed = ndimage.distance_transform_edt(outside <= CLOSE_MM) * voxel_mm > CLOSE_MM
    closed |= brain
    dist = ndimage.distance_transform_edt(~closed) * voxel_mm
    return {
        "csf_out": (closed & ~brain) | ((dist > 0) & (dist <= CSF_MM)),
        "skull": (dist > CSF_MM) & (dist <= CSF_MM + SKULL_MM),
        "scalp": (dist > CSF_MM + SKULL_MM) & (dist <= CSF_MM + SKULL_MM + SCALP_MM),
    }


def old_cortex(voxel_mm: float) -> np.ndarray:
    head = template_head(voxel_mm)
    cortex = (head.tissues["gm"] > 0.7) & ndimage.binary_erosion(
        head.brain, iterations=max(1, int(3 / head.voxel_mm))
    )
    cortex &= ndimage.binary_dilation(~head.brain, iterations=int(np.ceil(12 / head.voxel_mm)))
    ijk = np.indices(head.shape, sparse=True)
    y, z = (head.affine[a, a] * ijk[a] + head.affine[a, 3] for a in (1, 2))
    cortex &= ~((y < -38) & (z < -8)) & (z > -40)
    return cortex


def old_coordinates(head, model, grid) -> np.ndarray:
    """Every voxel through pose and warp, in float64 (the former sample_on_grid)."""
    to_anatomy = np.linalg.inv(grid.world_from_anatomy) @ grid.affine
    template_vox = np.linalg.inv(head.affine)
    vox = np.indices(grid.shape).reshape(3, -1).astype(np.float64)
    p = to_anatomy[:3, :3] @ vox + to_anatomy[:3, 3:4]
    idx = template_vox[:3, :3] @ model.deformation(p) + template_vox[:3, 3:4]
    return idx.reshape(3, *grid.shape)


def old_sample(volumes, head, model, grid) -> list[np.ndarray]:
    idx = old_coordinates(head, model, grid)
    return [ndimage.map_coordinates(v, idx, order=1, mode="constant", cval=0.0) for v in volumes]


def test_head_shells_from_boxed_distance_transforms_are_unchanged():
    for voxel_mm in (2.0, 3.0):
        head = template_head(voxel_mm)
        old = old_head_shells(voxel_mm)
        np.testing.assert_array_equal(head.tissues["skull"] > 0, old["skull"])
        np.testing.assert_array_equal(head.tissues["scalp"] > 0, old["scalp"])
        csf_in = np.clip(1 - head.tissues["gm"] - head.tissues["wm"], 0, 1) * head.brain
        np.testing.assert_array_equal(
            head.tissues["csf"], (csf_in + old["csf_out"]).astype(np.float32)
        )


def test_cortex_by_chamfer_distance_is_the_eroded_dilated_mask():
    for voxel_mm in (2.0, 3.0):
        np.testing.assert_array_equal(cortex_mask(voxel_mm), old_cortex(voxel_mm))


def test_separable_blob_is_the_gaussian_of_the_distance():
    head = template_head(SCALE)
    centre = np.array([31.3, -12.7, 18.2])
    old = np.exp(-_distance2(head, centre) / (2 * 9.5**2))
    np.testing.assert_allclose(_blob(head, centre, 9.5), old, rtol=1e-5, atol=1e-7)


def test_sampling_matches_the_former_per_voxel_warp_on_every_grid():
    model, head = draw_subject("01", "validation", 21, voxel_scale=SCALE)
    tissues, brain = subject_tissues(model, head)
    maps = activity_maps(model, head, tissues)
    for name, grid in model.grids.items():
        volumes = [maps[name], brain.astype(np.float32)]
        new = sample_on_grid(volumes, head, model, grid)
        old = old_sample(volumes, head, model, grid)
        for a, b in zip(new, old, strict=True):
            assert a.shape == grid.shape and a.dtype == np.float32
            np.testing.assert_allclose(a, b, atol=1e-4 * float(np.abs(b).max()), err_msg=name)


def test_interpolated_warp_stays_within_its_stated_tolerance():
    """A 1 mm grid (the T1w's voxel size) uses the 2 mm warp subgrid: coordinates agree with
    warping every voxel to 0.005 mm on average and 0.15 mm at worst (measured on the full 1 mm
    T1w grid: 0.003 / 0.12 mm); a 12 mm subgrid would not (so the check can fail)."""
    model, head = draw_subject("01", "train", 22, voxel_scale=SCALE)
    t1 = model.grids["T1w"]
    shape = (72, 64, 56)
    fine = ImageGrid(
        shape=shape,
        affine=grid_affine(t1.affine[:3, :3] / SCALE, np.ones(3), shape, np.array([5, -20, 10])),
        world_from_anatomy=t1.world_from_anatomy,
    )
    old = old_coordinates(head, model, fine)
    error_mm = np.abs(template_coordinates(head, model, fine) - old) * head.voxel_mm
    assert error_mm.mean() < 0.005 and error_mm.max() < 0.15
    coarse = np.abs(template_coordinates(head, model, fine, stride_mm=12.0) - old)
    assert (coarse * head.voxel_mm).mean() > 0.005
    # exact where the subgrid is every voxel
    exact = template_coordinates(head, model, fine, stride_mm=1.0)
    np.testing.assert_allclose(exact, old, atol=1e-3)


def written_files(root: Path) -> dict[str, Path]:
    return {p.relative_to(root).as_posix(): p for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def template_file(tmp_path_factory) -> Path:
    return save_template(tmp_path_factory.mktemp("template") / "template_head.npz", SCALE)


def test_template_file_holds_the_head_model_bit_for_bit(template_file):
    head, cortex = load_template(template_file, SCALE)
    built = template_head(SCALE)
    np.testing.assert_array_equal(head.affine, built.affine)
    assert head.brain.dtype == bool and np.array_equal(head.brain, built.brain)
    assert np.array_equal(cortex, cortex_mask(SCALE))
    assert head.tissues.keys() == built.tissues.keys()
    for name, tissue in built.tissues.items():
        got = head.tissues[name]
        assert got.dtype == tissue.dtype and got.tobytes() == tissue.tobytes(), name
    with pytest.raises(ValueError, match="mm voxels"):
        load_template(template_file, 2.0)


@pytest.mark.parametrize(
    ("subject", "split", "seed"), [("01", "train", 31), ("02", "validation", 32)]
)
def test_subject_from_the_template_file_is_byte_identical(
    tmp_path, template_file, subject, split, seed
):
    """Every file (images, masks, noiseless SPECT, truth, sidecars, QC) is the same whether the
    head model is built in process or read from the file; a validation subject has a cavity."""
    truths = {}
    for how, template in (("built", None), ("file", template_file)):
        bids = tmp_path / how
        truths[how] = simulate_subject(
            subject, split, seed, bids, voxel_scale=SCALE, qc_png=bids / "qc.png", template=template
        )
    assert truths["built"] == truths["file"]
    built, loaded = written_files(tmp_path / "built"), written_files(tmp_path / "file")
    assert built.keys() == loaded.keys() and len(built) >= 15
    differ = [n for n in built if not filecmp.cmp(built[n], loaded[n], shallow=False)]
    assert not differ, f"differ: {differ}"


def test_subject_job_with_the_template_file_does_not_import_nilearn(tmp_path, template_file):
    code = (
        "import sys\n"
        "from workflow_scripts.simulate.subject import simulate_subject\n"
        f"simulate_subject('03', 'test', 5, {str(tmp_path)!r}, voxel_scale={SCALE}, "
        f"template={str(template_file)!r})\n"
        "assert 'nilearn' not in sys.modules, 'nilearn was imported'\n"
    )
    root = Path(__file__).resolve().parents[1]
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root)
    assert run.returncode == 0, run.stderr[-2000:]


def test_regional_factor_in_a_box_is_the_whole_grid_zoom_there():
    """The brain-box interpolation of the regional fields (affine_transform with an offset that
    divides back exactly) gives zoom's bytes in the box, on grids and boxes of every kind,
    including boxes whose first voxel has to move down, and 1 outside the box."""
    rng = np.random.default_rng(0)
    moved = 0
    for _ in range(120):
        shape = tuple(int(n) for n in rng.integers(12, 140, 3))
        coarse = rng.standard_normal(tuple(max(4, n // 4) for n in shape)).astype(np.float32)
        lo = [int(rng.integers(0, n // 2)) for n in shape]
        box = tuple(
            slice(a, int(rng.integers(a + 1, n + 1))) for a, n in zip(lo, shape, strict=True)
        )
        zoom = [n / c for n, c in zip(shape, coarse.shape, strict=True)]
        whole = 1.0 + ndimage.zoom(coarse, zoom, order=1)
        got = regional_factor(coarse, shape, box)
        assert got.dtype == whole.dtype == np.float32
        assert got[box].tobytes() == whole[box].tobytes(), (shape, box)
        outside = np.ones(shape, bool)
        outside[box] = False
        moved += int(np.any(got[outside] != 1))  # the box grew downwards: zoom's values there
        np.testing.assert_array_equal(
            got[outside][got[outside] != 1], whole[outside][got[outside] != 1]
        )
    assert moved > 0  # some boxes had to start lower, and were still exact


def old_activity_maps(model, head, tissues) -> dict[str, np.ndarray]:
    """The former activity maps: every factor and filter over the whole template grid."""
    e = model.effects
    onset = _blob(head, model.focus_template_mm, model.focus_radius_mm)
    in_brain = (tissues["gm"] + tissues["wm"]) > 0

    def mix(weights, tracer=None):
        total = sum(w * tissues[k] for k, w in weights.items() if k != "gm")
        gm = weights["gm"] * tissues["gm"]
        if tracer is not None and model.settings.tracer_regions:
            gm = gm * grey_matter_factor(tracer, head.shape, head.affine)
        return (total + gm).astype(np.float32)

    zone = _blob(head, e.pet_focus_template_mm, e.pet_focus_radius_mm)
    pet = mix(PET_UPTAKE, "fdg") * np.where(
        in_brain, model.metabolism * (1 - e.pet_hypometabolism * zone), 1
    )
    hmpao = mix(SPECT_UPTAKE, "hmpao")
    spect = hmpao * np.where(
        in_brain, model.perfusion * (1 - e.interictal_hypoperfusion * onset), 1
    )
    hyper = e.ictal_increase * onset
    if e.propagation is not None:
        p = e.propagation
        hyper += p.increase * _blob(head, p.template_mm, p.radius_mm)
    ictal = hmpao * np.where(in_brain, model.ictal_perfusion * (1 + hyper), 1)
    maps = {"T1w": mix(T1_SIGNAL), "pet": pet, "spect": spect, "ictal": ictal}
    fwhm = {"pet": PET_FWHM_MM, "spect": SPECT_FWHM_MM, "ictal": SPECT_FWHM_MM}
    out = {}
    for name, img in maps.items():
        img = img.astype(np.float32)
        if name in fwhm:
            img = ndimage.gaussian_filter(img, fwhm[name] / 2.3548 / head.voxel_mm)
        out[name] = img.astype(np.float32)
    return out


def old_upsample_linear(values, positions, shape) -> np.ndarray:
    out = values
    for axis, (pos, n) in enumerate(zip(positions, shape, strict=True)):
        if len(pos) == n:
            continue
        full = np.arange(n)
        j = np.clip(np.searchsorted(pos, full, side="right") - 1, 0, len(pos) - 2)
        w = ((full - pos[j]) / (pos[j + 1] - pos[j])).astype(np.float32)
        w = w.reshape([n if a == axis else 1 for a in range(out.ndim)])
        out = np.take(out, j, axis=axis) * (1 - w) + np.take(out, j + 1, axis=axis) * w
    return out


@pytest.mark.parametrize(
    ("split", "seed", "scale"), [("validation", 41, 3.0), ("train", 42, 3.0), ("test", 43, 2.0)]
)
def test_boxed_activity_maps_are_the_whole_grid_maps(split, seed, scale):
    """Regional factors (1 outside the brain's box), focus blobs in that box, blurs in the box
    around the non-zero voxels: the maps' bytes are those of the whole-grid computation."""
    model, head = draw_subject("01", split, seed, voxel_scale=scale)
    tissues, _ = subject_tissues(model, head)
    new = activity_maps(model, head, tissues)
    old = old_activity_maps(model, head, tissues)
    for name, img in old.items():
        assert new[name].dtype == img.dtype and new[name].tobytes() == img.tobytes(), name
    # the blur alone, on a map whose support reaches the grid's edge on one side
    edge = np.zeros((30, 40, 20), np.float32)
    edge[:5, 10:20, 3:9] = 1.0
    edge[20, 30, 10] = 2.0
    assert _blur(edge, 2.1).tobytes() == ndimage.gaussian_filter(edge, 2.1).tobytes()


def test_warp_upsampled_for_all_components_at_once_is_the_per_component_upsampling():
    rng = np.random.default_rng(3)
    shape = (72, 64, 57)
    positions = [_subgrid(n, step) for n, step in zip(shape, (2, 3, 2), strict=True)]
    values = rng.standard_normal((3, *(len(p) for p in positions))).astype(np.float32) * 50
    old = np.stack([old_upsample_linear(c, positions, shape) for c in values])
    assert _upsample_linear(values, positions, shape).tobytes() == old.tobytes()
