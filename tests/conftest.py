"""Shared fixtures: tiny preprocessed volumes and slice files built in the test itself."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

from workflow_scripts.slices.extract import extract
from workflow_scripts.slices.files import save_slices

torch.set_num_threads(1)
# ITK reads its thread count once, when the first ANTs filter of the process starts: one
# thread for every test, so seeded registrations repeat bit for bit whichever test runs first.
os.environ["ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS"] = "1"

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))


def run_workflow(work: Path, bids: Path, config: list[str], *args: str):
    """The workflow on a BIDS folder as a user runs it (2 cores, --keep-going), out in work/out."""
    cmd = [SNAKEMAKE, "-s", str(ROOT / "Snakefile"), "--directory", str(work), "--cores", "2"]
    cmd += ["--keep-going", *args, "--config", f"bids_dir={bids}", f"out_dir={work / 'out'}"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([*cmd, *config], capture_output=True, text=True, timeout=900, env=env)


def ellipsoid(shape, radii, centre=None) -> np.ndarray:
    centre = np.array(shape) / 2 if centre is None else np.asarray(centre)
    grid = np.indices(shape).astype(float)
    r = sum(((grid[i] - centre[i]) / radii[i]) ** 2 for i in range(3))
    return r <= 1.0


def write_subject_volumes(root: Path, subject: str, seed: int, shape=(32, 32, 24), voxel=6.0):
    """A brain-like ellipsoid with a brighter rim (grey matter) in three 'modalities'."""
    rng = np.random.default_rng(seed)
    affine = np.diag([voxel, voxel, voxel, 1.0])
    affine[:3, 3] = -voxel * (np.array(shape) - 1) / 2
    brain = ellipsoid(shape, (shape[0] * 0.38, shape[1] * 0.45, shape[2] * 0.4))
    inner = ellipsoid(shape, (shape[0] * 0.28, shape[1] * 0.35, shape[2] * 0.3))
    grey = brain & ~inner
    regional = 1 + 0.2 * rng.standard_normal()
    mri = np.where(inner, 1.0, 0.0) * 800 + grey * 500
    pet = (grey * 4.0 + inner * 1.0) * 2 * regional
    spect = (grey * 2.5 + inner * 1.0) * 100 * regional + rng.poisson(5, shape) * brain
    paths = {}
    for name, data in (("T1w", mri), ("pet", pet), ("spect", spect), ("brainmask", brain)):
        path = root / f"sub-{subject}_{name}.nii.gz"
        nib.save(nib.Nifti1Image(data.astype(np.float32), affine), path)
        paths[name] = path
    return paths


@pytest.fixture
def make_slices(tmp_path):
    """Factory: slice files for subjects of given splits, tiny (16 slices of 32x32): subject ->
    its files, one per modality (mri, pet and, but for predict subjects, spect)."""

    def make(
        splits: dict[str, str],
        space: str = "native",
        n_slices: int = 16,
        size: int = 32,
        context: int = 0,
        target_scaling: str = "per_slice",
    ):
        files = {}
        for i, (subject, split) in enumerate(splits.items()):
            vols = write_subject_volumes(tmp_path, subject, i)
            sources = {"mri": vols["T1w"], "pet": vols["pet"]}
            if split != "predict":
                sources["spect"] = vols["spect"]
            ss = extract(
                sources,
                vols["brainmask"],
                subject=subject,
                split=split,
                space=space,
                n_slices=n_slices,
                size=size,
                min_brain_fraction=0.02,
                scaling="per_slice",
                target_scaling=target_scaling,
                context=context,
            )
            files[subject] = [
                save_slices(ss, tmp_path / f"sub-{subject}_mod-{m}_slices.npz", m)
                for m in ss.images
            ]
        return files

    return make


def slice_paths(files: dict[str, list[Path]], *subjects: str) -> list[Path]:
    """The slice files (every modality) of these subjects (none named: all), subject by subject,
    as a rule's input lists them."""
    return [p for s in subjects or files for p in files[s]]


def absolute_imports(path: Path) -> list[tuple[str, int]]:
    """(module, line) of every absolute import in a Python file, at any depth (lazy imports in
    functions too)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.module, node.lineno))
    return found
