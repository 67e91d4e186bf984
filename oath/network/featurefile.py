"""The feature file in the published ``auroral_feat.h5`` layout, plus our provenance attributes.

Datasets: ``filenames`` (basenames of the rotated images, sorted, so in picNum order),
``Logits`` (N x 1001 float32) and, in files we extract, ``PreLogitsFlatten`` (N x 1536 float32,
the average-pooled layer before the classifier, from the same forward pass; the published file
lacks it and reads as Logits only). Attributes say which weights and precision made them, so
every downstream output can say so too. Only this module reads or writes the format,
:meth:`Features.layer` is the one place a feature set is picked (with the error that says to
re-extract), and :func:`aligned_features` the one place feature rows are matched to labelled
table rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from oath.atomic import atomic_path
from oath.dataset.table import pic_num_of

#: Attributes that say how the features were made: shards must agree on them to be merged,
#: and results computed from one feature file must agree on them to be combined.
RANDOM_WEIGHTS_ATTR = "random_weights"  # "true" when the checkpoint held random weights
#: Which implementation of the network ran (config network.backend): "tensorflow" or "torch".
BACKEND_ATTR = "backend"
BACKENDS = ("tensorflow", "torch")
MAKING_ATTRS = ("weights", "checkpoint_sha256", "precision", BACKEND_ATTR)
#: What a making attribute reads as in files written before it was recorded.
ATTR_DEFAULTS = {BACKEND_ATTR: "tensorflow"}
#: Attributes a ridge result carries as its provenance (the checkpoint path as well).
RESULT_ATTRS = ("weights", "checkpoint", "checkpoint_sha256", "precision", BACKEND_ATTR)
#: Attributes a trained model carries, so new images can be checked against its training
#: features (the preprocessing as well).
MODEL_ATTRS = (*RESULT_ATTRS, "preprocessing")

#: The feature sets (Inception-v4 end points) a feature file can hold; config ``features``.
LOGITS = "Logits"  # 1001 ImageNet class scores: what Clausen & Nickisch (2018) classified
PRELOGITS = "PreLogitsFlatten"  # 1536-d average pool before the classifier (transfer learning)
LAYERS = (LOGITS, PRELOGITS)


class FeatureFileError(ValueError):
    """A feature file is missing, malformed or inconsistent; the message names the file."""


class AlignmentError(ValueError):
    """Feature rows and the labelled table do not describe the same images (or a row holds NaN
    or infinite features); the message names both files and the fix."""


@dataclass
class Features:
    """Rows of one feature file; ``prelogits`` is None in files without ``PreLogitsFlatten``."""

    filenames: list[str]
    logits: np.ndarray
    attrs: dict[str, str] = field(default_factory=dict)
    prelogits: np.ndarray | None = None

    def layer(self, layer: str, path: str | Path) -> np.ndarray:
        """The matrix of one feature set (``Logits`` or ``PreLogitsFlatten``) of file ``path``.

        Raises :class:`FeatureFileError` naming the file when it lacks that feature set (the
        published ``auroral_feat.h5`` and files extracted before it existed hold Logits only).
        """
        if layer == LOGITS:
            return self.logits
        if layer not in LAYERS:
            raise FeatureFileError(f"unknown feature set {layer!r}; use one of {LAYERS}.")
        if self.prelogits is None:
            raise FeatureFileError(
                f"{path} holds no '{PRELOGITS}' dataset, only Logits (the published layout, or "
                f"features extracted before {PRELOGITS} was written). Re-extract the features "
                f"(delete {Path(path).name} and its shards so the workflow extracts them again) "
                "or set features: Logits."
            )
        return self.prelogits


def _rows(path: Path, name: str, matrix: Any, order: np.ndarray, n: int) -> np.ndarray:
    values = np.asarray(matrix, dtype=np.float32)
    if values.ndim != 2 or values.shape[0] != n:
        raise FeatureFileError(f"{path}: {n} file names but {name} of shape {values.shape}.")
    return values[order]


def write_features(path: str | Path, features: Features) -> None:
    """Write atomically (temporary file + rename) so a killed job never leaves a partial file."""
    path = Path(path)
    order = np.argsort(features.filenames, kind="stable")
    names = [features.filenames[i] for i in order]
    logits = _rows(path, LOGITS, features.logits, order, len(names))
    prelogits = None
    if features.prelogits is not None:
        prelogits = _rows(path, PRELOGITS, features.prelogits, order, len(names))
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as h5:
        h5.create_dataset("filenames", data=np.array(names, dtype=h5py.string_dtype()))
        h5.create_dataset(LOGITS, data=logits)
        if prelogits is not None:
            h5.create_dataset(PRELOGITS, data=prelogits)
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
            logits = np.asarray(h5[LOGITS][()], dtype=np.float32)
            prelogits = np.asarray(h5[PRELOGITS][()], dtype=np.float32) if PRELOGITS in h5 else None
            attrs = {
                k: (v.decode() if isinstance(v, bytes) else str(v)) for k, v in h5.attrs.items()
            }
    except OSError as exc:
        raise FeatureFileError(f"{path}: not a readable HDF5 file ({exc}).") from exc
    names = [n.decode() if isinstance(n, bytes) else str(n) for n in np.ravel(raw)]
    for name, values in ((LOGITS, logits), (PRELOGITS, prelogits)):
        if values is not None and (values.ndim != 2 or values.shape[0] != len(names)):
            raise FeatureFileError(
                f"{path}: {len(names)} file names but {name} of shape {values.shape}; the file "
                "is inconsistent, delete it so the workflow recomputes it."
            )
    return Features(filenames=names, logits=logits, attrs=attrs, prelogits=prelogits)


def _preview(values: Sequence[Any], limit: int = 5) -> str:
    shown = ", ".join(str(v) for v in list(values)[:limit])
    return shown + (f" and {len(values) - limit} more" if len(values) > limit else "")


def aligned_features(
    features: str | Path,
    feats: Features,
    pic_nums: np.ndarray,
    classifications: str | Path,
    layer: str = LOGITS,
) -> np.ndarray:
    """Rows of feature set ``layer`` in the table's order, matched by picNum, after checks.

    ``features`` and ``classifications`` are the paths, named in errors. Raises
    :class:`FeatureFileError` when the file lacks ``layer``, :class:`AlignmentError` when
    picNums repeat, features and table describe different images, or the features hold NaN or
    infinite values.
    """
    matrix = feats.layer(layer, features)
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
    X = matrix if np.array_equal(order, np.arange(len(order))) else matrix[order]

    finite = np.isfinite(X).all(axis=1)
    if not finite.all():
        bad = [feats.filenames[order[i]] for i in np.flatnonzero(~finite)]
        raise AlignmentError(
            f"{features}: NaN or infinite {layer} in {len(bad)} row(s): {_preview(bad)}. "
            "Extraction went wrong for those images; delete the feature file (or the shard that "
            "holds them) so the workflow extracts them again."
        )

    return X
