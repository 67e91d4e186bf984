"""The feature file in the published ``auroral_feat.h5`` layout, plus our provenance attributes.

Datasets: ``filenames`` (basenames of the rotated images, sorted, so in picNum order) and
``Logits`` (N x 1001 float32). Attributes say which weights and precision made them, so every
downstream output can say so too. Only this module reads or writes the format, and
:func:`aligned_logits` is the one place feature rows are matched to labelled table rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from oath.atomic import atomic_path
from oath.data import pic_num_of

#: Attributes that say how the features were made: shards must agree on them to be merged,
#: and results computed from one feature file must agree on them to be combined.
RANDOM_WEIGHTS_ATTR = "random_weights"  # "true" when the checkpoint held random weights
MAKING_ATTRS = ("weights", "checkpoint_sha256", "precision")
#: Attributes a ridge result carries as its provenance (the checkpoint path as well).
RESULT_ATTRS = ("weights", "checkpoint", "checkpoint_sha256", "precision")
#: Attributes a trained model carries, so new images can be checked against its training
#: features (the preprocessing as well).
MODEL_ATTRS = (*RESULT_ATTRS, "preprocessing")


class FeatureFileError(ValueError):
    """A feature file is missing, malformed or inconsistent; the message names the file."""


class AlignmentError(ValueError):
    """Feature rows and the labelled table do not describe the same images (or a row holds NaN
    or infinite Logits); the message names both files and the fix."""


@dataclass
class Features:
    filenames: list[str]
    logits: np.ndarray
    attrs: dict[str, str] = field(default_factory=dict)


def write_features(path: str | Path, features: Features) -> None:
    """Write atomically (temporary file + rename) so a killed job never leaves a partial file."""
    path = Path(path)
    order = np.argsort(features.filenames, kind="stable")
    names = [features.filenames[i] for i in order]
    logits = np.asarray(features.logits, dtype=np.float32)[order]
    if logits.ndim != 2 or logits.shape[0] != len(names):
        raise FeatureFileError(
            f"{path}: {len(names)} file names but Logits of shape {logits.shape}."
        )
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as h5:
        h5.create_dataset("filenames", data=np.array(names, dtype=h5py.string_dtype()))
        h5.create_dataset("Logits", data=logits)
        for key, value in features.attrs.items():
            h5.attrs[key] = str(value)


def read_features(path: str | Path) -> Features:
    """Read a feature file (ours or the published one) and check its shape."""
    path = Path(path)
    try:
        with h5py.File(path, "r") as h5:
            for name in ("filenames", "Logits"):
                if name not in h5:
                    raise FeatureFileError(
                        f"{path}: no '{name}' dataset; expected the auroral_feat.h5 layout "
                        "(filenames, Logits)."
                    )
            raw = h5["filenames"][()]
            logits = np.asarray(h5["Logits"][()], dtype=np.float32)
            attrs = {
                k: (v.decode() if isinstance(v, bytes) else str(v)) for k, v in h5.attrs.items()
            }
    except OSError as exc:
        raise FeatureFileError(f"{path}: not a readable HDF5 file ({exc}).") from exc
    names = [n.decode() if isinstance(n, bytes) else str(n) for n in np.ravel(raw)]
    if logits.ndim != 2 or logits.shape[0] != len(names):
        raise FeatureFileError(
            f"{path}: {len(names)} file names but Logits of shape {logits.shape}; the file is "
            "inconsistent, delete it so the workflow recomputes it."
        )
    return Features(filenames=names, logits=logits, attrs=attrs)


def _preview(values: Sequence[Any], limit: int = 5) -> str:
    shown = ", ".join(str(v) for v in list(values)[:limit])
    return shown + (f" and {len(values) - limit} more" if len(values) > limit else "")


def aligned_logits(
    features: str | Path, feats: Features, pic_nums: np.ndarray, classifications: str | Path
) -> np.ndarray:
    """Feature rows in the table's order, matched by picNum, after checking they fit.

    ``features`` and ``classifications`` are the paths, named in errors. Raises
    :class:`AlignmentError` when picNums repeat, features and table describe different images,
    or the Logits hold NaN or infinite values.
    """
    try:
        feature_pics = np.array([pic_num_of(name) for name in feats.filenames], dtype=np.int64)
    except ValueError as exc:
        raise AlignmentError(
            f"{features}: a file name does not start with a picNum ({exc}); the features must "
            "come from images named {picNum:05d}_{angle}.png."
        ) from exc
    unique, counts = np.unique(feature_pics, return_counts=True)
    repeated = unique[counts > 1].tolist()
    if repeated:
        raise AlignmentError(
            f"{features}: picNum(s) {_preview(repeated)} occur in more than one row. "
            "Delete the feature file so the workflow extracts it again from one image per picNum."
        )
    only_features = sorted(set(feature_pics.tolist()) - set(pic_nums.tolist()))
    only_table = sorted(set(pic_nums.tolist()) - set(feature_pics.tolist()))
    if len(feature_pics) != len(pic_nums) or only_features or only_table:
        detail = []
        if only_table:
            detail.append(f"picNum(s) {_preview(only_table)} have labels but no features")
        if only_features:
            detail.append(f"picNum(s) {_preview(only_features)} have features but no labels")
        raise AlignmentError(
            f"{features} has {len(feature_pics)} feature rows but {classifications} has "
            f"{len(pic_nums)} image rows; {'; '.join(detail) or 'the picNums differ'}. "
            "Features and labels must describe the same images: extract the features again "
            "for this classifications.csv (delete the feature file to have the workflow redo it)."
        )

    row_of = {int(p): i for i, p in enumerate(feature_pics)}
    order = np.array([row_of[int(p)] for p in pic_nums], dtype=np.int64)
    X = feats.logits if np.array_equal(order, np.arange(len(order))) else feats.logits[order]

    finite = np.isfinite(X).all(axis=1)
    if not finite.all():
        bad = [feats.filenames[order[i]] for i in np.flatnonzero(~finite)]
        raise AlignmentError(
            f"{features}: NaN or infinite Logits in {len(bad)} row(s): {_preview(bad)}. "
            "Extraction went wrong for those images; delete the feature file (or the shard that "
            "holds them) so the workflow extracts them again."
        )

    return X
