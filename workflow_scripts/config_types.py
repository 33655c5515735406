"""Give `--config` overrides the types the schema asks for.

Snakemake parses nested `--config key='{a: 5}'` values with YAML's BaseLoader, so every scalar
inside arrives as a string ('5'). Before validation we convert such strings to the type the schema
declares for that key, so `--config train='{epochs: 50}'` works like editing config.yaml.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


def load_schema(path: str | Path) -> dict:
    return yaml.safe_load(Path(path).read_text())


def _resolve(node: dict, root: dict) -> dict:
    ref = node.get("$ref")
    if ref and ref.startswith("#/"):
        target: Any = root
        for part in ref[2:].split("/"):
            target = target[part]
        return _resolve(target, root)
    return node


def _wanted_types(node: dict) -> set[str]:
    if "type" in node:
        types = node["type"]
        return set(types) if isinstance(types, list) else {types}
    if "enum" in node:
        return {type(v).__name__ for v in node["enum"]}
    return set()


def _coerce(value: Any, node: dict, root: dict) -> Any:
    node = _resolve(node, root)
    if isinstance(value, dict):
        props = node.get("properties", {})
        return {k: _coerce(v, props[k], root) if k in props else v for k, v in value.items()}
    if isinstance(value, list):
        items = node.get("items")
        return [_coerce(v, items, root) for v in value] if isinstance(items, dict) else value
    if isinstance(value, str):
        wanted = _wanted_types(node)
        if wanted and not wanted & {"string", "str"}:
            try:
                parsed = yaml.safe_load(value)
            except yaml.YAMLError:
                return value
            if isinstance(parsed, str) and "number" in wanted:
                try:  # YAML 1.1 reads "2e-4" (no dot) as a string
                    parsed = float(value)
                except ValueError:
                    return value
            # Only accept the parse when it gives a non-string scalar or a container.
            if not isinstance(parsed, str):
                return _coerce(parsed, node, root)
    return value


def coerce_to_schema(config: dict, schema: dict) -> dict:
    """Return a copy of `config` with string scalars converted where the schema wants numbers,
    booleans or arrays; values that do not parse are left for validation to report."""
    return _coerce(config, schema, schema)


def validate_config(config: dict, schema_path: str | Path) -> None:
    """Validate `config` against the schema, then the rules a JSON schema cannot state, each
    taken from the code that imposes it (so the two cannot disagree). Raises Snakemake's
    WorkflowError naming the key, before any job runs."""
    from snakemake.exceptions import WorkflowError
    from snakemake.utils import validate

    from model.image_size import check_image_size

    validate(config, str(schema_path))
    try:
        check_image_size(config["slices"]["size"])
    except ValueError as err:
        raise WorkflowError(f"Error validating config: slices.size: {err}") from None
