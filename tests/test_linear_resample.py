"""The scipy resampler (workflow_scripts/preprocess/linear_resample.py) against antspyx itself: the same
voxels through rotated, sheared, composed and inverted ANTs transforms, on oblique grids."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import ants
import nibabel as nib
import numpy as np
import pytest

from workflow_scripts.preprocess import registration as reg
from workflow_scripts.preprocess.linear_resample import read_ants_affine, resample_linear


def _rotation(angles) -> np.ndarray:
    a, b, c = angles
    rx = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    ry = np.array([[np.cos(b), 0, np.sin(b)], [0, 1, 0], [-np.sin(b), 0, np.cos(b)]])
    rz = np.array([[np.cos(c), -np.sin(c), 0], [np.sin(c), np.cos(c), 0], [0, 0, 1]])
    return rx @ ry @ rz


def _write_transform(path, matrix, translation, centre) -> str:
    tx = ants.create_ants_transform(
        transform_type="AffineTransform",
        dimension=3,
        matrix=np.asarray(matrix, float),
        translation=np.asarray(translation, float),
        center=np.asarray(centre, float),
    )
    ants.write_transform(tx, str(path))
    return str(path)


@pytest.fixture
def scene(tmp_path):
    """A smooth blob image on an oblique scanner grid, its mask, a RAS study grid and two
    transforms (a shear-free rigid one and an affine with shear and scaling)."""
    rng = np.random.default_rng(3)
    shape = (40, 44, 36)
    grid = np.indices(shape).astype(float)
    centre = np.array(shape) / 2
    blob = np.exp(-sum(((grid[i] - centre[i]) / (shape[i] * 0.3)) ** 2 for i in range(3)))
    data = (100 * blob + rng.random(shape)).astype(np.float32)
    affine = np.eye(4)
    affine[:3, :3] = _rotation((0.2, -0.1, 0.3)) @ np.diag([2.5, 2.5, 3.0])
    affine[:3, 3] = -affine[:3, :3] @ centre + [3.0, -4.0, 5.0]
    image = tmp_path / "moving.nii.gz"
    mask = tmp_path / "mask.nii.gz"
    nib.save(nib.Nifti1Image(data, affine), image)
    nib.save(nib.Nifti1Image((blob > 0.5).astype(np.uint8), affine), mask)
    reference = reg.grid_image(np.array([1.0, -2.0, 3.0]), (30, 34, 28), 3.0)
    rigid = _write_transform(
        tmp_path / "rigid.mat", _rotation((0.15, 0.05, -0.2)), [4.0, -3.0, 2.0], [5.0, 1.0, -2.0]
    )
    affine_tx = _write_transform(
        tmp_path / "affine.mat",
        _rotation((-0.05, 0.1, 0.1)) @ np.array([[1.05, 0.08, 0], [0, 0.95, 0.05], [0, 0, 1.1]]),
        [-2.0, 1.5, 3.0],
        [0.5, -1.0, 2.0],
    )
    return {
        "image": str(image),
        "mask": str(mask),
        "reference": reference,
        "tx": [affine_tx, rigid],
    }


def _ants_resample(moving, reference, transforms, interpolation, invert=False) -> np.ndarray:
    """What registration.resample did before: antspyx on the same files."""
    ref = reg.to_ants(reference, Path(moving).parent, "reference")
    if not transforms:
        return ants.resample_image_to_target(
            ants.image_read(moving), ref, interp_type=interpolation
        ).numpy()
    out = ants.apply_transforms(
        fixed=ref,
        moving=ants.image_read(moving),
        transformlist=list(transforms),
        interpolator=interpolation,
        whichtoinvert=[invert] * len(transforms),
    )
    return out.numpy()


@pytest.mark.parametrize(
    "transforms, invert",
    [([], False), ([1], False), ([0], False), ([0, 1], False), ([1], True), ([0], True)],
)
def test_matches_ants_linear_and_nearest(scene, transforms, invert):
    tx = [scene["tx"][i] for i in transforms]
    ours = resample_linear(nib.load(scene["image"]), scene["reference"], tx, invert=invert)
    theirs = _ants_resample(scene["image"], scene["reference"], tx, "linear", invert)
    assert np.abs(theirs).max() > 10  # the blob lands on the grid
    np.testing.assert_allclose(ours, theirs, atol=1e-3)
    ours_m = resample_linear(
        nib.load(scene["mask"]), scene["reference"], tx, interpolation="nearestNeighbor"
    )
    theirs_m = _ants_resample(scene["mask"], scene["reference"], tx, "nearestNeighbor")
    assert theirs_m.sum() > 100
    np.testing.assert_array_equal(ours_m, theirs_m)


def test_reads_the_matrix_ants_applies_to_points(scene):
    """A point mapped by the .mat matrix lands where ANTs maps it (RAS in and out)."""
    points = np.array([[0.0, 0.0, 0.0], [10.0, -20.0, 30.0], [-15.0, 5.0, -8.0]])
    for path in scene["tx"]:
        matrix = read_ants_affine(path)
        ours = points @ matrix[:3, :3].T + matrix[:3, 3]
        np.testing.assert_allclose(ours, reg.map_points(path, points), atol=1e-4)


def test_not_a_transform_file_names_it(tmp_path):
    path = tmp_path / "x.mat"
    from scipy import io as sio

    sio.savemat(path, {"something": np.zeros(3)}, format="4")
    with pytest.raises(ValueError, match="x.mat"):
        read_ants_affine(path)


def test_resampling_job_module_does_not_import_ants(scene, tmp_path):
    """The point of the module: a resampling job never pays for `import ants`."""
    code = (
        "import sys; from workflow_scripts.preprocess import registration as reg; "
        f"reg.resample({scene['image']!r}, reg.grid_image([0, 0, 0], (8, 8, 8), 3.0), "
        f"[{scene['tx'][0]!r}], {str(tmp_path / 'o.nii.gz')!r}); "
        "print('ants' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_nearest_breaks_ties_like_itk(tmp_path):
    """Grids whose voxel centres fall exactly halfway between the moving image's (3 mm onto
    2 mm, no transform): nearest-neighbour ties resolve as in ITK (rounded up)."""
    labels = np.arange(20 * 20 * 20, dtype=np.float32).reshape(20, 20, 20)
    path = tmp_path / "labels.nii.gz"
    nib.save(nib.Nifti1Image(labels, np.diag([2.0, 2.0, 2.0, 1.0])), path)
    reference = nib.Nifti1Image(np.zeros((12, 12, 12), np.float32), np.diag([3.0, 3.0, 3.0, 1.0]))
    ours = resample_linear(nib.load(path), reference, interpolation="nearestNeighbor")
    theirs = _ants_resample(str(path), reference, [], "nearestNeighbor")
    np.testing.assert_array_equal(ours, theirs)
