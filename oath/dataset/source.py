"""The configured data set as the workflow plans it: which folder, which images, which shards.

A data set is a folder in the OATH layout (the offline demo, drawn by the workflow itself, or a
user's folder), or ``oath``: the published tarball, downloaded and unpacked by the workflow.
:class:`DataSource` hides that difference from ``rules/common.smk``: each input function asks
it one question. Before the tarball is unpacked its table is unknown, so shards are planned
from ``oath.n_images`` and the table is read once the ``unpack_oath`` checkpoint has run.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from oath.dataset.table import (
    CLASSIFICATION_DIRS,
    DatasetError,
    image_name,
    load_classifications,
    load_dataset,
    rotated_name,
)
from oath.demo.dataset import RAW_DIR as DEMO_RAW_DIR
from oath.demo.dataset import demo_origins, demo_raw_files, demo_table

log = logging.getLogger(__name__)

DEMO = "demo"
OATH = "oath"
OATH_DIR = Path("resources/oath")  # where dataset "oath" is unpacked
DEMO_ROOT = Path("resources/demo")
GENERATED_SPLIT = Path("results/splits/train_test_split.csv")
ROTATED_DIR = Path("results/rotated")  # rotated images under their published names
MANIFEST_DIR = ROTATED_DIR / "shards"  # one list of rotated names per shard
DEMO_SPLITS = 5  # rows of the demo's split file, as in the published one


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

    @property
    def files_origin(self) -> Path:
        return self.root / "images" / "files_origin.csv"

    @property
    def published_features(self) -> Path:
        return self.root / "features" / "auroral_feat.h5"

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
    return DEMO_ROOT / f"n{demo['n_images']}_seed{demo['seed']}_px{demo['image_size']}"


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
        return None if root is None else _plan_folder(OATH, root, config)
    if name == DEMO:
        if config["ridge"]["n_splits"] > DEMO_SPLITS:
            raise DatasetError(
                f"config: ridge.n_splits is {config['ridge']['n_splits']}, but the demo's split "
                f"file has {DEMO_SPLITS} rows like the published one. Use at most {DEMO_SPLITS}."
            )
        return _plan_demo(config)
    return _plan_folder(name, Path(name), config)


def _plan_demo(config: dict[str, Any]) -> DatasetPlan:
    root = demo_root(config)
    classifications = root / "classifications" / "classifications.csv"
    if classifications.is_file():
        table = load_classifications(classifications)  # a user may edit the demo like real data
    else:
        table = demo_table(config["demo"]["n_images"], config["demo"]["seed"])
    return DatasetPlan(
        DEMO,
        root,
        True,
        classifications,
        table,
        classifications.parent / "train_test_split.csv",
        False,
        root / "images" / "cropped_scaled",
    )


def _plan_folder(name: str, root: Path, config: dict[str, Any]) -> DatasetPlan:
    dataset = load_dataset(root)
    split_is_generated = dataset.split_file is None
    split_file = GENERATED_SPLIT if split_is_generated else dataset.split_file
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


def rotated_path(pic_num: int, angle: str) -> Path:
    """Where the workflow writes an image rotated by its angle, under its published name."""
    return ROTATED_DIR / rotated_name(pic_num, angle)


def shard_manifest(shard: str) -> Path:
    """The list of one shard's rotated images: what extraction reads, written last."""
    return MANIFEST_DIR / f"{shard}.txt"


