"""How hard a simulated cohort makes SISCOM: how often the real and a flat interictal image find
the focus, before any registration or synthesis.

Each subject's noiseless interictal and ictal SPECT (template grid, scanner blur) get Poisson
counts at the simulator's level; SISCOM (workflow_scripts/siscom/, its defaults) runs in the
true brain, and the focus counts as found when the top cluster reaches into it.

    python -m workflow_scripts.simulate.difficulty --subjects 24 --voxel-scale 3
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd

from workflow_scripts.simulate.effects import EffectSettings
from workflow_scripts.simulate.modalities import activity_maps, draw_subject, subject_tissues
from workflow_scripts.siscom import focus_cluster_rank, siscom_map

SPECT_COUNTS_PER_UNIT = 300.0 / 2.5  # subject.py: 300 counts in pure grey matter (uptake 2.5)

# The cohort before issue 16: one fixed focus effect, identical perfusion on both days.
FORMER = EffectSettings(
    focus_radius_mm=(8.0, 12.0),
    ictal_increase=(0.6, 0.6),
    interictal_hypoperfusion=(0.12, 0.12),
    pet_hypometabolism=(0.3, 0.3),
    pet_focus_offset_mm=(0.0, 0.0),
    pet_focus_radius_scale=(1.0, 1.0),
    propagation_probability=0.0,
    day_to_day_global=0.0,
    day_to_day_regional=0.0,
    tracer_regions=False,
)


def focus_found(subject_seed: int, settings: EffectSettings, voxel_scale: float) -> dict:
    """SISCOM with the real and a flat interictal image for one subject: found or not."""
    model, head = draw_subject("01", "test", subject_seed, voxel_scale, True, settings)
    tissues, brain = subject_tissues(model, head)
    maps = activity_maps(model, head, tissues, names=("spect", "ictal"))
    rng = np.random.default_rng(subject_seed + 1_000_003)
    interictal = rng.poisson(maps["spect"] * SPECT_COUNTS_PER_UNIT).astype(float)
    ictal_counts = maps["ictal"] * SPECT_COUNTS_PER_UNIT * model.effects.ictal_global_factor
    ictal = rng.poisson(ictal_counts).astype(float)
    z_indices = np.arange(head.shape[2])
    row = {"seed": subject_seed, "ictal_increase": model.effects.ictal_increase}
    for name, other in (("real", interictal), ("flat", brain.astype(float))):
        m = siscom_map(ictal, other, brain, head.voxel_mm**3)
        rank = focus_cluster_rank(
            m, z_indices, head.affine, model.focus_template_mm, model.focus_radius_mm
        )
        row[f"{name}_found"] = rank == 1
    return row


def compare(n_subjects: int, voxel_scale: float) -> pd.DataFrame:
    """Focus-found rates of the former and the current default cohort, same subjects."""
    rows = []
    for label, settings in (("former", FORMER), ("default", EffectSettings())):
        for seed in range(1, n_subjects + 1):
            rows.append({"cohort": label, **focus_found(seed, settings, voxel_scale)})
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=24)
    parser.add_argument("--voxel-scale", type=float, default=3.0)
    args = parser.parse_args()
    table = compare(args.subjects, args.voxel_scale)
    summary = table.groupby("cohort", sort=False)[["real_found", "flat_found"]].mean()
    print(summary.round(2).to_string())


if __name__ == "__main__":
    main()
