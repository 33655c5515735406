"""The validating loader and the atomic, scrubbed writers (workflow_scripts/nifti_io.py):
one test per kind of bad input a hospital archive holds."""

from __future__ import annotations

import gzip
import logging

import nibabel as nib
import numpy as np
import pytest

from workflow_scripts.nifti_io import InputImageError, load_volume, save_nifti, write_json
from workflow_scripts.preprocess.reorient import reorient

AFF = np.diag([2.0, 2.0, 2.0, 1.0])


def write(tmp_path, data, affine=AFF, name="img.nii.gz", **hdr):
    img = nib.Nifti1Image(data, affine)
    for k, v in hdr.items():
        img.header[k] = v
    path = tmp_path / name
    nib.save(img, path)
    return path


def head(shape=(20, 20, 20)):
    data = np.zeros(shape, np.float32)
    data[5:15, 5:15, 5:15] = 100
    return data


def test_missing_file(tmp_path):
    with pytest.raises(InputImageError, match=r"sub-07 pet .*nope.nii.gz: file not found"):
        load_volume(tmp_path / "nope.nii.gz", "07", "pet")


def test_truncated_gzip(tmp_path):
    path = write(tmp_path, head())
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    with pytest.raises(
        InputImageError, match=r"sub-01 t1w .*img.nii.gz: (truncated|not a readable)"
    ):
        load_volume(path, "01", "t1w")


def test_not_a_nifti(tmp_path):
    path = tmp_path / "img.nii.gz"
    path.write_bytes(gzip.compress(b"this is a DICOM export log, not an image"))
    with pytest.raises(InputImageError, match="sub-01 spect .*not a readable NIfTI"):
        load_volume(path, "01", "spect")


def test_2d_image(tmp_path):
    path = write(tmp_path, np.ones((20, 20), np.float32), affine=np.eye(4))
    with pytest.raises(InputImageError, match="not a 3D volume"):
        load_volume(path, "01", "t1w")


def test_4d_pet_is_averaged_and_logged(tmp_path, caplog):
    frames = np.stack([head() * (i + 1) for i in range(4)], axis=-1)
    path = write(tmp_path, frames)
    with caplog.at_level(logging.WARNING):
        img = load_volume(path, "03", "pet", pet_4d="mean")
    assert img.shape == (20, 20, 20) and np.isclose(img.get_fdata().max(), 250)
    assert "4D image with 4 frames, averaged" in caplog.text and "sub-03" in caplog.text
    with pytest.raises(InputImageError, match="4D image"):
        load_volume(path, "03", "pet", pet_4d="error")
    with pytest.raises(InputImageError, match="sub-03 t1w .*4D image"):
        load_volume(path, "03", "t1w")


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_voxels(tmp_path, bad):
    data = head()
    data[0, 0, 0] = bad
    with pytest.raises(InputImageError, match="1 NaN/Inf voxels"):
        load_volume(write(tmp_path, data), "01", "pet")


def test_all_zero(tmp_path):
    with pytest.raises(InputImageError, match="all zeros"):
        load_volume(write(tmp_path, np.zeros((10, 10, 10), np.float32)), "01", "t1w")


def test_negative_spect_counts(tmp_path):
    data = head()
    data[1, 1, 1] = -5
    with pytest.raises(InputImageError, match="negative SPECT counts"):
        load_volume(write(tmp_path, data), "01", "spect")
    assert (
        load_volume(write(tmp_path, data, name="pet.nii.gz"), "01", "pet").get_fdata().min() == -5
    )


def test_integer_image_with_scl_slope(tmp_path):
    img = nib.Nifti1Image((head() / 10).astype(np.int16), AFF)
    img.header.set_slope_inter(2.5, 1.0)
    path = tmp_path / "scaled.nii.gz"
    nib.save(img, path)
    data = load_volume(path, "01", "spect").get_fdata()
    assert data.max() == pytest.approx(10 * 2.5 + 1.0)


