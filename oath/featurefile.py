"""The feature file in the published ``auroral_feat.h5`` layout, plus our provenance attributes.

Datasets: ``filenames`` (basenames of the rotated images, sorted, so in picNum order) and
``Logits`` (N x 1001 float32). Attributes say which weights and precision made them, so every
downstream output can say so too. Only this module reads or writes the format.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from oath.atomic import atomic_path


class FeatureFileError(ValueError):
    """A feature file is missing, malformed or inconsistent; the message names the file."""


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
