"""The harder simulated cohort (issue 16): each drawn effect is in the images with its drawn size.

Subjects are drawn at voxel_scale=3 (3 mm template grid). Effect sizes are checked on the
unblurred uptake maps (blur=False), where they are exact, and the count factor on written images.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import yaml

from workflow_scripts.simulate import bids_paths, simulate_subject, truth_dir
from workflow_scripts.simulate.anatomy import cortex_mask, template_head
from workflow_scripts.simulate.effects import EffectSettings, draw_effects
from workflow_scripts.simulate.modalities import activity_maps, draw_subject, subject_tissues
from workflow_scripts.simulate.tracer_regions import TRACER_REGIONS, region_mask

SCALE = 3.0
ROOT = Path(__file__).resolve().parents[1]


def voxel_of(head, point_mm) -> tuple[int, int, int]:
    idx = np.linalg.inv(head.affine) @ np.append(point_mm, 1.0)
    return tuple(np.round(idx[:3]).astype(int))


def unblurred(model, head, names=("pet", "spect", "ictal")):
    tissues, _ = subject_tissues(model, head)
    return activity_maps(model, head, tissues, names=names, blur=False)


def first_seed(condition, start: int = 0):
    """The first seed whose drawn subject meets a condition (draws only: cheap)."""
    for seed in range(start, start + 200):
        model, head = draw_subject("01", "train", seed, voxel_scale=SCALE)
        if condition(model):
            return model, head
    raise AssertionError("no seed in 200 meets the condition")


def test_config_defaults_are_the_code_defaults():
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    assert EffectSettings.from_config(config["simulate"]["effects"]) == EffectSettings()


def test_bad_settings_are_refused_with_the_key(tmp_path):
    with pytest.raises(ValueError, match="unknown keys.*ictal_increse"):
        EffectSettings.from_config({"ictal_increse": [0.1, 0.2]})
    with pytest.raises(ValueError, match="ictal_increase"):
        EffectSettings.from_config({"ictal_increase": [0.6, 0.15]})
    with pytest.raises(ValueError, match="sub-07.*simulate.effects"):
        simulate_subject("07", "train", 1, tmp_path, voxel_scale=SCALE, effects={"x": 1})


def test_ictal_to_interictal_ratio_at_the_focus_is_the_drawn_increase():
    """At the onset focus (a template voxel centre) ictal/interictal uptake equals
    (1 + increase + propagation there) / (1 - hypoperfusion), after the day's regional fields."""
    for want_propagation in (False, True):
        model, head = first_seed(lambda m, w=want_propagation: (m.effects.propagation is None) != w)
        e = model.effects
        maps = unblurred(model, head)
        v = voxel_of(head, model.focus_template_mm)
        extra = 0.0
        if e.propagation is not None:
            d2 = np.sum((e.propagation.template_mm - model.focus_template_mm) ** 2)
            extra = e.propagation.increase * np.exp(-d2 / (2 * e.propagation.radius_mm**2))
        day = model.ictal_perfusion[v] / model.perfusion[v]
        ratio = maps["ictal"][v] / maps["spect"][v] / day
        expected = (1 + e.ictal_increase + extra) / (1 - e.interictal_hypoperfusion)
        assert ratio == pytest.approx(expected, rel=1e-4)


def test_propagation_is_weaker_larger_and_near_the_focus():
    model, head = first_seed(lambda m: m.effects.propagation is not None)
    p, e, s = model.effects.propagation, model.effects, model.settings
    distance = np.linalg.norm(p.template_mm - model.focus_template_mm)
    assert s.propagation_distance_mm[0] <= distance <= s.propagation_distance_mm[1]
    assert p.radius_mm > model.focus_radius_mm and p.increase < e.ictal_increase
    assert cortex_mask(SCALE)[voxel_of(head, p.template_mm)]  # on cerebral cortex
    # In the images: hyperperfusion at the propagation site, none without it.
    maps = unblurred(model, head, ("spect", "ictal"))
    v = voxel_of(head, p.template_mm)
    onset_there = e.ictal_increase * np.exp(-(distance**2) / (2 * model.focus_radius_mm**2))
    day = model.ictal_perfusion[v] / model.perfusion[v]
    hypo = e.interictal_hypoperfusion * np.exp(-(distance**2) / (2 * model.focus_radius_mm**2))
    ratio = maps["ictal"][v] / maps["spect"][v] / day * (1 - hypo)
    assert ratio == pytest.approx(1 + p.increase + onset_there, rel=1e-4)
    assert p.increase > 0.04


