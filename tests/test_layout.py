"""Paths and names (workflow_scripts/layout.py) and derivative sidecars (derivatives.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from workflow_scripts import layout as names
from workflow_scripts.derivatives import bids_uri, write_description, write_sidecar
from workflow_scripts.layout import Layout, image_prefix, parse_prefix
from workflow_scripts.nifti_io import save_nifti


@pytest.mark.parametrize("session", [None, "pre", "2"])
@pytest.mark.parametrize("role", names.ROLES)
def test_prefix_round_trips_and_matches_its_wildcard(role, session):
    prefix = image_prefix("P001", role, session)
    assert parse_prefix(prefix) == ("P001", session, role)
    assert re.fullmatch(names.WILDCARDS["prefix"], prefix)


def test_prefix_parse_refuses_mismatched_labels():
    for bad in (
        "sub-01/ses-a/anat/sub-01_ses-b",  # session folder and entity disagree
        "sub-01/anat/sub-02",  # subject folder and entity disagree
        "sub-01/func/sub-01",  # not a datatype of ours
        "sub-01/anat/sub-01_acq-ictal",  # no role is an ictal anat image
    ):
        with pytest.raises(ValueError):
            parse_prefix(bad)


def test_roles_never_share_a_derivative_name():
    lay = Layout(Path("out"), Path("bids"))
    files = set()
    for role in names.ROLES:
        p = image_prefix("01", role, "a")
        suffix = names.ROLE[role].suffix
        made = [
            lay.reoriented(p, suffix),
            lay.brain(p, suffix),
            lay.brain_mask(p),
            lay.to_mri_xfm(p),
            lay.in_space(p, suffix, "T1w"),
            lay.mask_in_space(p, "T1w"),
        ]
        assert not files & set(made), role
        files |= set(made)


def test_conditions_are_bids_labels_and_parse_back():
    assert names.condition_desc("mri_pet", "l1_bce_ssim") == "synthMriPetL1BceSsim"
    for desc, (model_input, loss) in names.CONDITIONS.items():
        assert re.fullmatch("[A-Za-z0-9]+", desc)
        assert names.parse_condition(desc) == (model_input, loss)
    # each input x loss, and its 2D twin; only the twin says it is one
    assert len(names.CONDITIONS) == 2 * len(names.MODEL_INPUTS) * len(names.LOSSES)
    assert names.condition_desc("mri_pet", "l1_bce", twin_2d=True) == "synthMriPetL1Bce2d"
    assert names.is_2d_twin("synthMriPetL1Bce2d") and not names.is_2d_twin("synthMriPetL1Bce")
    assert names.twin_desc("mri_pet/l1_bce") == "synthMriPetL1Bce2d"
    with pytest.raises(ValueError, match="unknown condition"):
        names.parse_condition("synthCtL1")


def test_template_label_is_the_one_nilearn_ships():
    from nilearn import datasets

    # the shipped file is the symmetric 2009a template (the docstring says asymmetrical), and
    # its left and right halves are mirror images
    img = datasets.load_mni152_template(resolution=2)
    shipped = Path(datasets.__file__).parent / "data"
    assert (shipped / "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz").exists()
    data = img.get_fdata()
    centre = int(round(-img.affine[0, 3] / img.affine[0, 0]))  # voxel column of x = 0
    half = min(centre, data.shape[0] - 1 - centre)
    left = data[centre - half : centre][::-1]
    right = data[centre + 1 : centre + 1 + half]
    assert np.allclose(left, right, atol=1e-6 * data.max())
    assert names.TEMPLATE == "MNI152NLin2009aSym"
    assert names.XFORM_CODE == {"T1w": 1, "MNI152NLin2009aSym": 4}


def test_sidecar_sources_are_bids_uris(tmp_path):
    raw, out = tmp_path / "raw", tmp_path / "out"
    src = raw / "sub-01" / "ses-a" / "anat" / "sub-01_ses-a_T1w.nii.gz"
    img = out / "sub-01" / "ses-a" / "anat" / "sub-01_ses-a_desc-brain_T1w.nii.gz"
    save_nifti(np.zeros((2, 2, 2), np.float32), img, affine=np.eye(4))
    assert bids_uri(src, out) == "bids:raw:sub-01/ses-a/anat/sub-01_ses-a_T1w.nii.gz"
    assert bids_uri(img, out) == "bids::sub-01/ses-a/anat/sub-01_ses-a_desc-brain_T1w.nii.gz"
    side = write_sidecar(img, sources=[src], skull_stripped=True, spatial_reference="T1w")
    assert side.name == "sub-01_ses-a_desc-brain_T1w.json"
    data = json.loads(side.read_text())
    assert data == {
        "Sources": ["bids:raw:sub-01/ses-a/anat/sub-01_ses-a_T1w.nii.gz"],
        "SpatialReference": "T1w",
        "SkullStripped": True,
    }
    with pytest.raises(ValueError, match="not inside a sub-"):
        bids_uri(tmp_path / "loose.nii.gz", out)


def test_derivatives_description(tmp_path):
    lay = Layout(tmp_path / "out", tmp_path / "raw")
    write_description(lay)
    desc = json.loads(lay.description().read_text())
    assert desc["DatasetType"] == "derivative"
    assert desc["GeneratedBy"][0]["Name"] == "spectsynth" and desc["GeneratedBy"][0]["CodeURL"]
    assert desc["DatasetLinks"]["raw"].startswith("file://")
    ignore = lay.bidsignore().read_text().splitlines()
    assert {"/models", "/tables", "**/spect"} <= set(ignore)
    assert lay.readme().exists()


def test_role_patterns_admit_only_their_role():
    for role in names.ROLES:
        for other in names.ROLES:
            prefix = image_prefix("P1", other, "a")
            matched = re.fullmatch(names.prefix_pattern(role), prefix) is not None
            assert matched == (role == other), (role, prefix)
