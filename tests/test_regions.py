"""The regional atlas (built-in and user's), its warp into a subject, and regional values."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from workflow_scripts.preprocess import registration as reg
from workflow_scripts.preprocess.spaces import study_grid, template_files
from workflow_scripts.regions.atlas import (
    REGIONS,
    AtlasError,
    build_atlas,
    load_user_atlas,
    world_coordinates,
)
from workflow_scripts.regions.uptake import (
    asymmetry_index,
    focus_pair,
    regional_means,
    subject_regional_table,
)

DEMO_GRID = {"shape": [64, 64, 48], "voxel_mm": 3.0}
TINY_GRID = {"shape": [32, 32, 24], "voxel_mm": 6.0}  # tests/test_workflow_e2e.py


@pytest.fixture(scope="module")
def template_mask(tmp_path_factory) -> str:
    """The template brain mask the template grid is centred on, as rule template_files writes it."""
    folder = tmp_path_factory.mktemp("templates")
    template_files(folder / "t1w.nii.gz", folder / "mask.nii.gz")
    return str(folder / "mask.nii.gz")


@pytest.fixture(scope="module")
def demo_atlas(template_mask):
    grid = study_grid(DEMO_GRID, template_mask)
    img, table = build_atlas(grid)
    return np.asarray(img.dataobj), img.affine, table


@pytest.mark.parametrize("grid", [DEMO_GRID, TINY_GRID])
def test_every_builtin_label_has_voxels(grid, template_mask):
    img, table = build_atlas(study_grid(grid, template_mask))
    labels = np.asarray(img.dataobj)
    assert len(table) == 2 * len(REGIONS)
    assert set(np.unique(labels)) == {0, *table["index"]}
    for index in table["index"]:
        assert (labels == index).sum() >= 5, table[table["index"] == index]


def test_left_labels_lie_left_and_hemispheres_match_in_volume(demo_atlas):
    labels, affine, table = demo_atlas
    x = world_coordinates(labels.shape, affine)[0]
    for name in REGIONS:
        left = table[(table["name"] == name) & (table["hemisphere"] == "L")]["index"].item()
        right = table[(table["name"] == name) & (table["hemisphere"] == "R")]["index"].item()
        assert (x[labels == left] < 0).all() and (x[labels == right] > 0).all(), name
        n_l, n_r = (labels == left).sum(), (labels == right).sum()
        # nilearn's MNI152 arrays are mirror-symmetric: equal here, 5 % leaves room for others
        assert abs(n_l - n_r) / (n_l + n_r) < 0.05, (name, n_l, n_r)


def test_lobes_lie_where_anatomy_puts_them(demo_atlas):
    labels, affine, table = demo_atlas
    xyz = world_coordinates(labels.shape, affine)
    centre = {}
    for name in REGIONS:
        idx = table[table["name"] == name]["index"].to_list()
        inside = np.isin(labels, idx)
        centre[name] = xyz[:, inside].mean(axis=1)
    y = {k: v[1] for k, v in centre.items()}
    z = {k: v[2] for k, v in centre.items()}
    assert y["frontal"] > y["insula"] > y["parietal"] > y["occipital"]
    assert z["cerebellum"] < z["temporal"] < z["parietal"]
    assert abs(centre["deep_grey"][0]) < 5 and abs(centre["deep_grey"][1]) < 25


def _block_atlas(tmp_path, shape=(20, 20, 20), voxel=3.0):
    """Labels 1 (left block) and 2 (right block) on a small RAS grid centred at 0."""
    affine = np.diag([voxel, voxel, voxel, 1.0])
    affine[:3, 3] = -voxel * (np.array(shape) - 1) / 2
    labels = np.zeros(shape, np.int16)
    labels[5:9, 8:12, 8:12] = 1
    labels[11:15, 8:12, 8:12] = 2
    path = tmp_path / "atlas.nii.gz"
    nib.save(nib.Nifti1Image(labels, affine), path)
    return path, labels, affine


def _centroid(labels, affine, index):
    return world_coordinates(labels.shape, affine)[:, labels == index].mean(axis=1)


def test_warp_into_a_subject_follows_the_inverse_transform(tmp_path):
    import ants

    path, labels, affine = _block_atlas(tmp_path)
    # the template transform maps template points to MRI points (ITK, LPS): a translation of
    # (12, -6, 9) mm LPS puts a template region at +(-12, +6, +9) mm RAS in the MRI's world
    tx = ants.create_ants_transform(
        transform_type="AffineTransform", dimension=3, translation=(12.0, -6.0, 9.0)
    )
    xfm = tmp_path / "xfm.mat"
    ants.write_transform(tx, str(xfm))
    out = tmp_path / "native.nii.gz"
    reg.warp_atlas(path, path, xfm, out)
    native = np.asarray(nib.load(out).dataobj)
    assert native.dtype == np.int16
    for index in (1, 2):
        assert (native == index).sum() == (labels == index).sum()
        shift = _centroid(native, affine, index) - _centroid(labels, affine, index)
        assert shift == pytest.approx([-12.0, 6.0, 9.0])


def test_warp_undoes_preprocessing_into_the_template(tmp_path):
    """An image pushed into template space as preprocessing does (transform not inverted) comes
    back onto the subject's grid by warp_atlas, whatever the sign conventions."""
    import ants

    path, labels, affine = _block_atlas(tmp_path)
    tx = ants.create_ants_transform(
        transform_type="AffineTransform", dimension=3, translation=(6.0, 3.0, -9.0)
    )
    xfm = tmp_path / "xfm.mat"
    ants.write_transform(tx, str(xfm))
    template = tmp_path / "template.nii.gz"
    reg.resample(
        path, nib.load(path), [str(xfm)], template, interpolation="nearestNeighbor", dtype=np.int16
    )
    back = tmp_path / "back.nii.gz"
    reg.warp_atlas(template, path, xfm, back)
    assert np.array_equal(np.asarray(nib.load(back).dataobj), labels)