def fit_gaussian_dip(change: np.ndarray, head) -> tuple[np.ndarray, float, float]:
    """Centre, sigma and depth of change = 1 - depth * exp(-|x - c|^2 / (2 sigma^2)), fitted by
    least squares on log(1 - change), which is quadratic in x (exact for noiseless maps)."""
    dip = 1.0 - change.astype(np.float64)
    use = dip > 0.02 * dip.max()
    ijk = np.argwhere(use)
    x = ijk * np.diag(head.affine)[:3] + head.affine[:3, 3]
    design = np.column_stack([np.ones(len(x)), x, (x**2).sum(axis=1)])
    (a, *b, c), *_ = np.linalg.lstsq(design, np.log(dip[use]), rcond=None)
    sigma2 = -1.0 / (2 * c)
    centre = np.array(b) * sigma2
    depth = float(np.exp(a + (centre**2).sum() / (2 * sigma2)))
    return centre, float(np.sqrt(sigma2)), depth


def test_pet_zone_is_displaced_by_the_drawn_offset_and_larger():
    """Fitting each dip in the uptake (with / without the effect) finds the drawn centres, sizes
    and depths: the PET zone sits the drawn offset away from the SPECT focus, and is larger."""
    model, head = first_seed(lambda m: m.effects.interictal_hypoperfusion > 0.05)
    e, s = model.effects, model.settings
    offset = np.linalg.norm(e.pet_focus_template_mm - model.focus_template_mm)
    assert s.pet_focus_offset_mm[0] <= offset <= s.pet_focus_offset_mm[1]
    with_focus = unblurred(model, head, ("pet", "spect"))
    model.effects = dataclasses.replace(e, pet_hypometabolism=0.0, interictal_hypoperfusion=0.0)
    without = unblurred(model, head, ("pet", "spect"))
    fits = {}
    for name in ("pet", "spect"):
        brain = without[name] > 0
        fits[name] = fit_gaussian_dip(
            np.where(brain, with_focus[name] / np.where(brain, without[name], 1), 1), head
        )
    (c_pet, r_pet, d_pet), (c_spect, r_spect, d_spect) = fits["pet"], fits["spect"]
    assert np.linalg.norm(c_pet - c_spect) == pytest.approx(offset, abs=0.05)
    np.testing.assert_allclose(c_spect, model.focus_template_mm, atol=0.05)
    assert r_pet == pytest.approx(e.pet_focus_radius_mm, rel=0.01)
    assert r_spect == pytest.approx(model.focus_radius_mm, rel=0.01)
    assert r_pet > r_spect
    assert d_pet == pytest.approx(e.pet_hypometabolism, rel=0.01)
    assert d_spect == pytest.approx(e.interictal_hypoperfusion, rel=0.01)


