"""Classify one shard of new files in one process: read, convert, Inception-v4, ridge, Parquet.

A shard (one site-hour of raw THEMIS files, see :mod:`oath.archive.inventory`) is streamed: a Python
generator reads each raw file with pyucalgarysrs (:func:`oath.archive.themis.read_frames`),
converts its frames as :func:`oath.archive.themis.prepare_images` does (crop and scaling by
:func:`oath.archive.conversion.frame_to_oath`, then the site's angle through the same ImageMagick
``-distort SRT`` as :func:`oath.imaging.rotate.rotate_image`, here as its exact sparse linear map
(:mod:`oath.imaging.rotation_map`, one per angle and frame size, checked against Wand on the first
frame), and hands the pixels as arrays to a ``tf.data`` pipeline (``from_generator`` ->
:func:`oath.network.inception_v4.preprocess_pixels` -> batches, prefetched two ahead). A thread
reads the next file while the current one is converted, and the generator runs beside the network.
The pixels are those of the PNG the PNG path writes (no PNG is encoded or decoded per frame),
so the Logits equal those of ``prepare_images`` + extraction; no file is written per frame
unless asked for.

A file that cannot be read (truncated, corrupt, another type) or a frame that cannot be converted
becomes a row with status ``failed: <reason>``; the other frames are classified.

Each shard's Parquet file records how its labels were made in its schema metadata under
``oath.classify`` (JSON: weights, checkpoint and its SHA-256, the precision in use, device,
preprocessing, conversion); :func:`shard_provenance` reads it back.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import shutil
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from oath.archive.conversion import Conversion
from oath.archive.frames import archive_of, parse_archive_name
from oath.archive.keogram import KEOGRAM_COLUMN, keogram_column
from oath.archive.themis import STATUS_OK, ThemisError, input_kind, name_stem, read_frames
from oath.atomic import atomic_path
from oath.fit.model import Model, ModelError, load_model, model_layer, predict, score_column
from oath.fit.ridge import class_scores
from oath.imaging.png import encode_png
from oath.imaging.rotate import import_wand
from oath.imaging.rotation_map import (
    RotationMap,
    RotationMapError,
    differing_pixels,
    load_rotation_map,
    wand_rotate,
)
from oath.network.device import DEVICE_ATTR, RunOptions
from oath.network.featurefile import BACKEND_ATTR, LOGITS, PRELOGITS, Features, write_features
from oath.network.features import Network, open_network
from oath.network.inception_v4 import (
    PREPROCESSING,
    preprocess_pixels,
)

log = logging.getLogger(__name__)

#: Parquet schema metadata key of a shard's (and the gathered dataset's) provenance.
PROVENANCE_KEY = b"oath.classify"


@dataclasses.dataclass
class FrameRecord:
    """One row of the output: a frame (``image``: its uint8 pixels until fed, unless kept; or
    ``png``: its PNG bytes) or a failure."""

    file: str
    frame: int | None
    timestamp: dt.datetime | None
    site: str
    status: str
    png: bytes | None = None
    image: np.ndarray | None = None
    keogram: np.ndarray | None = None  # the raw frame's N-S slice (oath.archive.keogram), counts

    @property
    def name(self) -> str:
        """The frame's PNG name, as the PNG path has it: ``<stem>_fNN.png`` or ``<stem>.png``."""
        suffix = "" if input_kind(self.file) == "image" else f"_f{self.frame:02d}"
        return f"{name_stem(self.file)}{suffix}.png"


class Rotator:
    """Rotation of uint8 frames by a site's angle: its exact linear map, else Wand.

    One map per (angle, frame size), loaded or built on first use; the first frame of each is
    also rotated by Wand, and a map that differs (or cannot be built) is dropped for Wand.
    """

    def __init__(self, cache_dir: str | Path | None = None) -> None:
        self.cache_dir = cache_dir
        self._maps: dict[tuple[float, tuple[int, int]], RotationMap | None] = {}

    def __call__(self, gray: np.ndarray, angle: float) -> np.ndarray:
        key = (float(angle), (int(gray.shape[0]), int(gray.shape[1])))
        if key not in self._maps:
            self._maps[key] = self._checked_map(gray, *key)
        rotation = self._maps[key]
        return rotation.rotate(gray) if rotation is not None else wand_rotate(gray, angle)

    def _checked_map(
        self, gray: np.ndarray, angle: float, shape: tuple[int, int]
    ) -> RotationMap | None:
        try:
            rotation = load_rotation_map(shape, angle, self.cache_dir)
        except RotationMapError as exc:
            log.warning("rotating %s frames by %s degrees through Wand: %s", shape, angle, exc)
            return None
        bad = differing_pixels(rotation, gray)
        if bad:
            log.warning(
                "the rotation map of %s frames at %s degrees differs from Wand in %d pixel(s) "
                "of a frame: rotating them through Wand",
                shape,
                angle,
                bad,
            )
            return None
        return rotation


