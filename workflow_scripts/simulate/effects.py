"""The epilepsy effects of a simulated subject and how strongly they vary between subjects.

`EffectSettings` holds the distributions (config `simulate.effects`, documented with reasons in
docs/simulation.md); `draw_effects` draws one subject's values from its own random stream, so
subjects stay independent and the anatomy and poses drawn before do not shift.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import numpy as np
from nibabel.affines import apply_affine

Range = tuple[float, float]


@dataclass(frozen=True)
class EffectSettings:
    """Distributions of the per-subject effects (ranges are uniform [low, high])."""

    focus_radius_mm: Range = (6.0, 12.0)  # Gaussian sigma of the onset focus
    ictal_increase: Range = (0.15, 0.60)  # ictal hyperperfusion at the onset focus (fraction)
    interictal_hypoperfusion: Range = (0.0, 0.15)  # interictal SPECT decrease at the focus
    pet_hypometabolism: Range = (0.10, 0.35)  # FDG decrease at the PET zone's centre
    pet_focus_offset_mm: Range = (2.0, 8.0)  # PET zone centre from the onset focus
    pet_focus_radius_scale: Range = (1.2, 2.0)  # PET zone sigma / onset focus sigma
    propagation_probability: float = 0.5  # share of subjects with ictal propagation
    propagation_distance_mm: Range = (15.0, 35.0)  # propagation centre from the onset focus
    propagation_radius_scale: Range = (1.5, 2.5)  # propagation sigma / onset focus sigma
    propagation_fraction: Range = (0.3, 0.7)  # propagation increase / onset increase
    day_to_day_global: float = 0.15  # ictal counts x U(1 - g, 1 + g): dose, timing
    day_to_day_regional: float = 0.03  # SD of the ictal day's own smooth perfusion field
    tracer_regions: bool = True  # HMPAO/FDG regional differences (tracer_regions.py)

    @classmethod
    def from_config(cls, cfg: dict | None) -> EffectSettings:
        """From config `simulate.effects` (missing keys keep their defaults)."""
        cfg = dict(cfg or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(cfg) - known)
        if unknown:
            raise ValueError(f"simulate.effects: unknown keys {unknown}; known: {sorted(known)}")
        values = {
            k: tuple(float(x) for x in v) if isinstance(v, list) else v for k, v in cfg.items()
        }
        settings = cls(**values)
        settings.check()
        return settings

    def check(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, tuple) and not (len(value) == 2 and 0 <= value[0] <= value[1]):
                raise ValueError(f"simulate.effects.{f.name}: need [low, high], 0 <= low <= high")
        if not 0 <= self.propagation_probability <= 1:
            raise ValueError("simulate.effects.propagation_probability: need a value in [0, 1]")
        if not 0 <= self.day_to_day_global < 1 or self.day_to_day_regional < 0:
            raise ValueError("simulate.effects.day_to_day_*: need 0 <= global < 1, regional >= 0")

    def as_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


@dataclass
class Propagation:
    """A weaker, larger ictal blob along the cortex near the onset focus (template frame)."""

    template_mm: np.ndarray
    radius_mm: float
    increase: float


@dataclass
class DrawnEffects:
    """One subject's effect sizes; the onset focus itself lives on SubjectModel."""

    ictal_increase: float
    interictal_hypoperfusion: float
    pet_hypometabolism: float
    pet_focus_template_mm: np.ndarray
    pet_focus_radius_mm: float
    propagation: Propagation | None
    ictal_global_factor: float


def _points_mm(mask: np.ndarray, affine: np.ndarray) -> np.ndarray:
    return apply_affine(affine, np.argwhere(mask))


def draw_effects(
    rng: np.random.Generator,
    settings: EffectSettings,
    focus_template_mm: np.ndarray,
    focus_radius_mm: float,
    cortex: np.ndarray,
    affine: np.ndarray,
) -> DrawnEffects:
    """Draw effect sizes, the PET zone and (sometimes) a propagation site near the focus."""
    s = settings
    increase = float(rng.uniform(*s.ictal_increase))
    hypoperfusion = float(rng.uniform(*s.interictal_hypoperfusion))
    hypometabolism = float(rng.uniform(*s.pet_hypometabolism))
    direction = rng.standard_normal(3)
    direction /= np.linalg.norm(direction)
    offset = float(rng.uniform(*s.pet_focus_offset_mm))
    pet_radius = focus_radius_mm * float(rng.uniform(*s.pet_focus_radius_scale))
    propagation = None
    if rng.uniform() < s.propagation_probability:
        # A cortical site at the drawn distance band from the focus (template voxel centres).
        points = _points_mm(cortex, affine)
        dist = np.linalg.norm(points - focus_template_mm, axis=1)
        lo, hi = s.propagation_distance_mm
        candidates = points[(dist >= lo) & (dist <= hi)]
        if len(candidates):
            propagation = Propagation(
                template_mm=candidates[rng.integers(len(candidates))],
                radius_mm=focus_radius_mm * float(rng.uniform(*s.propagation_radius_scale)),
                increase=increase * float(rng.uniform(*s.propagation_fraction)),
            )
    g = s.day_to_day_global
    return DrawnEffects(
        ictal_increase=increase,
        interictal_hypoperfusion=hypoperfusion,
        pet_hypometabolism=hypometabolism,
        pet_focus_template_mm=np.asarray(focus_template_mm, float) + offset * direction,
        pet_focus_radius_mm=pet_radius,
        propagation=propagation,
        ictal_global_factor=float(rng.uniform(1 - g, 1 + g)),
    )