def test_tracer_regions_differ_between_fdg_and_hmpao_as_configured():
    """In grey matter of each region, the tracer factors change FDG against HMPAO uptake by
    fdg / hmpao of the table, and leave cerebral cortex alone (regional fields flattened; the
    small white-matter share of 'pure' grey-matter voxels gives the tolerance)."""
    model, head = draw_subject("01", "train", 4, voxel_scale=SCALE)
    model.metabolism = np.ones_like(model.metabolism)
    model.perfusion = np.ones_like(model.perfusion)
    gm = head.tissues["gm"]
    on = unblurred(model, head, ("pet", "spect"))
    model.settings = dataclasses.replace(model.settings, tracer_regions=False)
    off = unblurred(model, head, ("pet", "spect"))
    pure = gm > 0.8
    with np.errstate(divide="ignore", invalid="ignore"):  # outside the head: 0 / 0
        change = (on["pet"] / off["pet"]) / (on["spect"] / off["spect"])
    in_any = np.zeros(head.shape, bool)
    for region in TRACER_REGIONS:
        inside = region_mask(region, head.shape, head.affine)
        in_any |= inside
        assert np.count_nonzero(inside & pure) >= 5, region.name
        measured = change[inside & pure].mean()
        assert measured == pytest.approx(region.fdg / region.hmpao, rel=0.03), region.name
    np.testing.assert_allclose(change[cortex_mask(SCALE) & ~in_any], 1.0, rtol=1e-5)


def test_day_to_day_global_factor_shows_in_the_counts(tmp_path):
    """Total ictal / interictal counts in the brain follow the drawn dose factor (the focus and
    the ictal day's zero-mean field move the total by a few per cent at most)."""
    high, _ = first_seed(lambda m: m.effects.ictal_global_factor > 1.08)
    low, _ = first_seed(lambda m: m.effects.ictal_global_factor < 0.92)
    for model in (high, low):
        bids = tmp_path / str(model.seed)
        simulate_subject("01", "train", model.seed, bids, voxel_scale=SCALE)
        paths = bids_paths(bids, "01")
        totals = {}
        for name in ("spect", "ictal"):
            img = nib.load(paths[name])
            totals[name] = float(np.asarray(img.dataobj, dtype=np.float64).sum())
        ratio = totals["ictal"] / totals["spect"]
        assert ratio == pytest.approx(model.effects.ictal_global_factor, rel=0.04)
        truth = json.loads(
            (truth_dir(bids, "01") / "sub-01_desc-truth_transforms.json").read_text()
        )
        assert truth["effects"]["ictal_global_factor"] == model.effects.ictal_global_factor


def test_ictal_day_has_its_own_regional_field():
    model, head = draw_subject("01", "train", 5, voxel_scale=SCALE)
    day = model.ictal_perfusion - model.perfusion
    brain = head.brain
    sd = model.settings.day_to_day_regional
    assert 0.5 * sd < day[brain].std() < 1.5 * sd
    same = dataclasses.replace(model.settings, day_to_day_regional=0.0)
    model0, _ = draw_subject("01", "train", 5, voxel_scale=SCALE, effects=same)
    np.testing.assert_allclose(model0.ictal_perfusion, model0.perfusion, atol=1e-6)


def test_effects_settings_leave_anatomy_and_poses_alone():
    """Effects have their own random stream: other settings change effects, not the subject."""
    a, _ = draw_subject("01", "validation", 8, voxel_scale=SCALE)
    other = EffectSettings(ictal_increase=(0.5, 0.5), propagation_probability=1.0)
    b, _ = draw_subject("01", "validation", 8, voxel_scale=SCALE, effects=other)
    np.testing.assert_array_equal(a.deformation.field, b.deformation.field)
    np.testing.assert_array_equal(a.focus_template_mm, b.focus_template_mm)
    np.testing.assert_array_equal(a.cavity_template_mm, b.cavity_template_mm)
    for name in a.grids:
        np.testing.assert_array_equal(a.grids[name].affine, b.grids[name].affine)
    assert b.effects.ictal_increase == 0.5 and b.effects.propagation is not None
    again, _ = draw_subject("01", "validation", 8, voxel_scale=SCALE)
    assert again.effects.ictal_increase == a.effects.ictal_increase
    np.testing.assert_array_equal(again.ictal_perfusion, a.ictal_perfusion)
    other_seed, _ = draw_subject("01", "validation", 9, voxel_scale=SCALE)
    assert other_seed.effects.ictal_increase != a.effects.ictal_increase


