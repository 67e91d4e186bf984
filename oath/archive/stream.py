"""Classify one shard of new files in one process: read, convert, Inception-v4, ridge, Parquet.

A shard (one site-hour of raw THEMIS files, see :mod:`oath.archive.inventory`) is streamed: a
:class:`oath.archive.feed.ReadAhead` thread reads each raw file with pyucalgarysrs, converts its
frames and turns them by their site's angle (the exact sparse map of ImageMagick's ``-distort
SRT``, all the frames of a file in one product), a bounded amount ahead; it starts once
TensorFlow is imported, so the first files are ready when the network is. A generator only hands
the ready uint8 pixels to a ``tf.data`` pipeline (``from_generator`` ->
:func:`oath.network.inception_v4.preprocess_pixels` -> batches, prefetched two ahead), beside
the network. The pixels are those of the PNG the PNG path writes (no PNG is encoded or decoded
per frame), so the Logits equal those of ``prepare_images`` + extraction; no file is written per
frame unless asked for.

A file that cannot be read (truncated, corrupt, another type) or a frame that cannot be converted
becomes a row with status ``failed: <reason>``; the other frames are classified.

Each shard's Parquet file records how its labels were made in its schema metadata under
``oath.classify`` (JSON: weights, checkpoint and its SHA-256, the precision in use, device,
preprocessing, conversion); :func:`shard_provenance` reads it back. The job's log gives the
seconds of each phase (``phase <name>: <s> s``: start-up before classify, model, TensorFlow's
import, device, graph, restore, checkpoint check, first batch, the other frames, outputs) and
what the read-ahead thread did.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from oath.archive.conversion import Conversion
from oath.archive.feed import FrameRecord, ReadAhead, record_pixels
from oath.archive.feed import iter_frames as iter_frames  # where callers import it from
from oath.archive.frames import archive_of
from oath.archive.keogram import KEOGRAM_COLUMN
from oath.archive.themis import STATUS_OK
from oath.atomic import atomic_path
from oath.fit.model import Model, ModelError, load_model, model_layer, predict, score_column
from oath.fit.ridge import class_scores
from oath.imaging.png import encode_png
from oath.logs import log_phase, process_seconds
from oath.network._tf_compat import keep_freed_memory
from oath.network.device import DEVICE_ATTR, RunOptions
from oath.network.featurefile import BACKEND_ATTR, LOGITS, PRELOGITS, Features, write_features
from oath.network.features import Network, import_backend, open_network
from oath.network.inception_v4 import (
    PREPROCESSING,
    preprocess_pixels,
)

log = logging.getLogger(__name__)

#: Parquet schema metadata key of a shard's (and the gathered dataset's) provenance.
PROVENANCE_KEY = b"oath.classify"


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
        #: Seconds to the first batch's features in the last :meth:`run` (its frames,
        #: TensorFlow's graph optimisation and the first forward pass); None before.
        self.first_batch_seconds: float | None = None
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
        self.first_batch_seconds, started = None, time.perf_counter()
        self.session.run(self._iterator.initializer)
        rows, batches = [], []
        while True:
            try:
                row, values = self._run([self._rows, fetch])
            except tf.errors.OutOfRangeError:
                break
            if not rows:
                self.first_batch_seconds = time.perf_counter() - started
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


def _log_streaming(rows: ReadAhead, seconds: float, first_batch: float | None) -> None:
    """The streaming phases (first batch, the rest) and what the read-ahead thread did."""
    if first_batch is not None:
        log_phase(log, "first batch", first_batch)
        log_phase(log, "frames after the first batch", seconds - first_batch)
    else:
        log_phase(log, "frames", seconds)
    log.info(
        "read-ahead thread: %d frame(s), %.2f s CPU (%.2f ms a frame), all ready %.1f s after "
        "the thread started; the network waited %.2f s for frames",
        rows.frames,
        rows.cpu_seconds,
        1e3 * rows.cpu_seconds / max(rows.frames, 1),
        rows.ready_after or 0.0,
        rows.waited,
        extra={
            "read_ahead": {
                "frames": rows.frames,
                "cpu_s": rows.cpu_seconds,
                "ready_after_s": rows.ready_after,
                "waited_s": rows.waited,
            }
        },
    )


def _network_pass(
    files: Sequence[str | Path],
    conversion: Conversion,
    fitted: Model,
    checkpoint: str | Path,
    run: RunOptions,
    backend: str,
    layer: str,
    *,
    keep_images: bool,
) -> tuple[list[FrameRecord], dict[str, np.ndarray], dict[str, str]]:
    """Every frame of ``files`` through the network: records, features (``layer`` and the
    Logits) and what made them (checkpoint SHA-256, precision in use, device). Each start-up
    phase is logged; the frames are read ahead while the network is built."""
    clock = time.perf_counter()
    import_backend(backend)  # first: beside the read-ahead thread, it holds the GIL for seconds
    log_phase(log, f"{backend} import", time.perf_counter() - clock)
    keep_freed_memory()  # before the read-ahead's first batches (TensorFlow's import does too)
    with ReadAhead(files, conversion) as rows:  # reads while the network is built
        clock = time.perf_counter()
        with open_network(backend, StreamingExtractor, checkpoint, run) as (extractor, sha):
            steps = getattr(extractor, "startup", None) or {"network": time.perf_counter() - clock}
            for name, seconds in steps.items():
                log_phase(log, name, seconds)
            clock = time.perf_counter()
            check_model_weights(fitted, sha.result(), checkpoint)
            log_phase(log, "checkpoint check (its SHA-256)", time.perf_counter() - clock)
            extractor.keep_images = keep_images
            clock = time.perf_counter()
            records, layers = extractor.run(rows, layer)
            made = {
                "checkpoint_sha256": sha.result(),
                "precision": extractor.precision_in_use or run.precision,
                DEVICE_ATTR: extractor.device,
            }
            first = getattr(extractor, "first_batch_seconds", None)
        _log_streaming(rows, time.perf_counter() - clock, first)
    return records, layers, made


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
    before = process_seconds()
    if before is not None:
        log_phase(log, "before classify (interpreter, imports)", before)
    fitted = load_model(model)
    log_phase(log, "model", time.perf_counter() - started)
    run = RunOptions(batch_size, threads, precision, gpu_batch_size)
    layer = model_layer(fitted)
    records, layers, made = _network_pass(
        files, conversion, fitted, checkpoint, run, backend, layer, keep_images=save_images
    )
    clock = time.perf_counter()
    table = predictions_table(fitted, records, layers[layer], layer)
    attrs = {
        "weights": weights,
        "checkpoint": str(checkpoint),
        **made,
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
    log_phase(log, "outputs (table, extras, Parquet)", time.perf_counter() - clock)
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
