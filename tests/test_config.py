"""config.yaml and paper.yaml against the JSON schema Snakemake validates before any job runs."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from model.image_size import MIN_SIZE
from model.networks import UNetGenerator
from workflow_scripts.config_types import validate_config

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = str(ROOT / "workflow_scripts" / "schemas" / "config.schema.yaml")


def load(name: str) -> dict:
    return yaml.safe_load((ROOT / name).read_text())


def deep_update(base: dict, extra: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_update(out[key], value)
        else:
            out[key] = value
    return out


def test_default_config_is_valid():
    validate(load("config.yaml"), SCHEMA)


def test_paper_overlay_is_valid_and_sets_the_paper_settings():
    cfg = deep_update(load("config.yaml"), load("paper.yaml"))
    validate(cfg, SCHEMA)
    assert cfg["preprocess"]["grid"] == {"shape": [256, 256, 192], "voxel_mm": 1.0}
    assert cfg["slices"]["n_slices"] == 100 and cfg["slices"]["size"] == 256
    assert cfg["train"]["epochs"] == 1000 and cfg["train"]["batch_size"] == 8
    assert cfg["train"]["lr"] == 1e-4 and cfg["train"]["ngf"] == 64


def test_every_key_is_commented():
    """Each key of config.yaml has a comment on its line or on the line above (parents excepted)."""
    lines = (ROOT / "config.yaml").read_text().splitlines()
    missing = []
    for i, line in enumerate(lines):
        stripped = line.strip()
        if not stripped or stripped.startswith("#") or stripped.endswith(":"):
            continue
        above = lines[i - 1].strip() if i else ""
        if "#" not in line and not above.startswith("#"):
            missing.append(stripped.split(":")[0])
    assert not missing, f"uncommented config keys: {missing}"


@pytest.mark.parametrize(
    ("patch", "fragment"),
    [
        ({"train": {"epochs": 0}}, "epochs"),
        ({"train": {"epochs": "ten"}}, "epochs"),
        ({"train": {"inputs": ["ct"]}}, "inputs"),
        ({"slices": {"size": 100}}, "size"),
        ({"preprocess": {"skullstrip": {"backend": "spm"}}}, "backend"),
        ({"preprocess": {"grid": {"shape": [64, 64]}}}, "shape"),
        ({"splits": {"fractions": {"train": 1.5, "test": 0.1, "validation": 0.1}}}, "train"),
        ({"unknown_key": 1}, "unknown_key"),
        ({"train": {"compare_2d": ["mri_pet"]}}, "compare_2d"),
        ({"train": {"seeds": 0}}, "seeds"),
    ],
)
def test_bad_values_are_schema_errors(patch, fragment):
    cfg = deep_update(load("config.yaml"), patch)
    with pytest.raises(WorkflowError, match=fragment):
        validate_config(cfg, SCHEMA)


def test_slice_size_follows_the_generator_rule():
    """One rule for slices.size: config validation refuses what the generator refuses."""
    for size in (8, 16, 48):
        with pytest.raises(WorkflowError, match=f"slices.size: .*>= {MIN_SIZE} \\(got {size}\\)"):
            validate_config(deep_update(load("config.yaml"), {"slices": {"size": size}}), SCHEMA)
        with pytest.raises(ValueError, match=f">= {MIN_SIZE}"):
            UNetGenerator(1, 1, size, ngf=4)
    for size in (MIN_SIZE, 64, 512):
        validate_config(deep_update(load("config.yaml"), {"slices": {"size": size}}), SCHEMA)
        assert UNetGenerator(1, 1, size, ngf=4).size == size


def test_command_line_strings_get_schema_types():
    """`--config train='{epochs: 50}'` reaches the workflow as strings; they are converted."""
    from workflow_scripts.config_types import coerce_to_schema, load_schema

    cfg = load("config.yaml")
    cfg["train"]["epochs"] = "50"
    cfg["train"]["lr"] = "2e-4"
    cfg["train"]["augment"] = "false"
    cfg["preprocess"]["grid"]["shape"] = ["32", "32", "24"]
    cfg["bids_dir"] = "123"  # a string key stays a string
    out = coerce_to_schema(cfg, load_schema(SCHEMA))
    validate(out, SCHEMA)
    assert out["train"]["epochs"] == 50 and out["train"]["lr"] == 2e-4
    assert out["train"]["augment"] is False
    assert out["preprocess"]["grid"]["shape"] == [32, 32, 24]
    assert out["bids_dir"] == "123"
    cfg["train"]["epochs"] = "many"  # not a number: left for validation to report
    with pytest.raises(WorkflowError, match="epochs"):
        validate(coerce_to_schema(cfg, load_schema(SCHEMA)), SCHEMA)