def _labels_tsv(tmp_path, rows, name="labels.tsv"):
    path = tmp_path / name
    pd.DataFrame(rows, columns=["index", "name", "hemisphere"]).to_csv(path, sep="\t", index=False)
    return path


def test_user_atlas_is_checked_and_put_on_the_grid(tmp_path):
    path, labels, affine = _block_atlas(tmp_path)
    tsv = _labels_tsv(tmp_path, [(1, "hippocampus", "L"), (2, "hippocampus", "R")])
    grid = reg.grid_image(np.zeros(3), (10, 10, 10), 6.0)
    img, table = load_user_atlas(path, tsv, grid)
    assert img.shape == (10, 10, 10) and set(np.unique(img.dataobj)) == {0, 1, 2}
    assert _centroid(np.asarray(img.dataobj), img.affine, 1)[0] < 0


@pytest.mark.parametrize(
    "break_it, message",
    [
        ("text", "cannot read as NIfTI"),
        ("4d", "must be 3D"),
        ("float", "integer labels"),
        ("unlisted", r"labels \[2\] are not in its label table"),
    ],
)
def test_bad_user_atlas_image_names_the_file(tmp_path, break_it, message):
    path, labels, affine = _block_atlas(tmp_path)
    tsv = _labels_tsv(tmp_path, [(1, "a", "L"), (2, "a", "R")])
    bad = tmp_path / "bad_atlas.nii.gz"
    if break_it == "text":
        bad.write_text("not an image")
    elif break_it == "4d":
        nib.save(nib.Nifti1Image(np.stack([labels, labels], -1), affine), bad)
    elif break_it == "float":
        nib.save(nib.Nifti1Image(labels.astype(np.float32) + 0.5, affine), bad)
    else:
        nib.save(nib.Nifti1Image(labels, affine), bad)
        tsv = _labels_tsv(tmp_path, [(1, "a", "L")])
    with pytest.raises(AtlasError, match=message) as err:
        load_user_atlas(bad, tsv, reg.grid_image(np.zeros(3), (10, 10, 10), 6.0))
    assert str(bad) in str(err.value)


@pytest.mark.parametrize(
    "rows, columns, message",
    [
        ([(1, "a", "L")], ["index", "name"], "missing column"),
        ([(1, "a", "left")], None, "hemisphere must be one of"),
        ([(1, "a", "L"), (1, "b", "R")], None, "listed twice"),
        ([(1.5, "a", "L")], None, "positive integers"),
    ],
)
def test_bad_label_table_names_the_file(tmp_path, rows, columns, message):
    path, _, _ = _block_atlas(tmp_path)
    tsv = tmp_path / "bad_labels.tsv"
    frame = pd.DataFrame(rows, columns=["index", "name", "hemisphere"])
    frame[columns or frame.columns].to_csv(tsv, sep="\t", index=False)
    with pytest.raises(AtlasError, match=message) as err:
        load_user_atlas(path, tsv, reg.grid_image(np.zeros(3), (10, 10, 10), 6.0))
    assert str(tsv) in str(err.value)


