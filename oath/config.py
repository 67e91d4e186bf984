"""Workflow configuration: the schema, defaults, and what a config means for the data.

``rules/common.smk`` validates with ``snakemake.utils.validate`` against the same schema this
module reads, then asks :func:`resolve_dataset` which images, table and split file to use.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pandas as pd
import yaml

from oath.data import (
    CLASSIFICATION_DIRS,
    DatasetError,
    find_classifications,
    load_classifications,
    load_dataset,
)
from oath.demo import demo_table

log = logging.getLogger(__name__)

DEMO = "demo"
OATH = "oath"
OATH_DIR = Path("resources/oath")  # where dataset "oath" is unpacked
DEMO_ROOT = "resources/demo"
GENERATED_SPLIT = "results/splits/train_test_split.csv"
DEMO_SPLITS = 5  # rows of the demo's split file, as in the published one


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


@dataclass(frozen=True)
class DatasetPlan:
    """What the workflow reads: the table, and where the data set's files are (or will be)."""

    name: str
    root: Path
    is_demo: bool
    classifications: Path
    table: pd.DataFrame
    split_file: Path
    split_is_generated: bool
    images_dir: Path

    def describe(self) -> str:
        what = "synthetic demo" if self.is_demo else "OATH-layout folder"
        found = self.table.attrs
        extra = (
            f", angle column {found['angle_column']!r}, {found['skipped_lines']} comment "
            "line(s) skipped"
            if "angle_column" in found
            else ""
        )
        split = (
            "written by the workflow (seed recipe)"
            if self.split_is_generated
            else str(self.split_file)
        )
        return (
            f"data set {self.name} ({what}) at {self.root}: {len(self.table)} images{extra}; "
            f"split file {split}"
        )


def demo_root(config: dict[str, Any]) -> Path:
    """Folder of the demo data set; its name carries its parameters, so a change makes a new one."""
    demo = config["demo"]
    return Path(DEMO_ROOT) / f"n{demo['n_images']}_seed{demo['seed']}_px{demo['image_size']}"


def find_dataset_root(folder: str | Path) -> Path | None:
    """The OATH-layout folder at or one level below ``folder`` (tarballs wrap it in a folder)."""
    folder = Path(folder)
    candidates = [folder, *sorted(p for p in folder.iterdir() if p.is_dir())]
    for candidate in candidates:
        if any((candidate / d / "classifications.csv").is_file() for d in CLASSIFICATION_DIRS):
            return candidate
    return None


def resolve_dataset(config: dict[str, Any]) -> DatasetPlan | None:
    """Load and check the configured data set's table (or plan the demo's, before it exists).

    Returns None for ``dataset: oath`` while the tarball is not unpacked yet: the workflow then
    plans download and unpacking, and reads the table once it is there.
    """
    name = config["dataset"]
    if name == OATH:
        root = find_dataset_root(OATH_DIR) if OATH_DIR.is_dir() else None
        if root is None:
            return None
        return _plan_folder(OATH, root, config)
    if name == DEMO:
        root = demo_root(config)
        classifications = root / "classifications" / "classifications.csv"
        if classifications.is_file():
            table = load_classifications(classifications)  # a user may edit the demo like real data
        else:
            table = demo_table(config["demo"]["n_images"], config["demo"]["seed"])
        if config["ridge"]["n_splits"] > DEMO_SPLITS:
            raise DatasetError(
                f"config: ridge.n_splits is {config['ridge']['n_splits']}, but the demo's split "
                f"file has {DEMO_SPLITS} rows like the published one. Use at most {DEMO_SPLITS}."
            )
        return DatasetPlan(
            name,
            root,
            True,
            classifications,
            table,
            classifications.parent / "train_test_split.csv",
            False,
            root / "images" / "cropped_scaled",
        )
    return _plan_folder(name, Path(name), config)


def _plan_folder(name: str, root: Path, config: dict[str, Any]) -> DatasetPlan:
    dataset = load_dataset(root)
    split_is_generated = dataset.split_file is None
    split_file = Path(GENERATED_SPLIT) if split_is_generated else dataset.split_file
    if dataset.split_file is not None:
        n_rows = sum(1 for line in dataset.split_file.read_text().splitlines() if line.strip())
        if n_rows < config["ridge"]["n_splits"]:
            raise DatasetError(
                f"{dataset.split_file}: {n_rows} split row(s), but ridge.n_splits is "
                f"{config['ridge']['n_splits']}. Lower ridge.n_splits or remove the file to have "
                "the original recipe write one."
            )
    return DatasetPlan(
        name,
        dataset.root,
        False,
        dataset.classifications,
        dataset.table,
        split_file,
        split_is_generated,
        dataset.images_dir,
    )


def checkpoint_prefix(files: list[str] | tuple[str, ...]) -> str:
    """What TensorFlow opens, from a checkpoint's files: a V1 file itself, or a V2 prefix."""
    files = [str(f) for f in files]
    if len(files) == 1:
        return files[0]
    index = [f for f in files if f.endswith(".index")]
    if len(index) != 1:
        raise ValueError(f"cannot tell the checkpoint prefix of {files}")
    return index[0][: -len(".index")]


def shard_of(pic_num: int, shard_size: int) -> str:
    """Stable shard name of a picNum: its picNum range, e.g. ``00256-00511`` for size 256."""
    first = (int(pic_num) // shard_size) * shard_size
    return f"{first:05d}-{first + shard_size - 1:05d}"


def shard_names(pic_nums: Iterable[int], shard_size: int) -> list[str]:
    """Shard names of some picNums, in picNum order."""
    return sorted({shard_of(p, shard_size) for p in pic_nums})


def shard_table(table: pd.DataFrame, shard_size: int) -> dict[str, pd.DataFrame]:
    """Rows of the image table per shard, shards in picNum order."""
    names = table["picNum"].map(lambda p: shard_of(p, shard_size))
    return {name: rows for name, rows in table.assign(shard=names).groupby("shard", sort=True)}


__all__ = [
    "DatasetPlan",
    "demo_root",
    "find_classifications",
    "resolve_dataset",
    "shard_of",
    "shard_table",
    "validate_config",
]
