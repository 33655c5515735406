"""Regional perfusion and left-right asymmetry of synthetic and real SPECT.

The atlas (no download): nilearn ships the MNI152 (ICBM 2009a symmetric) brain mask and grey
matter probability map, not a labelled atlas. The built-in atlas labels the grey matter
(probability >= GM_MIN_PROBABILITY, inside the brain mask) by coordinate rules in MNI mm,
checked in this order (the first that holds wins), each split at x = 0 (x < 0 left, x > 0
right, the midline plane unlabelled):

- cerebellum: y < -42 and z < -15 (below the tentorium);
- deep grey (caudate, putamen, pallidum, thalamus): |x| <= 30, -36 <= y <= 26, -12 <= z <= 24;
- insula: 30 < |x| <= 42, -30 <= y <= 25, -15 <= z <= 22;
- temporal: -68 < y <= 28, below the Sylvian line z < -5 - 0.4 y, and lateral (|x| > 25) or
  medial temporal (z < -10 and y < 5);
- occipital: y <= -68 (the parieto-occipital / pre-occipital line);
- parietal: behind the central sulcus line y < -5 - 0.45 z;
- frontal: the rest.
These are lobar approximations of a few millimetres, adequate at SPECT resolution (~10 mm), not a
replacement for an anatomical atlas: config `evaluate.atlas` takes your own.

Per subject the atlas reaches a native grid through the inverse of the subject's affine
T1w -> MNI152 transform (nearest neighbour); each region is restricted to the scoring mask (MRI
brain mask x real SPECT mask). Uptake is relative to each volume's own mean in that mask;
asymmetry index AI = 200 (L - R) / (L + R) %, positive when the left is higher.
"""

from __future__ import annotations

import logging
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
from nibabel.affines import apply_affine

from workflow_scripts.layout import SPACE_NAME
from workflow_scripts.nifti_io import save_nifti, write_json, write_text
from workflow_scripts.volume_metrics import relative

log = logging.getLogger(__name__)

REGIONS = ("frontal", "parietal", "temporal", "occipital", "insula", "deep_grey", "cerebellum")
HEMISPHERES = ("L", "R", "none")
GM_MIN_PROBABILITY = 0.3  # grey matter probability that counts as grey matter
LABEL_COLUMNS = ["index", "name", "hemisphere"]


class AtlasError(ValueError):
    """An atlas image or label table that cannot be used (the message names the file)."""