TABLE = pd.DataFrame(
    {"index": [1, 2, 3], "name": ["a", "a", "b"], "hemisphere": ["L", "R", "none"]}
)


def test_regional_means_and_asymmetry_hand_worked():
    labels = np.zeros((4, 1, 1), int)
    labels[:, 0, 0] = [1, 1, 2, 3]
    mask = np.ones_like(labels, bool)
    # brain mean (3 + 1 + 2 + 2) / 4 = 2: relative 1.5, 0.5 | 1.0 | 1.0
    volume = np.array([3.0, 1.0, 2.0, 2.0]).reshape(labels.shape)
    m = regional_means(volume, labels, mask, TABLE)
    assert m["uptake"].tolist() == pytest.approx([1.0, 1.0, 1.0])
    assert m["n_voxels"].tolist() == [2, 1, 1]
    # masked out voxel 1: brain mean (3 + 2 + 2) / 3 = 7/3; a_L = 3 / (7/3) = 9/7
    mask[1] = False
    m = regional_means(volume, labels, mask, TABLE)
    assert m["uptake"].tolist() == pytest.approx([9 / 7, 6 / 7, 6 / 7])
    assert asymmetry_index(1.1, 0.9) == pytest.approx(20.0)  # 200 * 0.2 / 2.0
    assert asymmetry_index(0.9, 1.1) == pytest.approx(-20.0)


def test_subject_table_has_uptake_per_region_and_ai_per_pair():
    labels = np.zeros((4, 1, 1), int)
    labels[:, 0, 0] = [1, 1, 2, 3]
    mask = np.ones_like(labels, bool)
    real = np.array([3.0, 3.0, 2.0, 1.0]).reshape(labels.shape)  # relative 4/3 | 8/9 | 4/9
    synth = np.array([2.0, 2.0, 2.0, 2.0]).reshape(labels.shape)  # relative 1 everywhere
    t = subject_regional_table(synth, real, labels, mask, TABLE)
    uptake = t[t["measure"] == "uptake"].set_index("region")
    assert uptake.loc["a_L", "real"] == pytest.approx(4 / 3)
    assert uptake.loc["b", "synthetic"] == pytest.approx(1.0)
    ai = t[t["measure"] == "AI"].set_index("region")
    assert list(ai.index) == ["a"] and ai.loc["a", "n_voxels"] == 3
    assert ai.loc["a", "real"] == pytest.approx(200 * (4 / 3 - 8 / 9) / (4 / 3 + 8 / 9))
    assert ai.loc["a", "synthetic"] == pytest.approx(0.0)


def test_focus_region_is_the_label_at_the_focus_or_the_nearest():
    labels = np.zeros((10, 1, 1), int)
    labels[1:3, 0, 0] = 1
    labels[7:9, 0, 0] = 3
    mask = np.ones_like(labels, bool)
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    table = pd.DataFrame({"index": [1, 3], "name": ["a", "b"], "hemisphere": ["L", "R"]})
    assert focus_pair(np.array([4.0, 0, 0]), labels, mask, affine, table) == ("a", 0.0)
    name, dist = focus_pair(np.array([12.0, 0, 0]), labels, mask, affine, table)
    assert (name, dist) == ("b", pytest.approx(2.0))  # voxel 6, nearest labelled voxel 7
    mask[7:9] = False  # outside the scoring mask: not eligible
    assert focus_pair(np.array([12.0, 0, 0]), labels, mask, affine, table)[0] == "a"


def test_without_truth_the_focus_is_the_largest_real_asymmetry():
    from workflow_scripts.regions.uptake import largest_real_asymmetry

    rows = pd.DataFrame(
        {
            "measure": ["uptake", "AI", "AI", "AI"],
            "region": ["a_L", "a", "b", "c"],
            "synthetic": [9.0, 30.0, 0.0, 1.0],  # never consulted: the real SPECT decides
            "real": [50.0, 4.0, -12.0, np.nan],
        }
    )
    assert largest_real_asymmetry(rows) == "b"
