"""The fast BET (workflow_scripts.preprocess.bet_surface) against the library it reimplements: brainextractor's
own kernels on the same state, its surface after many iterations, and its compute_mask."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import subprocess
import sys
import warnings

import nibabel as nib
import numpy as np
import pytest
import trimesh
from brainextractor import BrainExtractor
from brainextractor.helpers import bresenham3d, closest_integer_point

from tests.conftest import ellipsoid
from workflow_scripts.masks import dice
from workflow_scripts.preprocess import bet_surface as bs
from workflow_scripts.preprocess.reorient import reorient
from workflow_scripts.simulate import bids_paths, simulate_subject

# Both classes run this many iterations from the same start: enough for the surface to reach the
# brain edge (the intensity term at work), few enough for the library to take ~2 s.
ITERATIONS = 250


@pytest.fixture(scope="module")
def heads(tmp_path_factory):
    """A simulated subject's reoriented T1w (3 mm) and PET (~6.5 mm) as float32 images."""
    root = tmp_path_factory.mktemp("bet")
    simulate_subject("01", "train", 3, root / "bids", ictal=False, voxel_scale=3.0)
    raw = bids_paths(root / "bids", "01")
    images = {}
    for mod in ("T1w", "pet"):
        reorient(raw[mod], root / f"{mod}.nii.gz", "01", mod)
        img = nib.load(root / f"{mod}.nii.gz")
        images[mod] = nib.Nifti1Image(np.asarray(img.dataobj, dtype=np.float32), img.affine)
    return images


def quiet(cls, img, iterations=0):
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PET voxels are not isotropic
        extractor = cls(img)
        if iterations:
            extractor.run(iterations=iterations)
    return extractor


@pytest.fixture(scope="module")
def runs(heads):
    """The library and the fast class run side by side on each image."""
    return {
        mod: (quiet(BrainExtractor, img, ITERATIONS), quiet(bs.FastBrainExtractor, img, ITERATIONS))
        for mod, img in heads.items()
    }


def test_nearest_is_the_librarys_closest_integer_point():
    rng = np.random.default_rng(0)
    halves = np.arange(-6, 6) + 0.5  # exact ties: the library keeps the lower integer
    points = np.concatenate([rng.uniform(-50, 200, (3000, 3)), np.c_[halves, -halves, halves]])
    points = np.concatenate([points, np.floor(points[:100]) + 0.5])  # ties on every axis
    for p in points:
        ours = [bs._nearest(x) for x in p]
        assert ours == list(closest_integer_point(p)), p


def test_line_extreme_walks_the_librarys_bresenham_line():
    rng = np.random.default_rng(1)
    data = rng.standard_normal((24, 24, 24))
    for _ in range(2000):
        a = rng.integers(0, 24, 3)
        b = np.clip(a + rng.integers(-9, 10, 3), 0, 23)
        if rng.random() < 0.3:  # equal axis lengths exercise the driving-axis tie rule
            b[rng.permutation(3)[:2]] = np.clip(a[0] + rng.choice([-5, 5]), 0, 23)
        line = data[tuple(bresenham3d(a, b).T)]
        assert bs._line_extreme(data, *a, *b, np.inf, False) == line.min()
        assert bs._line_extreme(data, *a, *b, -np.inf, True) == line.max()
        assert bs._line_extreme(data, *a, *b, 0.0, True) == max(0.0, line.max())


@pytest.mark.parametrize("mod", ["T1w", "pet"])
def test_initial_state_and_one_step_are_the_librarys(heads, mod):
    lib, fast = quiet(BrainExtractor, heads[mod]), quiet(bs.FastBrainExtractor, heads[mod])
    for name in ("tmin", "t2", "t", "t98", "tmax", "c", "r", "tm", "vertices", "faces"):
        assert np.array_equal(getattr(lib, name), getattr(fast, name)), name
    for name in ("face_vertex_idxs", "face_normals", "face_angles", "vertex_normals"):
        assert np.array_equal(getattr(lib, name), getattr(fast, name)), name
    assert np.array_equal(lib.vertex_neighbors_centroids, fast.vertex_neighbors_centroids)
    assert lib.l == fast.l

    # one step from a deformed state (lines reaching dark and bright voxels alike)
    lib.run(iterations=30)
    buffers = [np.zeros_like(lib.vertices) for _ in range(7)]
    lib.step_of_deformation(
        lib.data, lib.vertices, lib.vertex_normals, lib.vertex_neighbors_centroids, lib.l,
        lib.t2, lib.t, lib.tm, lib.t98, lib.E, lib.F, lib.bt, lib.d1, lib.d2, *buffers,
    )  # fmt: skip
    u = np.zeros_like(lib.vertices)
    bs.deformation_step(
        lib.data, lib.vertices, lib.vertex_normals, lib.vertex_neighbors_centroids, lib.l,
        lib.t2, lib.t, lib.tm, lib.E, lib.F, lib.bt, lib.d1, lib.d2, u,
    )  # fmt: skip
    assert np.abs(buffers[-1]).max() > 0.05  # the step moves the surface
    assert np.array_equal(u, buffers[-1])


