"""Snakemake entries of rules/regions.smk: the atlas on the template grid, warped to each
subject, per-subject regional tables, the group agreement tables."""

from __future__ import annotations

import logging
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from workflow_scripts.layout import SPACE_NAME
from workflow_scripts.nifti_io import save_nifti, write_json, write_text
from workflow_scripts.regions.atlas import (
    GM_MIN_PROBABILITY,
    AtlasError,
    build_atlas,
    load_user_atlas,
    read_label_table,
    require_every_label,
)
from workflow_scripts.regions.summary import agreement_figure, agreement_table
from workflow_scripts.regions.uptake import (
    focus_pair,
    largest_real_asymmetry,
    subject_regional_table,
)

log = logging.getLogger(__name__)


def atlas_job(smk) -> None:
    """Snakemake entry (rule atlas): the built-in atlas, or the user's, on the template grid."""
    from workflow_scripts.layout import TEMPLATE, XFORM_CODE
    from workflow_scripts.preprocess.spaces import study_grid

    grid = study_grid(smk.params.grid, smk.input.grid_mask)
    # a --config override spells an empty entry as text
    user = {
        k: (None if str(v).lower() in ("", "null", "none") else v)
        for k, v in smk.params.atlas.items()
    }
    if bool(user["image"]) != bool(user["labels"]):
        raise AtlasError(f"evaluate.atlas: give both `image` and `labels`, or neither (got {user})")
    if user["image"]:
        img, table = load_user_atlas(user["image"], user["labels"], grid)
        source, where = [user["image"], user["labels"]], f"atlas image {user['image']}"
    else:
        img, table = build_atlas(grid)
        source, where = ["nilearn MNI152 2009a GM map and brain mask"], "built-in atlas"
    require_every_label(np.asarray(img.dataobj), table, where)
    save_nifti(img, smk.output.image, dtype=np.int16, code=XFORM_CODE[TEMPLATE])
    write_text(table.to_csv(sep="\t", index=False), smk.output.labels)
    # a work file (regions/ is not BIDS): a plain record beside it, as transforms have
    write_json(
        {
            "Sources": [str(x) for x in source],
            "Space": TEMPLATE,
            "Labels": Path(smk.output.labels).name,
            "Description": "regional atlas on the study's template grid"
            + ("" if user["image"] else f" (built-in lobar rules, GM >= {GM_MIN_PROBABILITY})"),
        },
        smk.output.json,
    )
    log.info("%s: %d labels on grid %s", where, len(table), img.shape)


def atlas_to_subject_job(smk) -> None:
    """Snakemake entry (rule atlas_to_subject): the template atlas onto the subject's T1w grid
    through its T1w -> MNI152 affine inverted, nearest neighbour."""
    from workflow_scripts.preprocess import registration as reg

    reg.set_threads(smk.threads)
    reg.warp_atlas(smk.input.atlas, smk.input.t1w, smk.input.template_xfm, smk.output.image)
    write_json(
        {
            "Sources": [str(smk.input.atlas), str(smk.input.template_xfm)],
            "SpatialReference": str(smk.input.t1w),
            "Description": "the regional atlas on the subject's T1w-space grid (inverse "
            "template transform, nearest neighbour)",
        },
        smk.output.json,
    )


def regional_job(smk) -> None:
    """Snakemake entry (rule regional): every scored condition of one subject, per region."""
    subject = smk.wildcards.subject
    table = read_label_table(smk.input.labels)

    def data(path):
        return np.asarray(nib.load(path).dataobj)

    spaces = {}
    for space in smk.params.spaces:
        mask = (data(getattr(smk.input, f"brainmask_{space}")) > 0) & (
            data(getattr(smk.input, f"spectmask_{space}")) > 0
        )
        if not mask.any():
            raise ValueError(f"sub-{subject} space-{space}: empty scoring mask")
        atlas = nib.load(getattr(smk.input, f"atlas_{space}"))
        spaces[space] = {
            "mask": mask,
            "labels": np.asarray(atlas.dataobj).astype(np.int32),
            "affine": atlas.affine,
            "real": data(getattr(smk.input, f"real_{space}")).astype(np.float64),
        }

    focus_source, pair, distance = "largest_real_AI", {}, float("nan")
    if "truth" in smk.input.keys() and smk.params.native in spaces:
        from workflow_scripts.simulation_truth import focus_from_truth

        focus_mm, _ = focus_from_truth(smk.input.truth)
        n = spaces[smk.params.native]
        name, distance = focus_pair(focus_mm, n["labels"], n["mask"], n["affine"], table)
        if name is not None:
            focus_source, pair = "truth", dict.fromkeys(spaces, name)

    parts = []
    for (space, condition), path in zip(smk.params.conditions, smk.input.synth, strict=True):
        sp = spaces[space]
        try:
            rows = subject_regional_table(
                data(path).astype(np.float64), sp["real"], sp["labels"], sp["mask"], table
            )
        except ValueError as e:
            raise ValueError(f"sub-{subject} ({path} against its real SPECT): {e}") from e
        if space not in pair:
            pair[space] = largest_real_asymmetry(rows)
        parts.append(rows.assign(**condition))
    out = pd.concat(parts, ignore_index=True)
    out["focus_region"] = out["space"].map({SPACE_NAME[k]: v for k, v in pair.items()})
    out["focus_source"] = focus_source
    out.insert(0, "split", smk.params.split)
    out.insert(0, "subject", f"sub-{subject}")
    log.info(
        "sub-%s: %d conditions, focus region %s (%s, %.1f mm from the focus)",
        subject,
        len(parts),
        pair,
        focus_source,
        distance,
    )
    write_text(out.to_csv(sep="\t", index=False, float_format="%.6g"), smk.output[0])


def regional_tables_job(smk) -> None:
    """Snakemake entry (rule regional_tables)."""
    regional = pd.concat([pd.read_csv(p, sep="\t") for p in smk.input.tables], ignore_index=True)
    write_text(regional.to_csv(index=False, float_format="%.6g"), smk.output.uptake)
    table = agreement_table(regional, float(smk.params.ai_threshold))
    write_text(table.to_csv(index=False, float_format="%.4g"), smk.output.agreement)
    agreement_figure(regional, smk.output.figure)
