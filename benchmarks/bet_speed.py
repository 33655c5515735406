"""The pure-Python BET before and after: brainextractor's BrainExtractor against
workflow_scripts.preprocess.bet_surface.FastBrainExtractor on one image, in CPU seconds (run interleaved in
one process, after the numba caches are warm) with the agreement of their outputs.

    python benchmarks/bet_speed.py IMAGE [IMAGE ...] [--repeats 2] [--iterations 1000]
                                   [--no-compile]

Also times, in fresh processes, the first call with an empty numba cache (compilation) and with
a filled one (cache load). CPU seconds, not wall time, so other load on the machine matters less.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import nibabel as nib
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from workflow_scripts.masks import dice, fill_holes, largest_component  # noqa: E402
from workflow_scripts.preprocess.bet_surface import FastBrainExtractor  # noqa: E402


def load(path: str) -> nib.Nifti1Image:
    """The image as PythonBET hands it to the extractor (float32)."""
    img = nib.load(path)
    return nib.Nifti1Image(np.asarray(img.dataobj, dtype=np.float32), img.affine)


def extract(
    cls: type, img: nib.Nifti1Image, iterations: int
) -> tuple[float, np.ndarray, np.ndarray]:
    """CPU seconds of init + run + compute_mask, the final vertices and the mask."""
    start = time.process_time()
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # non-isotropic PET voxels
        bet = cls(img)
        bet.run(iterations=iterations)
        mask = bet.compute_mask() > 0
    return time.process_time() - start, bet.vertices.copy(), mask


def post(mask: np.ndarray) -> np.ndarray:
    """skull_strip()'s clean-up of the BET mask."""
    return fill_holes(largest_component(mask))


def first_calls(image: str, iterations: int) -> dict:
    """CPU s of the fast class's first and second call in a fresh process, with an empty numba
    cache and then with the cache that run left."""
    out = {}
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        for label in ("empty_cache", "warm_cache"):
            cmd = [sys.executable, __file__, image, "--child", "--iterations", str(iterations)]
            result = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
            first, second = json.loads(result.stdout.strip().splitlines()[-1])
            out[label] = {"first_s": first, "second_s": second, "extra_s": first - second}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("images", nargs="+")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--iterations", type=int, default=1000)
    parser.add_argument("--no-compile", action="store_true", help="skip the first-call timing")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:  # first_calls(): two fast runs in this fresh process
        img = load(args.images[0])
        times = [extract(FastBrainExtractor, img, args.iterations)[0] for _ in range(2)]
        print(json.dumps(times))
        return

    from brainextractor import BrainExtractor

    for image in args.images:
        img = load(image)
        extract(FastBrainExtractor, img, 2)  # load (or compile) the numba cache first
        times = {"original": [], "fast": []}
        for _ in range(args.repeats):  # interleaved, so both see the same machine load
            t, v_orig, m_orig = extract(BrainExtractor, img, args.iterations)
            times["original"].append(t)
            t, v_fast, m_fast = extract(FastBrainExtractor, img, args.iterations)
            times["fast"].append(t)
        orig, fast = min(times["original"]), min(times["fast"])
        print(f"{image}  shape {img.shape}  {args.iterations} iterations")
        print(f"  CPU s   original {orig:6.2f}   fast {fast:6.2f}   speed-up {orig / fast:4.1f}x")
        print(f"          (all runs: original {times['original']}, fast {times['fast']})")
        print(f"  max vertex difference (voxels): {np.abs(v_fast - v_orig).max():.3g}")
        print(
            f"  mask Dice fast vs original: {dice(m_fast, m_orig):.6f} "
            f"({int((m_fast ^ m_orig).sum())} of {int(m_orig.sum())} voxels differ); "
            f"after skull_strip's clean-up: {dice(post(m_fast), post(m_orig)):.6f}"
        )
        if not args.no_compile:
            calls = first_calls(image, args.iterations)
            for label, c in calls.items():
                print(
                    f"  fresh process, {label}: first call {c['first_s']:.2f} s, "
                    f"second {c['second_s']:.2f} s -> {c['extra_s']:.2f} s extra"
                )


if __name__ == "__main__":
    main()