def _failed(path: str, reason: str, frame: Any = None) -> FrameRecord:
    """A failed row; a whole failed file gets its site from its archive name, if any."""
    where = "" if frame is None else f" frame {frame.index}"
    log.warning("%s%s: failed: %s", path, where, reason)
    if frame is None:
        return FrameRecord(path, None, None, parse_archive_name(path)[1] or "", f"failed: {reason}")
    return FrameRecord(path, frame.index, frame.timestamp, frame.site or "", f"failed: {reason}")


def _read(path: str) -> Any:
    """The frames of one file, or the exception reading raised (re-raised by the caller)."""
    try:
        return read_frames(path)
    except Exception as exc:  # the reader or ImageMagick on a damaged file
        return exc


def _read_ahead(files: Iterable[str | Path]) -> Iterator[tuple[str, Any]]:
    """(path, frames or exception) of each file, the next file read by a thread meanwhile."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="oath-read") as pool:
        pending: Future[Any] | None = None
        pending_path = ""
        for item in files:
            path = str(item)
            future = pool.submit(_read, path)
            if pending is not None:
                yield pending_path, pending.result()
            pending, pending_path = future, path
        if pending is not None:
            yield pending_path, pending.result()


def iter_frames(
    files: Iterable[str | Path], conversion: Conversion, rotator: Rotator | None = None
) -> Iterator[FrameRecord]:
    """Every frame of ``files`` as uint8 pixels ready for the network, or a failed row."""
    wand_error = import_wand().WandException
    rotator = rotator or Rotator()
    for path, frames in _read_ahead(files):
        kind = input_kind(path)
        if isinstance(frames, ThemisError):
            yield _failed(path, str(frames).removeprefix(f"{path}: "))
            continue
        if isinstance(frames, Exception):
            yield _failed(path, f"{type(frames).__name__}: {frames}")
            continue
        for frame in frames:
            site = frame.site or ""
            try:
                if kind != "image":  # raw counts (stream0 or L1 CDF) become OATH-like
                    gray = conversion.to_gray(frame.image, site)
                    angle = conversion.site_angles.get(site, 0.0)
                else:
                    gray, angle = frame.image, 0.0
                gray = np.ascontiguousarray(gray, dtype=np.uint8)
                image = rotator(gray, angle) if angle else gray
            except (ThemisError, wand_error, ValueError) as exc:
                yield _failed(path, str(exc), frame)
                continue
            keogram = keogram_column(frame.image)  # same read: no second pass over the archive
            yield FrameRecord(
                path, frame.index, frame.timestamp, site, STATUS_OK, image=image, keogram=keogram
            )


def record_pixels(record: FrameRecord) -> np.ndarray | None:
    """A record's uint8 pixels: its ``image``, else its PNG decoded (as the PNG path would)."""
    if record.image is not None or record.png is None:
        return record.image
    wand = import_wand()
    with wand.Image(blob=record.png, format="png") as img:
        img.type = "grayscale"
        return np.array(img)[:, :, 0]


