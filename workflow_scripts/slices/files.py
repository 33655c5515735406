"""One subject's slices in memory (SubjectSlices) and on disk: one uncompressed .npz per
subject, space and modality, memory-mapped and joined on load; model inputs stacked from them;
slices placed back into a volume."""

from __future__ import annotations

import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nib
import numpy as np

from workflow_scripts.nifti_io import atomic_path

# per_volume target: relative uptake (brain mean = 1) from 0 to RELATIVE_MAX spans [-1, 1].
# Grey matter is ~1.3-1.5 and the brain maximum rarely above 2.5; tanh cannot go past it anyway.
RELATIVE_MAX = 3.0


INPUT_CHANNELS = {"mri": ("mri",), "pet": ("pet",), "mri_pet": ("mri", "pet")}


TARGET = "spect"


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
    # (N, 2k, S, S) neighbours of each input slice, offsets -k..-1, 1..k (2.5D; k = context)
    neighbours: dict[str, np.ndarray] = field(default_factory=dict)
    context: int = 0
    target_scaling: str | None = "per_slice"  # None: read without the target's slices

    @property
    def size(self) -> int:
        return int(self.mask.shape[-1])


def input_channels(model_input: str, context: int) -> int:
    return len(INPUT_CHANNELS[model_input]) * (2 * context + 1)


def stack_input(ss: SubjectSlices, model_input: str, context: int | None = None) -> np.ndarray:
    """(N, C, S, S) model input of a subject: per modality ([mri, pet] for mri_pet) the slices
    z-k .. z+k in order (C = modalities x (2k + 1)). k is the file's context, or any smaller
    `context` (e.g. 0: a 2D model trained on the same 2.5D slice files)."""
    missing = [m for m in INPUT_CHANNELS[model_input] if m not in ss.images]
    if missing:
        raise ValueError(
            f"sub-{ss.subject} ({ss.space}): no {missing} slices for input '{model_input}'"
        )
    k = ss.context if context is None else int(context)
    if not 0 <= k <= ss.context:
        raise ValueError(
            f"sub-{ss.subject} ({ss.space}): context {k} asked of slices cut with context "
            f"{ss.context}"
        )
    channels = []
    for m in INPUT_CHANNELS[model_input]:
        centre = np.asarray(ss.images[m], dtype=np.float32)[:, None]
        if k:
            near = np.asarray(ss.neighbours[m], dtype=np.float32)  # offsets -K..-1, 1..K
            big = ss.context
            channels += [near[:, big - k : big], centre, near[:, big : big + k]]
        else:
            channels.append(centre)
    return np.concatenate(channels, axis=1)


def save_slices(ss: SubjectSlices, path: str | Path, modality: str, dtype: str = "float32") -> Path:
    """Write one modality's slices with the subject's cut (indices, window, brain-mask slices) as
    one uncompressed .npz (atomically), so its arrays can be memory-mapped. An input modality
    records its 2.5D context, the target its scaling: what the job that writes it was given."""
    arrays = {
        "z": ss.z.astype(np.int32),
        "mask": ss.mask,
        "affine": ss.affine,
        "volume_shape": np.array(ss.volume_shape, dtype=np.int32),
        "corner": np.array(ss.corner, dtype=np.int32),
        "meta": np.array([ss.subject, ss.split, ss.space, modality]),
        "image": ss.images[modality].astype(dtype),
        "scale": ss.scale[modality],
        "offset": ss.offset[modality],
    }
    if modality == TARGET:
        arrays["target_scaling"] = np.array(ss.target_scaling)
    else:
        arrays["context"] = np.array(ss.context, dtype=np.int32)
        if modality in ss.neighbours:
            arrays["neighbours"] = ss.neighbours[modality].astype(dtype)
    path = Path(path)
    with atomic_path(path, ".npz") as tmp:  # np.savez would append .npz to another ending
        np.savez(tmp, **arrays)
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


# what every modality file of a subject holds alike: the cut, from the MRI brain mask
SHARED = ("z", "mask", "affine", "volume_shape", "corner")


def _read(path: Path, mmap: bool) -> dict[str, np.ndarray]:
    if mmap:
        return _memmap_npz(path)
    with np.load(path, allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


def _join(files: list[tuple[Path, dict[str, np.ndarray]]]) -> SubjectSlices:
    """One subject's SubjectSlices from its modality files, which must have been cut alike."""
    if not files:
        raise ValueError("no slice files given")
    first_path, first = files[0]
    subject, split, space, _ = (str(v) for v in np.asarray(first["meta"]))
    images, scale, offset, neighbours = {}, {}, {}, {}
    contexts, target_scaling = set(), None
    for path, a in files:
        *who, modality = (str(v) for v in np.asarray(a["meta"]))
        if who != [subject, split, space]:
            raise ValueError(
                f"{path} holds sub-{who[0]} ({who[1]}, {who[2]}), {first_path} sub-{subject} "
                f"({split}, {space}): not one subject's slices"
            )
        if modality in images:
            raise ValueError(f"sub-{subject} ({space}): two {modality} slice files ({path})")
        for key in SHARED:
            if not np.array_equal(np.asarray(a[key]), np.asarray(first[key])):
                raise ValueError(
                    f"sub-{subject} ({space}): {path} and {first_path} were cut differently "
                    f"({key}); remake the older one"
                )
        images[modality], scale[modality] = a["image"], np.asarray(a["scale"])
        offset[modality] = np.asarray(a["offset"])
        if "neighbours" in a:
            neighbours[modality] = a["neighbours"]
        if modality == TARGET:
            target_scaling = str(np.asarray(a["target_scaling"]).item())
        else:
            contexts.add(int(a["context"]))
    if len(contexts) > 1:
        raise ValueError(f"sub-{subject} ({space}): input slices of contexts {sorted(contexts)}")
    return SubjectSlices(
        subject=subject,
        split=split,
        space=space,
        images=images,
        mask=np.asarray(first["mask"]),
        z=np.asarray(first["z"]),
        scale=scale,
        offset=offset,
        affine=np.asarray(first["affine"]),
        volume_shape=tuple(int(v) for v in first["volume_shape"]),
        corner=tuple(int(v) for v in first["corner"]),
        neighbours=neighbours,
        context=contexts.pop() if contexts else 0,
        target_scaling=target_scaling,
    )


def load_slices(*paths: str | Path, mmap: bool = True) -> SubjectSlices:
    """One subject's slices from the modality files given (memory-mapped by default): only the
    modalities a reader needs are read, and a file cut unlike the others is refused."""
    return _join([(Path(p), _read(Path(p), mmap)) for p in paths])


def load_subjects(paths: Iterable[str | Path], mmap: bool = True) -> list[SubjectSlices]:
    """load_slices per subject of a list of modality files (as a rule's input lists them), in
    the order the subjects first appear."""
    groups: dict[str, list] = {}
    for p in paths:
        a = _read(Path(p), mmap)
        groups.setdefault(str(np.asarray(a["meta"])[0]), []).append((Path(p), a))
    return [_join(files) for files in groups.values()]


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


def to_image_units(ss: SubjectSlices, modality: str, x: np.ndarray) -> np.ndarray:
    """Map [-1, 1] slices back to image units with the stored per-slice scale and offset."""
    s = ss.scale[modality][:, None, None]
    o = ss.offset[modality][:, None, None]
    return (np.asarray(x, dtype=np.float64) + 1.0) / 2.0 * s + o