def test_anisotropic_flipped_and_oblique_images_keep_their_world(tmp_path):
    data = head()
    data[5:8, 5:15, 5:15] = 300  # a marker on one side
    aniso = np.diag([4.4, 4.4, 3.0, 1.0])
    flipped = aniso @ np.diag([-1, 1, 1, 1.0])
    flipped[0, 3] = 4.4 * 19  # same field of view, voxel order reversed along x
    theta = np.deg2rad(12)
    rot = np.array(
        [
            [1, 0, 0, 0],
            [0, np.cos(theta), -np.sin(theta), 0],
            [0, np.sin(theta), np.cos(theta), 0],
            [0, 0, 0, 1],
        ]
    )
    for name, affine, vol in (
        ("aniso", aniso, data),
        ("flipped", flipped, data[::-1]),
        ("oblique", rot @ aniso, data),
    ):
        src = write(tmp_path, vol, affine=affine, name=f"{name}.nii.gz")
        out = tmp_path / f"{name}_ras.nii.gz"
        reorient(src, out, "01", "pet")
        ras = nib.load(out)
        assert nib.aff2axcodes(ras.affine) == ("R", "A", "S")
        marker = np.argwhere(ras.get_fdata() == 300).mean(axis=0)
        world = ras.affine @ np.append(marker, 1)
        assert world[0] < ras.affine[0, 3] + 4.4 * 10  # the marker stays on the left (-x) side
    np.testing.assert_allclose(
        nib.load(tmp_path / "aniso_ras.nii.gz").get_fdata(),
        nib.load(tmp_path / "flipped_ras.nii.gz").get_fdata(),
    )


def test_sform_qform_disagreement_uses_sform(tmp_path, caplog):
    img = nib.Nifti1Image(head(), AFF)
    shifted = AFF.copy()
    shifted[:3, 3] = [10, 0, 0]
    img.set_sform(shifted, code=2)
    img.set_qform(AFF, code=1)
    path = tmp_path / "sq.nii.gz"
    nib.save(img, path)
    with caplog.at_level(logging.WARNING):
        out = load_volume(path, "01", "t1w")
    assert np.allclose(out.affine, shifted) and "sform and qform disagree" in caplog.text


def test_outputs_are_scrubbed_and_atomic(tmp_path):
    img = nib.Nifti1Image(head(), AFF)
    img.header["descrip"] = b"DOE^JANE 1970-01-01 St Elsewhere"
    img.header["aux_file"] = b"MRN 123456"
    img.header["db_name"] = b"jane"
    out = save_nifti(img, tmp_path / "out" / "clean.nii.gz")
    hdr = nib.load(out).header
    assert all(hdr[f].tobytes().strip(b"\0") == b"" for f in ("descrip", "aux_file", "db_name"))
    assert b"DOE" not in gzip.decompress(out.read_bytes())
    assert [p.name for p in out.parent.iterdir()] == ["clean.nii.gz"]  # no temp left behind
    write_json({"a": np.float32(1.5), "b": np.arange(2)}, tmp_path / "x.json")
    assert (tmp_path / "x.json").read_text().count("1.5") == 1


KILLED_WRITER = """
import sys
import numpy as np
from workflow_scripts.nifti_io import save_nifti
rng = np.random.default_rng(0)
print("writing", flush=True)
save_nifti(rng.standard_normal((192, 192, 160)).astype(np.float32), sys.argv[1], np.eye(4))
"""


def test_a_writer_killed_mid_write_leaves_no_output(tmp_path):
    """SIGKILL while gzip is still writing: the output name never exists half-written, so
    neither Snakemake nor a later job can take a truncated file for a finished one."""
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    target = tmp_path / "sub-01_T1w_brain.nii.gz"
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, str(target)],
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(root)},
    )
    assert proc.stdout.readline().strip() == b"writing"
    deadline = time.time() + 60
    while time.time() < deadline and not any(tmp_path.iterdir()):  # the temp file appears
        time.sleep(0.01)
    time.sleep(0.2)
    assert proc.poll() is None, "the write finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not target.exists()
    # only the hidden temp name is left, which no BIDS glob or Snakemake output matches
    assert [p.name for p in tmp_path.iterdir() if not p.name.startswith(".")] == []
    assert [p.name.startswith(f".{target.name}.") for p in tmp_path.iterdir()] == [True]


def test_save_figure_is_atomic(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from workflow_scripts.nifti_io import save_figure

    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    out = save_figure(fig, tmp_path / "sub" / "plot.png", dpi=40)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in out.parent.iterdir()) == ["plot.png"]  # no temporary left
