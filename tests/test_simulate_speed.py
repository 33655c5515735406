"""The cheaper simulator (issue 17) simulates the same thing as the code it replaced.

The replaced implementations are kept here, only as references: the cortex mask by repeated
erosion/dilation, the focus blob as exp() of a distance volume, and sampling that warps every
voxel through the displacement field. Grids at voxel_scale=3 are sampled exactly (the warp
subgrid is every voxel); a small 1 mm grid checks the interpolated warp at its default spacing.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from workflow_scripts.simulate.anatomy import (
    CLOSE_MM,
    CSF_MM,
    SCALP_MM,
    SKULL_MM,
    cortex_mask,
    template_head,
)
from workflow_scripts.simulate.modalities import (
    ImageGrid,
    _blob,
    _distance2,
    activity_maps,
    draw_subject,
    grid_affine,
    sample_on_grid,
    subject_tissues,
    template_coordinates,
)

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
