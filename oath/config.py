"""Workflow configuration: the JSON Schema, its defaults, and checkpoint file names.

``rules/common.smk`` validates with ``snakemake.utils.validate`` against the same schema this
module reads; what a config means for the data (which folder, which shards) is
:mod:`oath.dataset.source`.
"""

from __future__ import annotations

import copy
import logging
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

log = logging.getLogger(__name__)


def schema_path() -> Path:
    return Path(str(resources.files("oath") / "schemas" / "config.schema.yaml"))


def load_schema() -> dict[str, Any]:
    return yaml.safe_load(schema_path().read_text())


def _fill_defaults(config: dict[str, Any], schema: dict[str, Any]) -> None:
    for key, sub in schema.get("properties", {}).items():
        if key not in config and "default" in sub:
            config[key] = copy.deepcopy(sub["default"])
        if sub.get("type") == "object" and isinstance(config.get(key), dict):
            _fill_defaults(config[key], sub)


def validate_config(config: dict[str, Any]) -> dict[str, Any]:
    """Check a config against the schema and fill in defaults; errors name the offending key.

    The workflow itself uses ``snakemake.utils.validate`` on the same schema; this is for code
    and tests that run without Snakemake.
    """
    config = copy.deepcopy(config)
    schema = load_schema()
    try:
        jsonschema.validate(config, schema)
    except jsonschema.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "(top level)"
        raise ValueError(f"config key {where}: {exc.message}") from exc
    _fill_defaults(config, schema)
    return config


def checkpoint_prefix(files: list[str] | tuple[str, ...]) -> str:
    """What TensorFlow opens, from a checkpoint's files: a V1 file itself, or a V2 prefix."""
    files = [str(f) for f in files]
    if len(files) == 1:
        return files[0]
    index = [f for f in files if f.endswith(".index")]
    if len(index) != 1:
        raise ValueError(f"cannot tell the checkpoint prefix of {files}")
    return index[0][: -len(".index")]


__all__ = ["checkpoint_prefix", "load_schema", "schema_path", "validate_config"]
