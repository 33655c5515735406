"""Axial slices of a subject's preprocessed volumes: the 2D material the model sees.

Per subject and space, N axial slices are chosen from the MRI brain mask (the same slices for
every modality), cropped or zero-padded to S x S around the brain, and scaled to [-1, 1]:
x' = 2 (x - lo) / (hi - lo) - 1, with lo/hi the slice's minimum/maximum (paper) or the whole
selection's (per_volume mode). lo ("offset") and hi - lo ("scale") are kept so that image units
come back exactly: x = (x' + 1) / 2 * scale + offset. An all-zero slice gets scale 1 (all -1).

One uncompressed .npz per subject and space; :func:`load_slices` memory-maps its arrays.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nib
import numpy as np

MODALITY_FILES = {"mri": "T1w", "pet": "pet", "spect": "spect"}
INPUT_CHANNELS = {"mri": ("mri",), "pet": ("pet",), "mri_pet": ("mri", "pet")}


@dataclass
class SubjectSlices:
    subject: str
    split: str
    space: str
    images: dict[str, np.ndarray]  # modality -> (N, S, S) in [-1, 1]
    mask: np.ndarray  # (N, S, S) bool, MRI brain mask
    z: np.ndarray  # (N,) axial indices in the volume
    scale: dict[str, np.ndarray] = field(default_factory=dict)  # (N,) hi - lo
    offset: dict[str, np.ndarray] = field(default_factory=dict)  # (N,) lo
    affine: np.ndarray = field(default_factory=lambda: np.eye(4))
    volume_shape: tuple[int, int, int] = (0, 0, 0)
    corner: tuple[int, int] = (0, 0)  # volume (x, y) of the window's first pixel

    @property
    def size(self) -> int:
        return int(self.mask.shape[-1])


def stack_input(ss: SubjectSlices, model_input: str) -> np.ndarray:
    """(N, C, S, S) model input of a subject; mri_pet channels are [mri, pet]."""
    missing = [m for m in INPUT_CHANNELS[model_input] if m not in ss.images]
    if missing:
        raise ValueError(
            f"sub-{ss.subject} ({ss.space}): no {missing} slices for input '{model_input}'"
        )
    return np.stack(
        [np.asarray(ss.images[m], dtype=np.float32) for m in INPUT_CHANNELS[model_input]], axis=1
    )


def select_slices(brain: np.ndarray, n: int, min_fraction: float) -> np.ndarray:
    """N axial indices spread evenly over the slices whose brain fraction reaches min_fraction."""
    frac = brain.reshape(-1, brain.shape[2]).mean(axis=0)
    valid = np.flatnonzero(frac >= min_fraction)
    if valid.size == 0:
        raise ValueError("no axial slice contains enough brain (empty brain mask?)")
    if valid.size <= n:
        return valid
    picks = np.round(np.linspace(0, valid.size - 1, n)).astype(int)
    return valid[np.unique(picks)]


def window_corner(brain: np.ndarray, z: np.ndarray, size: int) -> tuple[int, int]:
    """Top-left (x, y) of an S x S window centred on the brain's in-plane extent."""
    proj = brain[:, :, z].any(axis=2)
    xs, ys = np.flatnonzero(proj.any(axis=1)), np.flatnonzero(proj.any(axis=0))
    cx = (xs[0] + xs[-1] + 1) / 2 if xs.size else brain.shape[0] / 2
    cy = (ys[0] + ys[-1] + 1) / 2 if ys.size else brain.shape[1] / 2
    return int(round(cx - size / 2)), int(round(cy - size / 2))


