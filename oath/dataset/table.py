"""Read and check a data set in the OATH layout.

Layout (Clausen & Nickisch 2018, OATH v1.1)::

    <root>/classifications/classifications.csv   # '#' comments, then class2,...,angle
    <root>/classifications/train_test_split.csv  # n_splits rows of N shuffled row indices
    <root>/images/cropped_scaled/{picNum:05d}.png
    <root>/images/files_origin.csv               # optional
    <root>/features/auroral_feat.h5              # optional, the published features

The tarball names the folder ``classifications/``, the seed page ``classification/``; public
scripts call the angle column ``angle`` or ``rotAng``. We accept both and log which we found.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from oath.dataset.splits import load_split

log = logging.getLogger(__name__)

CLASS6_NAMES = ("arc", "diffuse", "discrete", "cloudy", "moon", "clear")
CLASS2_NAMES = ("aurora", "no aurora")
LABEL_NAMES = {"class6": CLASS6_NAMES, "class2": CLASS2_NAMES}
CLASSIFICATION_DIRS = ("classifications", "classification")
ANGLE_COLUMNS = ("angle", "rotAng")
REQUIRED_COLUMNS = ("class2", "class6", "picNum", "label")


class DatasetError(ValueError):
    """A data set file is missing or malformed; the message names the file and the fix."""


@dataclass(frozen=True)
class Dataset:
    """A checked OATH-layout folder: the image table plus where its files are."""

    root: Path
    classifications: Path
    table: pd.DataFrame
    split_file: Path | None
    images_dir: Path
    files_origin: Path | None
    published_features: Path | None

    def image_path(self, pic_num: int) -> Path:
        return self.images_dir / image_name(pic_num)


def image_name(pic_num: int) -> str:
    """Name of a source image, as rotate.sh builds it from the CSV: zero-padded picNum."""
    return f"{int(pic_num):05d}.png"


def rotated_name(pic_num: int, angle: str) -> str:
    """Published name of a rotated image: ``{picNum:05d}_{angle}.png`` (sorts in picNum order)."""
    return f"{int(pic_num):05d}_{angle}.png"


def pic_num_of(file_name: str) -> int:
    """picNum of a rotated or source image file name.

    >>> pic_num_of("00017_262.png"), image_name(17), rotated_name(17, "262")
    (17, '00017.png', '00017_262.png')
    """
    stem = Path(file_name).name.split(".")[0]
    return int(stem.split("_")[0])


def find_classifications(root: Path) -> Path:
    """The classifications.csv under either folder spelling."""
    for folder in CLASSIFICATION_DIRS:
        candidate = Path(root) / folder / "classifications.csv"
        if candidate.is_file():
            if folder != CLASSIFICATION_DIRS[0]:
                log.info("found the seed-page folder name %r under %s", folder, root)
            return candidate
    raise DatasetError(
        f"{root}: no classifications/classifications.csv (nor classification/classifications.csv). "
        "Point dataset= at the folder that holds the unpacked OATH tarball."
    )


def _data_lines(path: Path) -> tuple[list[str], list[int]]:
    """The lines of a CSV that are neither '#' comments nor blank, and their 1-based numbers."""
    try:
        raw = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read ({exc.strerror}).") from exc
    kept: list[str] = []
    line_numbers: list[int] = []
    for number, line in enumerate(raw.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        kept.append(line)
        line_numbers.append(number)
    if not kept:
        raise DatasetError(f"{path}: no header line after the comment block.")
    return kept, line_numbers


def load_classifications(path: str | Path) -> pd.DataFrame:
    """Read classifications.csv, skipping '#' comment lines and blank lines, whatever their count.

    Returns columns class2, class6, picNum, label, angle; ``angle`` keeps the text as written
    because it is part of the published rotated file names.
    """
    path = Path(path)
    kept, line_numbers = _data_lines(path)
    table = pd.read_csv(io.StringIO("\n".join(kept)), dtype=str, skipinitialspace=True)
    table.columns = [c.strip() for c in table.columns]
    angle_column = next((c for c in ANGLE_COLUMNS if c in table.columns), None)
    missing = [c for c in REQUIRED_COLUMNS if c not in table.columns]
    if angle_column is None:
        missing.append("angle (or rotAng)")
    if missing:
        raise DatasetError(
            f"{path}: header line {line_numbers[0]} lacks column(s) {', '.join(missing)}; "
            "expected class2,class6,picNum,label,angle."
        )
    log.info(
        "%s: angle column is %r, %d comment/blank line(s) skipped before the header",
        path,
        angle_column,
        line_numbers[0] - 1,
    )
    found = {"angle_column": angle_column, "skipped_lines": line_numbers[0] - 1}
    table = table.rename(columns={angle_column: "angle"})
    table = table[["class2", "class6", "picNum", "label", "angle"]].copy()
    rows = np.asarray(line_numbers[1:])

    def row_error(mask: np.ndarray, what: str, fix: str) -> None:
        bad = np.flatnonzero(mask)
        if bad.size:
            first = ", ".join(str(rows[i]) for i in bad[:5])
            raise DatasetError(f"{path}: line(s) {first}: {what}. {fix}")

    for column in ("class2", "class6", "picNum"):
        numbers = pd.to_numeric(table[column].str.strip(), errors="coerce")
        row_error(
            numbers.isna().to_numpy() | (numbers % 1 != 0).to_numpy(),
            f"{column} is not a whole number",
            "Fix or remove those rows.",
        )
        table[column] = numbers.astype(np.int64)
    table["angle"] = table["angle"].fillna("").str.strip()
    angles = pd.to_numeric(table["angle"], errors="coerce")
    row_error(angles.isna().to_numpy(), "angle is not a number", "Give every image its angle.")
    table["label"] = table["label"].fillna("").str.strip()
    row_error(
        ~table["class6"].between(0, 5).to_numpy(),
        "class6 is outside 0..5",
        "class6 is 0 arc, 1 diffuse, 2 discrete, 3 cloudy, 4 moon, 5 clear.",
    )
    row_error(
        ~table["class2"].between(0, 1).to_numpy(),
        "class2 is outside 0..1",
        "class2 is 0 aurora, 1 no aurora.",
    )
    row_error(
        (table["class2"] != (table["class6"] >= 3).astype(int)).to_numpy(),
        "class2 disagrees with class6",
        "class2 is 0 for class6 0-2 and 1 for class6 3-5.",
    )
    row_error((table["picNum"] < 0).to_numpy(), "picNum is negative", "picNums count from 0 or 1.")
    row_error(
        table["picNum"].duplicated(keep="first").to_numpy(),
        "duplicate picNum",
        "Each image appears once; remove the repeated rows.",
    )
    table = table.reset_index(drop=True)
    table.attrs.update(found)  # what the loader found, for the workflow to report
    return table


def load_dataset(root: str | Path, *, check_images: bool = True) -> Dataset:
    """Open and check an OATH-layout folder; see the module docstring for the layout."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(
            f"{root}: data set folder does not exist. Unpack the OATH tarball there "
            "or leave dataset unset to use the offline demo."
        )
    classifications = find_classifications(root)
    table = load_classifications(classifications)
    images_dir = root / "images" / "cropped_scaled"
    if check_images:
        missing = [
            image_name(p) for p in table["picNum"] if not (images_dir / image_name(p)).is_file()
        ]
        if missing:
            shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
            raise DatasetError(
                f"{classifications}: {len(missing)} image(s) listed but not found in {images_dir}: "
                f"{shown}. Restore them or remove their rows."
            )
    split_file = classifications.parent / "train_test_split.csv"
    if split_file.is_file():
        load_split(split_file, len(table))
    else:
        split_file = None
    files_origin = root / "images" / "files_origin.csv"
    published = root / "features" / "auroral_feat.h5"
    return Dataset(
        root=root,
        classifications=classifications,
        table=table,
        split_file=split_file,
        images_dir=images_dir,
        files_origin=files_origin if files_origin.is_file() else None,
        published_features=published if published.is_file() else None,
    )