class StreamingExtractor(Network):
    """Inception-v4 fed by a Python frame generator through ``tf.data`` (one graph, reusable).

    The generator runs on TensorFlow's ``from_generator`` thread, concurrently with the
    network; ``threads`` preprocess (see :class:`oath.network.features.Network`).
    """

    def _build_input(self, tf: Any) -> Any:
        self._records: Iterator[FrameRecord] = iter(())
        self._seen: list[FrameRecord] = []
        #: Keep each frame's PNG bytes in the records :meth:`run` returns (else dropped once fed).
        self.keep_images = False
        frames = tf.data.Dataset.from_generator(
            self._generate,
            output_signature=(
                tf.TensorSpec([], tf.int64),
                tf.TensorSpec([None, None, 1], tf.uint8),
            ),
        )
        self._rows, images = self._batched(
            frames, lambda row, pixels: (row, preprocess_pixels(pixels))
        )
        return images

    def _generate(self) -> Iterator[tuple[int, np.ndarray]]:
        for record in self._records:
            row = len(self._seen)
            self._seen.append(record)
            pixels = record_pixels(record)
            if pixels is not None:
                yield row, pixels[:, :, None]
                if not self.keep_images:
                    record.png = record.image = None  # TensorFlow holds its copy

    def run(
        self, records: Iterable[FrameRecord], layer: str = LOGITS
    ) -> tuple[list[FrameRecord], dict[str, np.ndarray]]:
        """All records (failed ones included) and their features, NaN rows for failures:
        ``Logits`` always, and feature set ``layer`` too (same forward pass)."""
        tf = self._tf
        fetch = {name: self.layers[name] for name in dict.fromkeys((LOGITS, layer))}
        self._records, self._seen = iter(records), []
        self.session.run(self._iterator.initializer)
        rows, batches = [], []
        while True:
            try:
                row, values = self._run([self._rows, fetch])
            except tf.errors.OutOfRangeError:
                break
            rows.append(row)
            batches.append(values)
        seen, self._seen = self._seen, []
        out = {}
        for name, tensor in fetch.items():
            out[name] = np.full((len(seen), int(tensor.shape[-1])), np.nan, dtype=np.float32)
            if rows:
                out[name][np.concatenate(rows)] = np.concatenate([b[name] for b in batches])
        return seen, out


def check_model_weights(model: Model, sha256: str, checkpoint: str | Path) -> None:
    """Refuse a checkpoint other than the one the model's training features came from."""
    trained = model.provenance.get("features", {}).get("checkpoint_sha256")
    if trained and trained != sha256:
        raise ModelError(
            f"{checkpoint} (sha256 {sha256[:12]}...) is not the checkpoint the model was "
            f"trained with ({trained[:12]}...): scores would mean nothing. Classify with the "
            "training checkpoint or train the model again."
        )
    if not trained:
        log.warning("the model does not say which checkpoint it was trained with")


def predictions_table(
    model: Model, records: Sequence[FrameRecord], features: np.ndarray, layer: str = LOGITS
) -> pd.DataFrame:
    """The predictions.csv columns for ``records``: ids, per label set class/name/scores, status.

    ``features`` are the records' rows of feature set ``layer`` (the model's); ``keogram`` holds
    each raw frame's zenith N-S slice (:mod:`oath.archive.keogram`), None for images and
    failures."""
    ok = np.array([r.status == STATUS_OK for r in records], dtype=bool)
    table = pd.DataFrame(
        {
            "file": [r.file for r in records],
            "frame": pd.array([r.frame for r in records], dtype="Int64"),
            "timestamp": pd.to_datetime([r.timestamp for r in records], utc=True).astype(
                "datetime64[us, UTC]"
            ),
            "site": [r.site for r in records],
            "archive": [archive_of(r.file) for r in records],
            "png": [""] * len(records),
        }
    )
    scored = predict(model, features[ok], layer) if ok.any() else {}
    for name, lm in model.label_models.items():
        number = pd.array([pd.NA] * len(records), dtype="Int64")
        label = np.array([""] * len(records), dtype=object)
        full = np.full((len(records), len(lm.class_names)), np.nan)
        if name in scored:
            number[ok] = scored[name].classes
            label[ok] = scored[name].names
            full[ok] = class_scores(scored[name].scores, lm.classes, len(lm.class_names))
        table[name] = number
        table[f"{name}_name"] = label
        for k, class_name in enumerate(lm.class_names):
            table[score_column(name, class_name)] = full[:, k]
    table["status"] = [r.status for r in records]
    table[KEOGRAM_COLUMN] = [r.keogram for r in records]  # list<uint16> in Parquet, None: none
    return table