def _lobe(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Index into REGIONS of each MNI point (the rules of the module docstring)."""
    ax = np.abs(x)
    rules = [
        ("cerebellum", (y < -42) & (z < -15)),
        ("deep_grey", (ax <= 30) & (y >= -36) & (y <= 26) & (z >= -12) & (z <= 24)),
        ("insula", (ax > 30) & (ax <= 42) & (y >= -30) & (y <= 25) & (z >= -15) & (z <= 22)),
        (
            "temporal",
            (y > -68) & (y <= 28) & (z < -5 - 0.4 * y) & ((ax > 25) | ((z < -10) & (y < 5))),
        ),
        ("occipital", y <= -68),
        ("parietal", y < -5 - 0.45 * z),
    ]
    lobe = np.full(x.shape, REGIONS.index("frontal"), dtype=np.int16)
    for name, where in reversed(rules):  # earlier rules win: paint them last
        lobe[where] = REGIONS.index(name)
    return lobe


def builtin_labels() -> pd.DataFrame:
    rows = [
        (2 * r + 1 + h, name, side)
        for r, name in enumerate(REGIONS)
        for h, side in enumerate(("L", "R"))
    ]
    return pd.DataFrame(rows, columns=LABEL_COLUMNS)


def world_coordinates(shape: tuple[int, ...], affine: np.ndarray) -> np.ndarray:
    """(3, *shape) world mm of every voxel centre."""
    ijk = np.moveaxis(np.indices(shape[:3]), 0, -1)
    return np.moveaxis(apply_affine(affine, ijk), -1, 0)


def build_atlas(grid: nib.Nifti1Image) -> tuple[nib.Nifti1Image, pd.DataFrame]:
    """The built-in lobar atlas on a template-space grid (label image, label table)."""
    from nilearn import datasets, image

    voxel = float(np.abs(grid.affine[:3, :3]).max())
    res = 1 if voxel < 1.5 else 2
    gm = datasets.load_mni152_gm_template(resolution=res)
    if voxel > res:  # a coarse grid: average the map over the voxel before sampling it
        gm = image.smooth_img(gm, fwhm=voxel)
    gm = image.resample_to_img(gm, grid, interpolation="linear")
    brain = image.resample_to_img(
        datasets.load_mni152_brain_mask(resolution=res), grid, interpolation="nearest"
    )
    grey = (np.asarray(gm.dataobj) >= GM_MIN_PROBABILITY) & (np.asarray(brain.dataobj) > 0.5)
    x, y, z = world_coordinates(grid.shape, grid.affine)
    labels = 2 * _lobe(x, y, z) + np.where(x < 0, 1, 2)
    labels = np.where(grey & (x != 0), labels, 0).astype(np.int16)
    return nib.Nifti1Image(labels, grid.affine), builtin_labels()


def read_label_table(path: str | Path) -> pd.DataFrame:
    """An atlas's TSV (index, name, hemisphere L/R/none), checked."""
    try:
        table = pd.read_csv(path, sep="\t", dtype={"name": str, "hemisphere": str})
    except (OSError, ValueError) as e:
        raise AtlasError(f"atlas labels {path}: cannot read as a TSV ({e})") from e
    missing = [c for c in LABEL_COLUMNS if c not in table.columns]
    if missing:
        raise AtlasError(f"atlas labels {path}: missing column(s) {missing}; need {LABEL_COLUMNS}")
    index = pd.to_numeric(table["index"], errors="coerce")
    if index.isna().any() or (index != index.round()).any() or (index <= 0).any():
        raise AtlasError(f"atlas labels {path}: `index` must be positive integers")
    if index.duplicated().any():
        raise AtlasError(
            f"atlas labels {path}: index listed twice: {sorted(index[index.duplicated()])}"
        )
    bad = sorted(set(table["hemisphere"]) - set(HEMISPHERES))
    if bad:
        raise AtlasError(f"atlas labels {path}: hemisphere must be one of {HEMISPHERES}, got {bad}")
    if table.duplicated(["name", "hemisphere"]).any():
        raise AtlasError(f"atlas labels {path}: a (name, hemisphere) pair is listed twice")
    return table.assign(index=index.astype(int))[LABEL_COLUMNS]


def check_atlas(
    img: nib.Nifti1Image, table: pd.DataFrame, image_path: str | Path, labels_path=None
) -> np.ndarray:
    """The label array of an atlas image: 3D, integer, every label in its table."""
    data = np.asanyarray(img.dataobj)
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise AtlasError(f"atlas image {image_path}: must be 3D, has shape {data.shape}")
    if not np.issubdtype(data.dtype, np.integer):
        if not np.all(np.isfinite(data)) or not np.allclose(data, np.rint(data)):
            raise AtlasError(f"atlas image {image_path}: values must be integer labels")
        data = np.rint(data)
    data = data.astype(np.int32)
    if (data < 0).any():
        raise AtlasError(f"atlas image {image_path}: negative labels")
    unlisted = sorted(set(np.unique(data).tolist()) - {0} - set(table["index"]))
    if unlisted:
        raise AtlasError(
            f"atlas image {image_path}: labels {unlisted} are not in its label table"
            + (f" {labels_path}" if labels_path else "")
        )
    return data


def load_user_atlas(
    image_path: str | Path, labels_path: str | Path, grid: nib.Nifti1Image
) -> tuple[nib.Nifti1Image, pd.DataFrame]:
    """A user's label image (MNI152NLin2009aSym) and TSV, checked, onto the study grid."""
    from nilearn import image

    table = read_label_table(labels_path)
    try:
        img = nib.load(image_path)
    except Exception as e:  # nibabel raises several types for a bad file
        raise AtlasError(f"atlas image {image_path}: cannot read as NIfTI ({e})") from e
    data = check_atlas(img, table, image_path, labels_path)
    src = nib.Nifti1Image(data.astype(np.int32), img.affine)
    on_grid = image.resample_to_img(src, grid, interpolation="nearest")
    return nib.Nifti1Image(np.asarray(on_grid.dataobj).astype(np.int16), grid.affine), table


def require_every_label(labels: np.ndarray, table: pd.DataFrame, where: str) -> None:
    empty = [int(i) for i in table["index"] if not (labels == i).any()]
    if empty:
        names = table.set_index("index").loc[empty]
        raise AtlasError(
            f"{where}: labels {empty} ({', '.join(names['name'] + '_' + names['hemisphere'])}) "
            "have no voxel on the study grid (a finer preprocess.grid, or a coarser atlas)"
        )


def region_label(name: str, hemisphere: str) -> str:
    return name if hemisphere == "none" else f"{name}_{hemisphere}"


# --- per subject -----------------------------------------------------------------------------


def regional_means(
    volume: np.ndarray, labels: np.ndarray, mask: np.ndarray, table: pd.DataFrame
) -> pd.DataFrame:
    """Mean relative uptake (volume / its mean in the mask) and voxel count of each region
    inside the mask; NaN for a region with no voxel there."""
    rel = relative(volume, mask)
    rows = []
    for row in table.itertuples():
        inside = (labels == row.index) & mask
        n = int(inside.sum())
        rows.append(
            {
                "region": region_label(row.name, row.hemisphere),
                "name": row.name,
                "hemisphere": row.hemisphere,
                "n_voxels": n,
                "uptake": float(rel[inside].mean()) if n else float("nan"),
            }
        )
    return pd.DataFrame(rows)


def asymmetry_index(left: np.ndarray | float, right: np.ndarray | float) -> np.ndarray | float:
    """AI = 200 (L - R) / (L + R), in percent."""
    return 200.0 * (np.asarray(left) - np.asarray(right)) / (np.asarray(left) + np.asarray(right))


def asymmetries(means: pd.DataFrame) -> pd.DataFrame:
    """AI of every region name that has a left and a right label (NaN where either side has no
    voxel in the mask)."""
    sides = means[means["hemisphere"].isin(["L", "R"])]
    wide = sides.pivot(index="name", columns="hemisphere", values="uptake")
    if not {"L", "R"} <= set(wide.columns):
        return pd.DataFrame(columns=["region", "AI"])
    both = sides.groupby("name")["hemisphere"].nunique() == 2
    wide = wide.loc[both[both].index]
    ai = asymmetry_index(wide["L"].to_numpy(), wide["R"].to_numpy())
    return pd.DataFrame({"region": wide.index.to_list(), "AI": ai})


def subject_regional_table(
    synth: np.ndarray, real: np.ndarray, labels: np.ndarray, mask: np.ndarray, table: pd.DataFrame
) -> pd.DataFrame:
    """Long table of one synthetic volume against the real one: measure `uptake` per region
    (with n_voxels) and `AI` per left/right pair; columns synthetic, real."""
    s, r = regional_means(synth, labels, mask, table), regional_means(real, labels, mask, table)
    uptake = s[["region", "hemisphere", "n_voxels"]].assign(
        measure="uptake", synthetic=s["uptake"], real=r["uptake"]
    )
    ai_s, ai_r = asymmetries(s), asymmetries(r)
    ai = ai_s.merge(ai_r, on="region", suffixes=("_s", "_r"))
    ai = pd.DataFrame(
        {
            "region": ai["region"],
            "hemisphere": "L-R",
            "n_voxels": [int(s.loc[s["name"] == name, "n_voxels"].sum()) for name in ai["region"]],
            "measure": "AI",
            "synthetic": ai["AI_s"],
            "real": ai["AI_r"],
        }
    )
    return pd.concat([uptake, ai], ignore_index=True)


def focus_pair(
    focus_mm: np.ndarray, labels: np.ndarray, mask: np.ndarray, affine: np.ndarray, table
) -> tuple[str | None, float]:
    """Region name (left/right pair) holding a focus given in world mm, and the distance (mm)
    to it: the focus voxel's label, else the nearest labelled voxel inside the mask."""
    from scipy import ndimage

    labelled = (labels > 0) & mask
    if not labelled.any():
        return None, float("nan")
    ijk = np.rint(apply_affine(np.linalg.inv(affine), focus_mm)).astype(int)
    ijk = np.clip(ijk, 0, np.array(labels.shape) - 1)
    spacing = np.abs(np.diag(affine)[:3])
    dist, nearest = ndimage.distance_transform_edt(~labelled, sampling=spacing, return_indices=True)
    at = tuple(nearest[:, ijk[0], ijk[1], ijk[2]])
    row = table[table["index"] == labels[at]].iloc[0]
    if row["hemisphere"] == "none":
        return None, float(dist[tuple(ijk)])
    return str(row["name"]), float(dist[tuple(ijk)])


def largest_real_asymmetry(rows: pd.DataFrame) -> str | None:
    """The region pair with the largest |AI| in the real SPECT (one space's rows)."""
    ai = rows[(rows["measure"] == "AI")].dropna(subset=["real"])
    if ai.empty:
        return None
    return str(ai.loc[ai["real"].abs().idxmax(), "region"])


# --- Snakemake entries -------------------------------------------------------------------------


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
    warp_atlas(smk.input.atlas, smk.input.t1w, smk.input.template_xfm, smk.output.image)
    write_json(
        {
            "Sources": [str(smk.input.atlas), str(smk.input.template_xfm)],
            "SpatialReference": str(smk.input.t1w),
            "Description": "the regional atlas on the subject's T1w-space grid (inverse "
            "template transform, nearest neighbour)",
        },
        smk.output.json,
    )


def warp_atlas(atlas: str | Path, reference: str | Path, template_xfm: str | Path, out) -> None:
    """Resample a template-space label image onto a native grid through the inverse of the
    subject's T1w -> MNI152 transform (ANTs, nearest neighbour)."""
    from workflow_scripts.preprocess import registration as reg

    reg.resample(
        atlas,
        nib.load(reference),
        [str(template_xfm)],
        out,
        interpolation="nearestNeighbor",
        dtype=np.int16,
        code=1,
        invert=True,
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
