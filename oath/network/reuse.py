"""What a shard's extraction keeps from its previous one: whole batches of unchanged images.

Snakemake deletes a job's output before it runs the job again, so one changed image would cost
its whole shard's extraction (256 images through the network). :func:`save_rows` leaves a copy
of a shard's rows beside its output, in ``<shards folder>/reuse/<shard>.h5``, with each image's
SHA-256 and the settings that made them; the next extraction of the shard keeps every batch
whose images (names, order, bytes) and settings (:func:`settings_of`) are unchanged and runs the
network on the other batches only (:func:`plan_batches`).

Batches are kept or recomputed whole, and the recomputed ones keep their composition (a stale
batch is full unless it is the shard's last), so the rows equal those of a fresh extraction bit
for bit: TensorFlow's result for an image can depend on the batch it is in. A copy that is
missing, unreadable or made otherwise is not used; it is never more than a cache.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from oath.atomic import atomic_path

log = logging.getLogger(__name__)

REUSE_FOLDER = "reuse"
"""The sub-folder of the shard folder that holds the copies."""


@dataclass
class PreviousRows:
    """A shard's rows as its last extraction left them."""

    names: list[str]
    digests: list[str]
    layers: dict[str, np.ndarray]
    settings: dict[str, str]
    precision_in_use: str


def reuse_path(out_path: str | Path) -> Path:
    """Where the copy of the shard feature file ``out_path`` lies."""
    out_path = Path(out_path)
    return out_path.parent / REUSE_FOLDER / out_path.name


def image_digests(paths: Sequence[str | Path]) -> list[str]:
    """The SHA-256 of each image file (what decides whether its row can be kept)."""
    return [hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in paths]


def settings_of(attrs: dict[str, str], batch_size: int, precision_asked: str) -> dict[str, str]:
    """What must be equal for a row to be kept: the feature file's making attributes that
    change numbers (weights, backend and its version, device, preprocessing), the precision
    asked for and the batch size."""
    keys = ("checkpoint_sha256", "device", "preprocessing", "backend")
    kept = {key: str(attrs.get(key, "")) for key in keys}
    versions = {key: str(value) for key, value in attrs.items() if key.endswith("_version")}
    return {**kept, **versions, "precision_asked": precision_asked, "batch_size": str(batch_size)}


def load_rows(out_path: str | Path) -> PreviousRows | None:
    """The copy of the shard's previous rows, or None (missing or unreadable: logged)."""
    path = reuse_path(out_path)
    if not path.is_file():
        return None
    try:
        with h5py.File(path, "r") as h5:
            return PreviousRows(
                names=[n.decode() for n in h5["filenames"][()]],
                digests=[d.decode() for d in h5["sha256"][()]],
                layers={name: h5["layers"][name][()] for name in h5["layers"]},
                settings=json.loads(h5.attrs["settings"]),
                precision_in_use=str(h5.attrs["precision_in_use"]),
            )
    except (OSError, KeyError, ValueError) as exc:
        log.warning("%s: not used (%s); every batch is extracted", path, exc)
        return None


def plan_batches(
    previous: PreviousRows | None,
    names: Sequence[str],
    digests: Sequence[str],
    settings: dict[str, str],
    batch_size: int,
) -> list[int]:
    """The batch indices (of ``batch_size`` images, in order) whose rows ``previous`` holds
    unchanged: same settings, and the same names and bytes at the same positions."""
    if previous is None:
        return []
    if previous.settings != settings:
        changed = sorted(
            k
            for k in {*settings, *previous.settings}
            if settings.get(k) != previous.settings.get(k)
        )
        log.info("previous rows made with other settings (%s): none kept", ", ".join(changed))
        return []
    kept = []
    for index, start in enumerate(range(0, len(names), batch_size)):
        stop = min(start + batch_size, len(names))
        if (
            list(previous.names[start:stop]) == list(names[start:stop])
            and list(previous.digests[start:stop]) == list(digests[start:stop])
            and len(previous.names) >= stop
            # the shard's last batch, if partial, must have been the last one before too
            and (stop - start == batch_size or len(previous.names) == stop)
        ):
            kept.append(index)
    return kept


def save_rows(
    out_path: str | Path,
    names: Sequence[str],
    digests: Sequence[str],
    layers: dict[str, np.ndarray],
    settings: dict[str, str],
    precision_in_use: str,
) -> None:
    """Leave the shard's rows (in extraction order) for its next extraction (atomically)."""
    path = reuse_path(out_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as h5:
        h5["filenames"] = np.array([n.encode() for n in names], dtype="S")
        h5["sha256"] = np.array([d.encode() for d in digests], dtype="S64")
        group = h5.create_group("layers")
        for name, values in layers.items():
            group[name] = values
        h5.attrs["settings"] = json.dumps(settings, sort_keys=True)
        h5.attrs["precision_in_use"] = precision_in_use