def _write_extras(
    extras: Path,
    records: Sequence[FrameRecord],
    layers: dict[str, np.ndarray],
    attrs: dict[str, str],
    *,
    save_images: bool,
    save_features: bool,
) -> list[str]:
    """The shard's optional PNGs and features, into a folder renamed into place when complete."""
    tmp = extras.with_name(f".{extras.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    pngs = [""] * len(records)
    ok = [k for k, r in enumerate(records) if r.status == STATUS_OK]
    if save_images:
        for k in ok:
            pixels = record_pixels(records[k])
            (tmp / records[k].name).write_bytes(encode_png(pixels) if pixels is not None else b"")
            pngs[k] = str(extras / records[k].name)
    if save_features:
        names = [records[k].name for k in ok]
        prelogits = layers[PRELOGITS][ok] if PRELOGITS in layers else None
        features = Features(names, layers[LOGITS][ok], attrs, prelogits=prelogits)
        write_features(tmp / "features.h5", features)
    shutil.rmtree(extras, ignore_errors=True)
    tmp.rename(extras)
    return pngs


def write_parquet(table: pd.DataFrame, out: str | Path, provenance: Mapping[str, Any]) -> None:
    """``table`` as Parquet ``out`` (atomically), ``provenance`` in its schema metadata."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    arrow = pa.Table.from_pandas(table, preserve_index=False)
    metadata = {**(arrow.schema.metadata or {}), PROVENANCE_KEY: json.dumps(dict(provenance))}
    with atomic_path(out, suffix=".parquet") as tmp:
        pq.write_table(arrow.replace_schema_metadata(metadata), tmp)


def shard_provenance(path: str | Path) -> dict[str, Any] | None:
    """What :func:`classify_shard` recorded in ``path`` (None for a shard that records none)."""
    import pyarrow.parquet as pq

    raw = (pq.read_schema(path).metadata or {}).get(PROVENANCE_KEY)
    return json.loads(raw) if raw else None


def classify_shard(
    files: Sequence[str | Path],
    checkpoint: str | Path,
    model: str | Path,
    out: str | Path,
    *,
    extras: str | Path,
    conversion: Conversion = Conversion(),  # noqa: B008 (frozen: never changed)
    weights: str = "",
    save_images: bool = False,
    save_features: bool = False,
    batch_size: int = 16,
    threads: int = 2,
    precision: str = "float32",
    gpu_batch_size: int | None = None,
    backend: str = "tensorflow",
) -> pd.DataFrame:
    """Classify every frame of ``files`` and write the shard's predictions Parquet ``out``.

    ``extras`` is the shard's folder of optional outputs (always made, empty by default): the
    frames' PNGs with ``save_images`` (their paths in the ``png`` column) and the Logits as
    ``features.h5`` (published layout, frame names as file names; with the model's
    ``PreLogitsFlatten`` too when it was trained on them) with ``save_features``. The model's
    feature set is the one fed to it.
    The Parquet file is written last and atomically, so it exists only for a finished shard.
    ``backend`` picks the network's implementation (:func:`oath.network.features.open_network`).
    """
    started = time.perf_counter()
    fitted = load_model(model)
    run = RunOptions(batch_size, threads, precision, gpu_batch_size)
    with open_network(backend, StreamingExtractor, checkpoint, run) as (extractor, sha):
        check_model_weights(fitted, sha.result(), checkpoint)
        extractor.keep_images = save_images
        layer = model_layer(fitted)
        records, layers = extractor.run(iter_frames(files, conversion), layer)
        precision = extractor.precision_in_use or precision
        device = extractor.device
    table = predictions_table(fitted, records, layers[layer], layer)
    attrs = {
        "weights": weights,
        "checkpoint": str(checkpoint),
        "checkpoint_sha256": sha.result(),
        "precision": precision,
        DEVICE_ATTR: device,
        "preprocessing": PREPROCESSING,
        BACKEND_ATTR: backend,
    }
    table["png"] = _write_extras(
        Path(extras),
        records,
        layers,
        attrs,
        save_images=save_images,
        save_features=save_features,
    )
    provenance = {**attrs, "layer": layer, "conversion": conversion.to_config()}
    write_parquet(table, out, provenance)
    n_ok = int((table["status"] == STATUS_OK).sum())
    elapsed = time.perf_counter() - started
    log.info(
        "%s: %d file(s), %d frame(s) classified, %d failed row(s), %.1f s (%.1f frames/s)",
        out,
        len(files),
        n_ok,
        len(table) - n_ok,
        elapsed,
        n_ok / max(elapsed, 1e-9),
    )
    return table