def test_drawn_values_cover_their_ranges():
    """Many draws: each value in its range, spread over it; propagation in about half."""
    s = EffectSettings()
    head = template_head(SCALE)
    cortex = cortex_mask(SCALE)
    points = np.argwhere(cortex)
    draws = []
    for seed in range(120):
        rng = np.random.default_rng(seed)
        focus = head.affine[:3, :3] @ points[rng.integers(len(points))] + head.affine[:3, 3]
        draws.append(draw_effects(rng, s, focus, 8.0, cortex, head.affine))
    inc = np.array([d.ictal_increase for d in draws])
    glob = np.array([d.ictal_global_factor for d in draws])
    assert s.ictal_increase[0] <= inc.min() < 0.2 and 0.55 < inc.max() <= s.ictal_increase[1]
    g = s.day_to_day_global
    assert 1 - g <= glob.min() < 0.9 and 1.1 < glob.max() <= 1 + g
    share = np.mean([d.propagation is not None for d in draws])
    assert 0.35 < share < 0.65
    fractions = [d.propagation.increase / d.ictal_increase for d in draws if d.propagation]
    assert (
        s.propagation_fraction[0] <= min(fractions) and max(fractions) <= s.propagation_fraction[1]
    )


def test_truth_records_every_drawn_value(tmp_path):
    model, _ = first_seed(lambda m: m.effects.propagation is not None)
    truth = simulate_subject("01", "train", model.seed, tmp_path, voxel_scale=SCALE)
    e = truth["effects"]
    assert e["ictal_increase"] == model.effects.ictal_increase
    assert e["interictal_hypoperfusion"] == model.effects.interictal_hypoperfusion
    assert e["pet_hypometabolism"] == model.effects.pet_hypometabolism
    assert e["pet_focus_radius_mm"] == model.effects.pet_focus_radius_mm
    np.testing.assert_allclose(e["pet_focus_template_mm"], model.effects.pet_focus_template_mm)
    assert e["propagation"]["increase"] == model.effects.propagation.increase
    assert e["settings"] == EffectSettings().as_dict()
    assert [r["name"] for r in e["tracer_regions"]] == [r.name for r in TRACER_REGIONS]
    # anatomy-frame points map back onto the template points through the subject's warp
    for anatomy, template in (
        (e["pet_focus_anatomy_mm"], e["pet_focus_template_mm"]),
        (e["propagation"]["anatomy_mm"], e["propagation"]["template_mm"]),
    ):
        mapped = model.deformation(np.array(anatomy)[:, None]).ravel()
        np.testing.assert_allclose(mapped, template, atol=0.05)
    # the keys readers use keep their meaning: the onset focus
    assert truth["focus_radius_mm"] == model.focus_radius_mm
    np.testing.assert_allclose(truth["focus_template_mm"], model.focus_template_mm)


def test_region_masks_are_the_mni_ellipsoids():
    head = template_head(2.0)
    ijk = np.indices(head.shape).reshape(3, -1).T
    mm = ijk * np.diag(head.affine)[:3] + head.affine[:3, 3]
    for region in TRACER_REGIONS:
        inside = (((mm - region.centre_mm) / region.semi_axes_mm) ** 2).sum(axis=1) <= 1
        np.testing.assert_array_equal(
            region_mask(region, head.shape, head.affine).ravel(), inside, err_msg=region.name
        )
        volume = inside.sum() * 2.0**3
        assert volume == pytest.approx(4 / 3 * np.pi * np.prod(region.semi_axes_mm), rel=0.05)


def test_difficulty_check_finds_a_strong_focus_and_not_an_absent_one():
    from workflow_scripts.simulate.difficulty import FORMER, focus_found

    assert focus_found(1, FORMER, SCALE)["real_found"]
    absent = dataclasses.replace(
        FORMER, ictal_increase=(0.0, 0.0), interictal_hypoperfusion=(0.0, 0.0)
    )
    assert not focus_found(1, absent, SCALE)["real_found"]
