"""The output folder as a BIDS-Derivatives dataset: its description, .bidsignore, and the JSON
sidecar of every image (Sources, SpatialReference, SkullStripped, the model of a synthetic one).

Sources are BIDS URIs: ``bids:raw:<path>`` for the input dataset (declared in DatasetLinks)
and ``bids::<path>`` for files of this derivatives dataset.
"""

from __future__ import annotations

import hashlib
from importlib import metadata
from pathlib import Path
from typing import Any

from workflow_scripts.layout import SPACE_LABEL, Layout
from workflow_scripts.nifti_io import write_json, write_text

CODE_URL = "https://github.com/spectsynth/spectsynth"
BIDS_VERSION = "1.10.0"


README = """spectsynth derivatives
=====================

Preprocessed MRI, PET and SPECT of the dataset in {bids} (reoriented, skull-stripped or masked,
registered, resampled onto the subject's T1w grid and the MNI152NLin2009aSym grid), the
transforms between them, and synthetic interictal SPECT made by pix2pix models from the MRI
and/or PET. Each image has a JSON sidecar naming its sources. Group results (models, tables,
figures, SISCOM) are in the folders listed in .bidsignore. See spectsynth's README.
"""


def dataset_root(path: str | Path) -> Path:
    """The dataset folder that holds a file: the parent of its `sub-*` folder."""
    path = Path(path).absolute()
    for parent in path.parents:
        if parent.name.startswith("sub-"):
            return parent.parent
    raise ValueError(f"{path} is not inside a sub-* folder of a BIDS dataset")


def bids_uri(path: str | Path, here: Path) -> str:
    """A file as a BIDS URI, relative to this dataset (`here`) or to the raw dataset."""
    path = Path(path).absolute()
    root = dataset_root(path)
    name = "" if root == Path(here).absolute() else "raw"
    return f"bids:{name}:{path.relative_to(root).as_posix()}"


def write_sidecar(
    image: str | Path,
    *,
    sources: list[str | Path],
    skull_stripped: bool | None = None,
    spatial_reference: str | Path | None = None,
    **fields: Any,
) -> Path:
    """Write the JSON sidecar of a derivative image (atomically, beside it)."""
    here = dataset_root(image)
    side: dict[str, Any] = {"Sources": [bids_uri(s, here) for s in sources]}
    if spatial_reference is not None:
        ref = str(spatial_reference)
        side["SpatialReference"] = ref if ref in SPACE_LABEL.values() else bids_uri(ref, here)
    if skull_stripped is not None:
        side["SkullStripped"] = skull_stripped
    side.update(fields)
    return write_json(side, Layout.sidecar(image))


def sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def version() -> str:
    try:
        return metadata.version("spectsynth")
    except metadata.PackageNotFoundError:  # run from a checkout that was not installed
        return "0.1.0+unknown"


def write_description(layout: Layout) -> None:
    """dataset_description.json and .bidsignore of the derivatives dataset."""
    write_json(
        {
            "Name": "spectsynth derivatives: preprocessed MRI/PET/SPECT and synthetic SPECT",
            "BIDSVersion": BIDS_VERSION,
            "DatasetType": "derivative",
            "GeneratedBy": [{"Name": "spectsynth", "Version": version(), "CodeURL": CODE_URL}],
            "Authors": ["spectsynth developers"],
            "SourceDatasets": [{"URL": layout.bids.absolute().as_uri()}],
            "DatasetLinks": {"raw": layout.bids.absolute().as_uri()},
        },
        layout.description(),
    )
    # gitignore-style; a trailing slash would leave the folder itself reported
    folders = "".join(f"/{name}\n" for name in Layout.WORK_FOLDERS)
    write_text(
        "# Work files and group results of spectsynth: not BIDS images\n"
        + folders
        + "/results_summary.md\n"
        + "# Not covered by the BIDS specification yet (1.11): SPECT, spatial transforms\n"
        + "# (BEP014), brain masks of PET images\n"
        + "**/spect\n*_xfm.*\n**/pet/*_mask.*\n",
        layout.bidsignore(),
    )
    write_text(README.format(bids=layout.bids), layout.readme())
