"""Regional uptake and left-right asymmetry of one synthetic volume against the real one, on a
labelled atlas (workflow_scripts.regions.atlas): relative to each volume's own mean in the
scoring mask; AI = 200 (L - R) / (L + R) %, positive when the left is higher."""

from __future__ import annotations

import numpy as np
import pandas as pd
from nibabel.affines import apply_affine

from workflow_scripts.evaluate.volume_metrics import relative
from workflow_scripts.regions.atlas import region_label


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