def cut(volume: np.ndarray, z: np.ndarray, corner: tuple[int, int], size: int) -> np.ndarray:
    """(N, S, S) window of the given axial slices, zero outside the volume."""
    out = np.zeros((len(z), size, size), dtype=np.float32)
    x0, y0 = corner
    sx0, sy0 = max(x0, 0), max(y0, 0)
    sx1, sy1 = min(x0 + size, volume.shape[0]), min(y0 + size, volume.shape[1])
    if sx1 > sx0 and sy1 > sy0:
        block = volume[sx0:sx1, sy0:sy1][:, :, z]  # (w, h, N)
        out[:, sx0 - x0 : sx1 - x0, sy0 - y0 : sy1 - y0] = np.moveaxis(block, 2, 0)
    return out


def scale_to_unit(stack: np.ndarray, mode: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Scale (N, S, S) to [-1, 1]; returns scaled, scale (hi - lo) and offset (lo) per slice."""
    n = stack.shape[0]
    if mode == "per_slice":
        lo = stack.reshape(n, -1).min(axis=1)
        hi = stack.reshape(n, -1).max(axis=1)
    elif mode == "per_volume":
        lo = np.full(n, stack.min())
        hi = np.full(n, stack.max())
    else:
        raise ValueError(f"unknown scaling mode {mode!r}")
    scale = np.where(hi > lo, hi - lo, 1.0).astype(np.float64)
    scaled = 2.0 * (stack - lo[:, None, None]) / scale[:, None, None] - 1.0
    return scaled.astype(np.float32), scale, lo.astype(np.float64)


def to_image_units(ss: SubjectSlices, modality: str, x: np.ndarray) -> np.ndarray:
    """Map [-1, 1] slices back to image units with the stored per-slice scale and offset."""
    s = ss.scale[modality][:, None, None]
    o = ss.offset[modality][:, None, None]
    return (np.asarray(x, dtype=np.float64) + 1.0) / 2.0 * s + o


def extract(
    volumes: dict[str, str | Path],
    brainmask: str | Path,
    *,
    subject: str,
    split: str,
    space: str,
    n_slices: int,
    size: int,
    min_brain_fraction: float,
    scaling: str,
) -> SubjectSlices:
    """Build a subject's slices from its preprocessed volumes (keys among mri, pet, spect)."""
    mask_img = nib.load(brainmask)
    brain = np.asarray(mask_img.dataobj) > 0
    z = select_slices(brain, n_slices, min_brain_fraction)
    corner = window_corner(brain, z, size)
    ss = SubjectSlices(
        subject=subject,
        split=split,
        space=space,
        images={},
        mask=cut(brain.astype(np.float32), z, corner, size) > 0.5,
        z=z,
        affine=mask_img.affine,
        volume_shape=tuple(int(s) for s in brain.shape),
        corner=corner,
    )
    for modality, path in volumes.items():
        img = nib.load(path)
        if img.shape != brain.shape or not np.allclose(img.affine, mask_img.affine, atol=1e-4):
            raise ValueError(f"sub-{subject} {path}: not on the brain mask's grid ({brainmask})")
        data = np.asarray(img.dataobj, dtype=np.float32)
        scaled, scale, offset = scale_to_unit(cut(data, z, corner, size), scaling)
        ss.images[modality], ss.scale[modality], ss.offset[modality] = scaled, scale, offset
    return ss


def save_slices(ss: SubjectSlices, path: str | Path, dtype: str = "float32") -> Path:
    """Write one uncompressed .npz (atomically), so its arrays can be memory-mapped."""
    arrays = {
        "z": ss.z.astype(np.int32),
        "mask": ss.mask,
        "affine": ss.affine,
        "volume_shape": np.array(ss.volume_shape, dtype=np.int32),
        "corner": np.array(ss.corner, dtype=np.int32),
        "meta": np.array([ss.subject, ss.split, ss.space]),
    }
    for modality, img in ss.images.items():
        arrays[f"image_{modality}"] = img.astype(dtype)
        arrays[f"scale_{modality}"] = ss.scale[modality]
        arrays[f"offset_{modality}"] = ss.offset[modality]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.npz")
    np.savez(tmp, **arrays)
    tmp.replace(path)
    return path


def _memmap_npz(path: Path) -> dict[str, np.ndarray]:
    """Memory-map each member of an uncompressed .npz (np.load cannot for .npz)."""
    out = {}
    with zipfile.ZipFile(path) as zf, path.open("rb") as fh:
        for info in zf.infolist():
            name = info.filename.removesuffix(".npy")
            if info.compress_type != zipfile.ZIP_STORED:
                out[name] = np.load(zf.open(info), allow_pickle=False)
                continue
            fh.seek(info.header_offset)
            local = fh.read(30)
            start = info.header_offset + 30 + int.from_bytes(local[26:28], "little")
            start += int.from_bytes(local[28:30], "little")
            fh.seek(start)
            major, _ = np.lib.format.read_magic(fh)
            reader = (
                np.lib.format.read_array_header_1_0
                if major == 1
                else np.lib.format.read_array_header_2_0
            )
            shape, fortran, dtype = reader(fh)
            if dtype.hasobject or 0 in shape:
                out[name] = np.load(zf.open(info), allow_pickle=False)
                continue
            out[name] = np.memmap(
                path,
                dtype=dtype,
                mode="r",
                offset=fh.tell(),
                shape=shape,
                order="F" if fortran else "C",
            )
    return out


def load_slices(path: str | Path, mmap: bool = True) -> SubjectSlices:
    """Read a subject's slice file (memory-mapped by default)."""
    path = Path(path)
    if mmap:
        a = _memmap_npz(path)
    else:
        with np.load(path, allow_pickle=False) as f:
            a = {k: f[k] for k in f.files}
    subject, split, space = (str(v) for v in np.asarray(a["meta"]))
    mods = [k.removeprefix("image_") for k in a if k.startswith("image_")]
    return SubjectSlices(
        subject=subject,
        split=split,
        space=space,
        images={m: a[f"image_{m}"] for m in mods},
        mask=np.asarray(a["mask"]),
        z=np.asarray(a["z"]),
        scale={m: np.asarray(a[f"scale_{m}"]) for m in mods},
        offset={m: np.asarray(a[f"offset_{m}"]) for m in mods},
        affine=np.asarray(a["affine"]),
        volume_shape=tuple(int(v) for v in a["volume_shape"]),
        corner=tuple(int(v) for v in a["corner"]),
    )


def place_slices(values: np.ndarray, ss: SubjectSlices) -> nib.Nifti1Image:
    """Put (N, S, S) slices back at their place on the subject's grid (elsewhere 0)."""
    vol = np.zeros(ss.volume_shape, dtype=np.float32)
    x0, y0 = ss.corner
    size = ss.size
    sx0, sy0 = max(x0, 0), max(y0, 0)
    sx1, sy1 = min(x0 + size, vol.shape[0]), min(y0 + size, vol.shape[1])
    for k, zi in enumerate(ss.z):
        vol[sx0:sx1, sy0:sy1, zi] = values[k, sx0 - x0 : sx1 - x0, sy0 - y0 : sy1 - y0]
    return nib.Nifti1Image(vol, ss.affine)


def rebuild_volume(pred: np.ndarray, ss: SubjectSlices, modality: str = "spect") -> nib.Nifti1Image:
    """A volume in image units on the subject's preprocessed grid from [-1, 1] slices."""
    return place_slices(to_image_units(ss, modality, pred).astype(np.float32), ss)


def slices_job(smk) -> None:
    """Snakemake entry (rule slices)."""
    cfg = smk.params.settings
    volumes = {m: smk.input[m] for m in MODALITY_FILES if m in smk.input.keys()}
    ss = extract(
        volumes,
        smk.input.brainmask,
        subject=smk.wildcards.subject,
        split=smk.params.split,
        space=smk.params.space_name,
        n_slices=cfg["n_slices"],
        size=cfg["size"],
        min_brain_fraction=cfg["min_brain_fraction"],
        scaling=cfg["scaling"],
    )
    save_slices(ss, smk.output[0], cfg["dtype"])