class DataSource:
    """The configured data set behind the workflow's input functions.

    ``wait_for_unpack`` returns the folder the OATH tarball was unpacked into; the workflow
    passes the ``unpack_oath`` checkpoint's ``get()``, which defers a question until then.
    """

    def __init__(self, config: dict[str, Any], wait_for_unpack: Callable[[], str | Path]):
        self.config = config
        self.shard_size: int = config["shard_size"]
        self._wait_for_unpack = wait_for_unpack
        self._plan = resolve_dataset(config)
        self._is_download = self._plan is None  # fixed for the run: the plan is made once
        self._shards: dict[str, pd.DataFrame] | None = None
        self._demo: DatasetPlan | None = None

    @property
    def is_download(self) -> bool:
        """True while dataset "oath" waits for its tarball: its table is read after unpacking."""
        return self._is_download

    @property
    def is_demo(self) -> bool:
        return self.config["dataset"] == DEMO

    def describe(self) -> str:
        if self._plan is not None:
            return self._plan.describe()
        oath = self.config["oath"]
        return (
            f"data set oath is not under {OATH_DIR} yet: planning its download from "
            f"{oath['url']} and {oath['n_images']} images"
        )

    @property
    def plan(self) -> DatasetPlan:
        """The data set's plan; for a download, once the tarball is unpacked."""
        if self._plan is None:
            unpacked = Path(self._wait_for_unpack())
            if find_dataset_root(unpacked) is None:
                raise DatasetError(
                    f"{unpacked}: the OATH tarball holds no classifications/classifications.csv. "
                    f"Check oath.url, delete {unpacked} and the tarball, and run again."
                )
            self._plan = resolve_dataset(self.config)
        return self._plan

    # --- shards ---------------------------------------------------------------------------

    @property
    def shard_names(self) -> list[str]:
        """Shard names; before a download is unpacked, from ``oath.n_images``."""
        if self._is_download:
            return shard_names(range(1, self.config["oath"]["n_images"] + 1), self.shard_size)
        return list(self.shards())

    def shards(self) -> dict[str, pd.DataFrame]:
        if self._shards is None:
            self._shards = shard_table(self.plan.table, self.shard_size)
        return self._shards

    def shard_rows(self, shard: str) -> pd.DataFrame:
        rows = self.shards().get(shard)
        if rows is None:
            raise DatasetError(
                f"{self.plan.classifications}: no image falls in shard {shard}; the tarball "
                f"has {len(self.plan.table)} images, not the oath.n_images = "
                f"{self.config['oath']['n_images']} the plan assumed. Set oath.n_images to that "
                "number and run again."
            )
        return rows

    def shard_images(self, shard: str) -> list[str]:
        return [str(self.plan.images_dir / image_name(p)) for p in self.shard_rows(shard)["picNum"]]

    def shard_angles(self, shard: str) -> list[str]:
        return list(self.shard_rows(shard)["angle"])

    def shard_rotated(self, shard: str) -> list[str]:
        rows = self.shard_rows(shard)
        return [str(rotated_path(p, a)) for p, a in zip(rows["picNum"], rows["angle"], strict=True)]

    def shard_manifests(self) -> list[str]:
        return [str(shard_manifest(shard)) for shard in self.shard_names]

    def checked_manifests(self) -> list[str]:
        """The shard manifests, after checking that each lists no rotated image since lost.

        One rule rotates every shard and declares only its manifest as output, so Snakemake
        alone would not notice a deleted rotated image; this says which shard to redo.
        """
        for shard in [] if self._is_download else self.shards():
            manifest = shard_manifest(shard)
            if not manifest.is_file():
                continue  # to be rotated anyway
            listed = set(manifest.read_text().split())
            lost = [p for p in self.shard_rotated(shard) if Path(p).name in listed]
            lost = [p for p in lost if not Path(p).is_file()]
            if lost:
                raise DatasetError(
                    f"{manifest}: lists {lost[0]}, which is gone ({len(lost)} image(s) of shard "
                    f"{shard}). Delete that manifest and run again: the shard is rotated again."
                )
        return self.shard_manifests()

    # --- the data set's files ---------------------------------------------------------------

    def classifications(self) -> str:
        return str(self.plan.classifications)

    def split_file(self) -> str:
        return str(self.plan.split_file)

    def files_origin(self) -> dict[str, str]:
        """{"files_origin": path} when the data set has images/files_origin.csv, else {}.

        The demo's is written by the workflow, so it is planned before it exists.
        """
        path = self.plan.files_origin
        return {"files_origin": str(path)} if self.is_demo or path.is_file() else {}

    def image_files(self) -> list[str]:
        """Every image of the data set (``images/cropped_scaled/{picNum:05d}.png``)."""
        return [str(self.plan.images_dir / image_name(p)) for p in self.plan.table["picNum"]]

    def has_published_features(self) -> bool:
        if self._is_download:
            return True  # the OATH tarball ships features/auroral_feat.h5
        return self._plan.published_features.is_file()

    def published_features(self) -> str:
        return str(self.plan.published_features)

    def feature_sets(self) -> list[str]:
        """Our extracted features, plus the published ones when the data set ships them."""
        return ["extracted", "published"] if self.has_published_features() else ["extracted"]

    # --- the demo (drawn by the workflow whatever the data set, when asked for) ------------

    @property
    def demo(self) -> DatasetPlan:
        """The demo's plan: what make_demo_dataset draws, even while another data set is used."""
        if self._demo is None:
            mine = self._plan is not None and self.is_demo
            self._demo = self._plan if mine else _plan_demo(self.config)
        return self._demo

    def demo_images(self) -> list[str]:
        return [str(self.demo.images_dir / image_name(p)) for p in self.demo.table["picNum"]]

    def demo_raw_dir(self) -> str:
        """The demo's folder of raw stream0 files (its PNGs are made from them)."""
        return str(self.demo.root / DEMO_RAW_DIR)

    def demo_raw_files(self) -> list[str]:
        """The demo's raw files, planned from its table without drawing a pixel."""
        origins = demo_origins(self.demo.table, self.config["demo"]["seed"])
        return [str(self.demo.root / p) for p in demo_raw_files(origins)]


__all__ = [
    "DataSource",
    "DatasetPlan",
    "demo_root",
    "find_dataset_root",
    "resolve_dataset",
    "rotated_path",
    "shard_manifest",
    "shard_of",
    "shard_table",
]