@pytest.mark.parametrize("mod", ["T1w", "pet"])
def test_surface_after_many_iterations_is_the_librarys(runs, mod):
    lib, fast = runs[mod]
    moved = np.linalg.norm(lib.vertices - quiet(BrainExtractor, lib.img).vertices, axis=1)
    assert moved.mean() > 1.0  # the surface travelled, so the comparison means something
    # Bit-identical here; the bound leaves room for rounding only (a dropped or altered term
    # moves vertices by tenths of a voxel or more).
    assert np.abs(fast.vertices - lib.vertices).max() < 1e-6


def shifted_up(mask: np.ndarray) -> np.ndarray:
    """The library's mask moved +1 voxel on every axis, where the surface is."""
    out = np.zeros_like(mask)
    out[1:, 1:, 1:] = mask[:-1, :-1, :-1]
    return out


@pytest.mark.parametrize("mod", ["T1w", "pet"])
def test_mask_is_the_librarys_on_the_surface(runs, mod):
    """Same surface into the library's compute_mask (trimesh voxelized + fill) and into ours:
    the same voxels once the library's (-1, -1, -1) displacement is undone."""
    lib, fast = runs[mod]
    lib.vertices = fast.vertices.copy()
    lib.rebuild_surface()
    theirs = shifted_up(lib.compute_mask().astype(bool))
    ours = fast.compute_mask().astype(bool)
    assert ours.shape == theirs.shape and ours.sum() > 1000
    assert dice(ours, theirs) >= 0.995, dice(ours, theirs)
    assert (ours ^ theirs).sum() <= 0.005 * theirs.sum()


def test_mask_clips_a_surface_past_the_image_edge():
    """A sphere crossing the low corner: filled before cropping, as the library does."""
    head = ellipsoid((30, 30, 30), (10, 10, 10)).astype(np.float32)
    lib = quiet(BrainExtractor, nib.Nifti1Image(head, np.eye(4)))
    sphere = trimesh.creation.icosphere(subdivisions=4, radius=9.0)
    lib.vertices = sphere.vertices + 3.0
    lib.faces = sphere.faces
    lib.num_faces = len(sphere.faces)
    lib.surface = trimesh.Trimesh(vertices=lib.vertices, faces=lib.faces)
    theirs = shifted_up(lib.compute_mask().astype(bool))
    ours = bs.surface_mask(lib.vertices, lib.faces, lib.shape).astype(bool)
    assert ours[0, 0, 0] and theirs[1, 1, 1]
    # the library's clipping drops the surface's plane 0 (it lands at index -1): compare the rest
    inner = (slice(1, None),) * 3
    assert dice(ours[inner], theirs[inner]) >= 0.995


def test_mask_is_centred_on_its_surface():
    """A sphere's mask has its centre where the sphere's is (the library's is 1 voxel lower on
    every axis: brainextractor 0.3 places trimesh's grid by int() of its lower bound)."""
    centre = np.array([30.3, 31.6, 29.5])
    sphere = trimesh.creation.icosphere(subdivisions=4, radius=12.0)
    mask = bs.surface_mask(sphere.vertices + centre, sphere.faces, (64, 64, 64))
    # filled, with the voxels the surface passes through: between the spheres 1 voxel in and out
    assert 4 / 3 * np.pi * 11.0**3 < mask.sum() < 4 / 3 * np.pi * 13.0**3
    assert np.abs(np.argwhere(mask).mean(axis=0) - centre).max() < 0.1


def test_runs_where_no_numba_cache_can_be_written(tmp_path):
    """A read-only install with no writable cache folder: compiled per process, not an error."""
    shutil.copy(bs.__file__, tmp_path / "bet_surface.py")
    (tmp_path / "__pycache__").write_text("")  # a file: no cache next to the module
    (tmp_path / "blocked").write_text("")  # nor in the user's cache folder
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "blocked" / "cache")}
    env.pop("NUMBA_CACHE_DIR", None)
    code = "import bet_surface as b; print(b._nearest(2.5), b._nearest(-0.5), b._nearest(2.6))"
    run = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.split() == ["2", "-1", "3"]
