"""Throughput of the training-data path: slice files -> arrays -> SliceDataset -> augmented batches.

    python benchmarks/loader_throughput.py [--subjects 10] [--slices 100]

Builds slice files like the paper's (100 slices per subject; 10 subjects by default, 30 in the
paper) at 64 and 256 pixels,
then reports the time to load them (memory-mapped) and the augmented slices/s served at batch 8.
Compare with the training step rate (benchmarks/train_throughput.py): the loader must not be
the bottleneck.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from model.data import SliceDataset
from workflow_scripts.slices.files import SubjectSlices, save_slices
from workflow_scripts.train.training_set import load_training_set


def fake_subject(subject: str, n: int, size: int, rng) -> SubjectSlices:
    images = {
        m: rng.uniform(-1, 1, (n, size, size)).astype(np.float32) for m in ("mri", "pet", "spect")
    }
    ones = np.ones(n)
    return SubjectSlices(
        subject=subject,
        split="train",
        space="native",
        images=images,
        mask=np.ones((n, size, size), bool),
        z=np.arange(n),
        scale={m: ones for m in images},
        offset={m: 0 * ones for m in images},
        volume_shape=(size, size, n),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=10)
    parser.add_argument("--slices", type=int, default=100)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    for size in (64, 256):
        with tempfile.TemporaryDirectory() as tmp:
            subjects = [
                fake_subject(f"{i:02d}", args.slices, size, rng) for i in range(args.subjects)
            ]
            files = [  # one file per modality, subject by subject, as rule train lists them
                save_slices(ss, Path(tmp) / f"{ss.subject}_{m}.npz", m)
                for ss in subjects
                for m in ss.images
            ]
            t0 = time.perf_counter()
            ts = load_training_set(files, "mri_pet")
            ds = SliceDataset(ts.x, ts.y, augment=True, seed=0)
            load = time.perf_counter() - t0
            t1 = time.perf_counter()
            n = sum(len(x) for x, _ in ds.batches(8, epoch=0))
            rate = n / (time.perf_counter() - t1)
            print(
                f"{size}x{size}: {len(ds)} slices loaded in {load:.2f} s; augmented batches of 8: {rate:,.0f} slices/s"
            )


if __name__ == "__main__":
    main()
