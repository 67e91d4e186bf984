"""Inception-v4 features of images as feature files: extraction per shard, and the merge.

Each forward pass gives two feature sets at once: ``Logits`` (1001, what the paper classified)
and ``PreLogitsFlatten`` (1536, the average pool before the classifier); both are fetched in
the same ``session.run`` and written side by side (:mod:`oath.network.featurefile`).

The network and its preprocessing are in :mod:`oath.network.inception_v4`, checkpoints in
:mod:`oath.network.checkpoint`. Decoding, preprocessing and the network run in one TensorFlow
graph: a
``tf.data`` pipeline decodes the next images while the network works on the current batch.

TensorFlow is imported on first use, so merging shards stays cheap.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Self, TypeVar

import numpy as np

from oath.network import _tf_compat, reuse
from oath.network.checkpoint import checkpoint_sha256, checkpoint_shapes, compare_checkpoint
from oath.network.device import (
    DEVICE_ATTR,
    RunOptions,
    batch_size_for,
    cpu_model,
    merged_devices,
    prepare_device,
)
from oath.network.featurefile import (
    ATTR_DEFAULTS,
    BACKEND_ATTR,
    BACKENDS,
    LAYERS,
    LOGITS,
    MAKING_ATTRS,
    PRELOGITS,
    RANDOM_WEIGHTS_ATTR,
    Features,
    read_features,
    write_features,
)
from oath.network.inception_v4 import (
    PREPROCESSING,
    ImportedNetwork,
    import_inception_v4,
    read_and_preprocess,
)

log = logging.getLogger(__name__)
NetworkT = TypeVar("NetworkT", bound="Network")


Progress = Callable[[int, int], None]


class ImageError(ValueError):
    """An image is missing or cannot be decoded; the message names the file."""


# --------------------------------------------------------------------------------------------
# The network's session, shared by every extractor (images from files, streamed frames)
# --------------------------------------------------------------------------------------------
def pipeline_options(tf: Any, threads: int) -> Any:
    """tf.data options: a private pool of ``threads``, deterministic order, no autotuner.

    Parallelism and buffer sizes are fixed by the callers; the autotuner's background thread
    only makes closing the session wait for it (1 to 7 s, measured).
    """
    options = tf.data.Options()
    options.threading.private_threadpool_size = threads
    options.deterministic = True
    options.autotune.enabled = False
    return options


def restore_network(
    tf: Any,
    graph: Any,
    network: ImportedNetwork,
    checkpoint: str | Path,
    threads: int,
    precision: str,
) -> Any:
    """A session on ``graph`` (``network`` imported in it) with the checkpoint's weights restored.

    Refuses a checkpoint that lacks or misshapes a network variable before restoring. One
    inter-op thread: the branches of a block gain nothing from running side by side on few
    cores. ``bfloat16`` turns on oneDNN's automatic mixed precision rewrite.
    """
    from tensorflow.core.protobuf import rewriter_config_pb2

    stored = checkpoint_shapes(checkpoint)  # fails fast on a missing/unreadable checkpoint
    compare_checkpoint(checkpoint, list(network.variables), stored)
    graph.finalize()
    config = tf.compat.v1.ConfigProto(
        intra_op_parallelism_threads=threads, inter_op_parallelism_threads=1
    )
    # On a GPU, take memory as needed rather than all of it: jobs can share a GPU node.
    config.gpu_options.allow_growth = True
    if precision == "bfloat16":
        config.graph_options.rewrite_options.auto_mixed_precision_onednn_bfloat16 = (
            rewriter_config_pb2.RewriterConfig.ON
        )
    session = tf.compat.v1.Session(graph=graph, config=config)
    try:
        session.run(network.restore_op, {network.filename_tensor: str(checkpoint)})
    except BaseException:
        session.close()
        raise
    return session


def run_learning_precision(tf: Any, session: Any, fetches: Any) -> tuple[Any, str]:
    """Run ``fetches`` once and tell the precision TensorFlow really computed in.

    TensorFlow skips the bfloat16 rewrite without a word on CPUs that lack bfloat16 support
    (AVX2-only machines, for one), so the graph it ran is read: "float32" is logged as a warning.
    """
    metadata = tf.compat.v1.RunMetadata()
    result = session.run(
        fetches,
        options=tf.compat.v1.RunOptions(output_partition_graphs=True),
        run_metadata=metadata,
    )
    bf16 = tf.bfloat16.as_datatype_enum
    rewritten = any(
        attr.type == bf16 or bf16 in attr.list.type
        for graph in metadata.partition_graphs
        for node in graph.node
        for attr in node.attr.values()
    )
    if not rewritten:
        log.warning(
            "precision bfloat16 was asked for, but TensorFlow computes in float32 on this "
            "CPU (%s): it has no bfloat16 support (AVX-512 BF16 or AMX). The features are "
            "float32 and say so; this mode is no faster here.",
            cpu_model(),
        )
    return result, "bfloat16" if rewritten else "float32"


# --------------------------------------------------------------------------------------------
# Extraction
# --------------------------------------------------------------------------------------------
class Network:
    """Inception-v4 restored in a session, fed batches by a ``tf.data`` pipeline.

    Subclasses build the pipeline (:meth:`_build_input`): image files, or frames from a Python
    generator. ``threads`` is TensorFlow's intra-op thread count (the convolutions) and the size
    of the pipeline's private pool, which decodes ahead of the network by two batches.
    ``precision="bfloat16"`` turns on oneDNN's automatic mixed precision graph rewrite: about
    twice as fast on CPUs with AVX-512 BF16 or AMX, features within ~5e-3 relative L2 of
    float32. Never mix precisions in one feature set (the shard merge refuses it).

    TensorFlow skips that rewrite without a word on CPUs that lack bfloat16 support (AVX2-only
    machines, for one). So the first batch reads the graph TensorFlow really ran, and
    :attr:`precision_in_use` says what the features were computed in.
    """

    def __init__(self, checkpoint: str | Path, **options: Any) -> None:
        """``options``: :class:`~oath.network.device.RunOptions` (batch sizes, threads,
        precision)."""
        run = RunOptions(**options)
        threads, precision = run.threads, run.precision
        tf, _ = _tf_compat.load()
        started = time.perf_counter()
        #: Where the network runs, in words ("GPU: ..." or "CPU: ..."); see
        #: :mod:`oath.network.device`.
        self.device = prepare_device(tf)
        #: Seconds of each start-up step after TensorFlow's import (:func:`import_backend`):
        #: the device, the graph (pipeline and network imported), the restore.
        self.startup = {"device": time.perf_counter() - started}
        self.checkpoint = Path(checkpoint)
        self.batch_size = batch_size_for(self.device, run.batch_size, run.gpu_batch_size)
        self.threads = threads
        self.precision = precision
        #: What the network computes in, known after the first batch: "float32" when bfloat16
        #: was asked for on a CPU where TensorFlow skips the rewrite.
        self.precision_in_use: str | None = "float32" if precision == "float32" else None
        self._tf = tf
        self.graph = tf.Graph()
        clock = time.perf_counter()
        with self.graph.as_default():
            network = import_inception_v4(self._build_input(tf))
        #: The feature sets' tensors, by name: fetched together, they cost one forward pass.
        self.layers = {LOGITS: network.layers[LOGITS], PRELOGITS: network.layers[PRELOGITS]}
        self.startup["graph"] = time.perf_counter() - clock
        clock = time.perf_counter()
        self.session = restore_network(tf, self.graph, network, checkpoint, threads, precision)
        self.startup["restore"] = time.perf_counter() - clock
        log.info(
            "Inception-v4 (%s) ready, %s restored, in %.1f s (%s, batch %d, %d threads, %s)",
            network.source,
            checkpoint,
            time.perf_counter() - started,
            self.device,
            self.batch_size,
            threads,
            precision,
        )

    def _build_input(self, tf: Any) -> Any:
        """Build the input pipeline in the graph; return the batch of preprocessed images."""
        raise NotImplementedError

    def _batched(self, dataset: Any, preprocess: Callable[..., Any]) -> Any:
        """``dataset`` preprocessed on the private pool, batched, two batches ahead: the next
        element of its (initialisable) iterator, kept as ``self._iterator``."""
        tf = self._tf
        dataset = (
            dataset.map(
                tf.autograph.experimental.do_not_convert(preprocess),
                num_parallel_calls=self.threads,
                deterministic=True,
            )
            .batch(self.batch_size)
            .prefetch(2)
            .with_options(pipeline_options(tf, self.threads))
        )
        self._iterator = tf.compat.v1.data.make_initializable_iterator(dataset)
        return self._iterator.get_next()

    def _run(self, fetches: Any) -> Any:
        """Run ``fetches`` for the next batch; the first time under bfloat16, also learn
        whether the graph TensorFlow ran computes in bfloat16 (:attr:`precision_in_use`)."""
        if self.precision_in_use is not None:
            return self.session.run(fetches)
        result, self.precision_in_use = run_learning_precision(self._tf, self.session, fetches)
        return result

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the session."""
        self.session.close()


class InceptionV4Extractor(Network):
    """Logits of image files (PNG/JPEG paths); reusable for several image lists."""

    def _build_input(self, tf: Any) -> Any:
        self._paths = tf.compat.v1.placeholder(tf.string, [None], name="image_paths")
        images = self._batched(tf.data.Dataset.from_tensor_slices(self._paths), read_and_preprocess)
        # Decodes one image on its own, to name the culprit when a batch fails.
        self._probe_path = tf.compat.v1.placeholder(tf.string, [], name="probe_path")
        self._probe = read_and_preprocess(self._probe_path)
        return images

    def extract(
        self, image_paths: Sequence[str | Path], progress: Progress | None = None
    ) -> np.ndarray:
        """``Logits`` (N x 1001 float32) of the images, rows in the given order.

        ``progress(done, total)`` is called before the first batch and after each batch.
        """
        return self.extract_layers(image_paths, progress)[LOGITS]

    def extract_layers(
        self, image_paths: Sequence[str | Path], progress: Progress | None = None
    ) -> dict[str, np.ndarray]:
        """Both feature sets of the images from one forward pass, rows in the given order:
        ``Logits`` (N x 1001 float32) and ``PreLogitsFlatten`` (N x 1536 float32).

        ``progress(done, total)`` is called before the first batch and after each batch.
        """
        tf = self._tf
        paths = [str(p) for p in image_paths]
        for path in paths:
            if not Path(path).is_file():
                raise ImageError(f"{path}: no such image file.")
        total = len(paths)
        if progress:
            progress(0, total)
        if not paths:
            return {name: np.zeros((0, _width(t)), np.float32) for name, t in self.layers.items()}
        started = time.perf_counter()
        self.session.run(self._iterator.initializer, {self._paths: paths})
        batches = []
        n_batches = math.ceil(total / self.batch_size)
        for index in range(n_batches):
            try:
                batches.append(self._run(self.layers))
            except tf.errors.OpError as exc:
                bad = self._find_bad_image(paths[index * self.batch_size :])
                if bad is None:
                    raise
                raise bad from exc
            done = min(total, (index + 1) * self.batch_size)
            if progress:
                progress(done, total)
            if (index + 1) % 16 == 0:
                log.info("%d/%d images", done, total)
        layers = {
            name: np.concatenate([b[name] for b in batches]).astype(np.float32, copy=False)
            for name in LAYERS
        }
        for name, values in layers.items():
            if not np.all(np.isfinite(values)):
                bad = [paths[i] for i in np.flatnonzero(~np.isfinite(values).all(axis=1))]
                raise ValueError(
                    f"non-finite {name} for {len(bad)} image(s), e.g. {bad[0]}: the checkpoint "
                    f"{self.checkpoint} holds non-finite or badly scaled weights."
                )
        elapsed = time.perf_counter() - started
        log.info(
            "%d images in %.1f s (%.3f s/image, %s)",
            total,
            elapsed,
            elapsed / total,
            self.precision,
        )
        return layers

    def _find_bad_image(self, candidates: Sequence[str]) -> ImageError | None:
        """The error for the first of ``candidates`` that cannot be decoded on its own, if any."""
        tf = self._tf
        for path in candidates:
            try:
                self.session.run(self._probe, {self._probe_path: path})
            except tf.errors.OpError as exc:
                return ImageError(
                    f"{path}: cannot read or decode as an image ({_op_error_reason(exc)}). "
                    "Replace it with a readable PNG or remove it from the data set."
                )
        return None


def _width(tensor: Any) -> int:
    return int(tensor.shape[-1])


def _op_error_reason(exc: Any) -> str:
    """The reason line(s) of a TensorFlow OpError, without the graph-tracing preamble."""
    preamble = ("Graph execution error", "Detected at node", "Node:")
    lines = [
        line
        for line in exc.message.splitlines()
        if line.strip() and not line[0].isspace() and not line.startswith(preamble)
    ]
    return "; ".join(lines) or exc.message.strip()


def extract_logits(
    image_paths: Sequence[str | Path],
    checkpoint: str | Path,
    *,
    batch_size: int = 16,
    threads: int = 2,
    precision: str = "float32",
    progress: Progress | None = None,
) -> np.ndarray:
    """Inception-v4 ``Logits`` (N x 1001 float32) of the images, rows in the given order.

    See :class:`InceptionV4Extractor` for the parameters; ``progress(done, total)`` is optional.
    """
    with InceptionV4Extractor(
        checkpoint, batch_size=batch_size, threads=threads, precision=precision
    ) as extractor:
        return extractor.extract(image_paths, progress=progress)


@contextmanager
def open_hashing_checkpoint(
    network: type[NetworkT], checkpoint: str | Path, **options: Any
) -> Iterator[tuple[NetworkT, Future[str]]]:
    """``network(checkpoint, **options)``, opened, with the checkpoint's SHA-256 to come: it is
    hashed on a second thread while TensorFlow is imported and the graph is built (hashlib
    releases the GIL, so this is nearly free on a machine with 2+ cores)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        sha256 = pool.submit(checkpoint_sha256, checkpoint)
        with network(checkpoint, **options) as opened:
            yield opened, sha256


def import_backend(backend: str) -> None:
    """Import ``backend``'s framework (TensorFlow with its settings, or PyTorch) now.

    The import is seconds of Python that hold the GIL: a thread started beside it (classify's
    read-ahead) slows it and gets little done, so classify imports first. A PyTorch that is not
    installed is left for :func:`open_network` to explain.
    """
    if backend != "torch":
        _tf_compat.load()
        return
    try:
        import torch  # noqa: F401
    except ImportError:
        pass


@contextmanager
def open_network(
    backend: str, network: type[NetworkT], checkpoint: str | Path, run: RunOptions
) -> Iterator[tuple[Any, Future[str]]]:
    """The network of ``backend`` opened on ``checkpoint``, with the checkpoint's SHA-256 to
    come: ``network(checkpoint, **options)`` on TensorFlow (see
    :func:`open_hashing_checkpoint`), :class:`oath.network.torch_extract.TorchNetwork` on PyTorch
    (it offers the TensorFlow extractors' ``extract_layers`` and ``run``)."""
    options = dataclasses.asdict(run)
    if backend not in BACKENDS:
        raise ValueError(f"network backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "tensorflow":
        with open_hashing_checkpoint(network, checkpoint, **options) as opened:
            yield opened
        return
    try:
        from oath.network.torch_extract import TorchNetwork
    except ImportError as exc:
        raise ImportError(
            f"network backend torch needs PyTorch ({exc}): install it with "
            "`.venv/bin/python -m pip install -e '.[torch]'` (docs/torch_backend.md)."
        ) from exc
    with TorchNetwork(checkpoint, **options) as opened:
        sha256: Future[str] = Future()
        sha256.set_result(str(opened.checkpoint_sha256))
        yield opened, sha256


def framework_attrs(backend: str) -> dict[str, str]:
    """The feature-file attributes naming the backend and its framework's version."""
    if backend == "torch":
        import torch

        return {BACKEND_ATTR: backend, "torch_version": torch.__version__}
    tf, _ = _tf_compat.load()
    return {BACKEND_ATTR: backend, "tensorflow_version": tf.__version__}


def extract_shard(
    image_paths: Sequence[str | Path],
    checkpoint: str | Path,
    out_path: str | Path,
    *,
    weights: str,
    batch_size: int = 16,
    threads: int = 2,
    precision: str = "float32",
    progress: Progress | None = None,
    random_weights: bool = False,
    gpu_batch_size: int | None = None,
    backend: str = "tensorflow",
) -> None:
    """Extract the images' ``Logits`` and ``PreLogitsFlatten`` (one forward pass) and write
    them as a feature file (rows sorted by name).

    ``weights`` says in words which weights the checkpoint holds; it is stored with the
    checkpoint path and SHA-256, whether the weights are random (``random_weights``: reports
    decide their warning from it), the precision, the device, the preprocessing and the
    backend (``tensorflow`` or ``torch``, :func:`open_network`) and its version.
    ``gpu_batch_size`` replaces ``batch_size`` where a GPU runs it.
    """
    names = [Path(p).name for p in image_paths]
    duplicates = sorted(name for name, count in Counter(names).items() if count > 1)
    if duplicates:
        raise ValueError(f"{out_path}: duplicate image file names in one shard: {duplicates}")
    run = RunOptions(batch_size, threads, precision, gpu_batch_size)
    digests = reuse.image_digests(image_paths)
    previous = reuse.load_rows(out_path)
    with open_network(backend, InceptionV4Extractor, checkpoint, run) as (extractor, sha):
        attrs = {
            "weights": weights,
            "checkpoint": str(checkpoint),
            "checkpoint_sha256": sha.result(),
            RANDOM_WEIGHTS_ATTR: "true" if random_weights else "false",
            DEVICE_ATTR: extractor.device,
            "preprocessing": PREPROCESSING,
            **framework_attrs(backend),
        }
        settings = reuse.settings_of(attrs, extractor.batch_size, precision)
        kept = reuse.plan_batches(previous, names, digests, settings, extractor.batch_size)
        layers = _extract_keeping(extractor, image_paths, kept, previous, progress)
        # An empty shard runs nothing: it keeps the precision asked for (the merge does not
        # compare the provenance of shards without rows).
        in_use = extractor.precision_in_use or (previous.precision_in_use if kept else precision)
    attrs["precision"] = in_use
    features = Features(names, layers[LOGITS], attrs, prelogits=layers[PRELOGITS])
    write_features(out_path, features)
    if names:
        reuse.save_rows(out_path, names, digests, layers, settings, in_use)
    log.info("wrote %s (%d images, %s)", out_path, len(names), in_use)


def _extract_keeping(
    extractor: Any,
    image_paths: Sequence[str | Path],
    kept: Sequence[int],
    previous: reuse.PreviousRows | None,
    progress: Progress | None,
) -> dict[str, np.ndarray]:
    """Both layers of the images: the ``kept`` batches from ``previous``, the others through
    the network (in one run: each recomputed batch keeps its composition, see
    :mod:`oath.network.reuse`)."""
    size = extractor.batch_size
    batch_of = np.arange(len(image_paths)) // size
    keep = np.isin(batch_of, kept)
    todo = [p for p, k in zip(image_paths, keep, strict=True) if not k]
    computed = extractor.extract_layers(todo, progress=progress)
    if previous is None or not keep.any():
        return computed
    if extractor.precision_in_use not in (None, previous.precision_in_use):
        log.info(
            "previous rows in %s, now %s: none kept",
            previous.precision_in_use,
            extractor.precision_in_use,
        )
        return extractor.extract_layers(image_paths, progress=progress)
    log.info("kept %d of %d images' rows from the previous extraction", keep.sum(), keep.size)
    layers = {}
    for name in LAYERS:
        rows = np.empty((keep.size, computed[name].shape[1]), np.float32)
        rows[keep] = previous.layers[name][: keep.size][keep]
        rows[~keep] = computed[name]
        layers[name] = rows
    return layers


# --------------------------------------------------------------------------------------------
# Merging shards
# --------------------------------------------------------------------------------------------
def merge_feature_shards(shard_paths: Sequence[str | Path], out_path: str | Path) -> None:
    """Concatenate feature shards into one file sorted by file name.

    The result does not depend on how many shards there are or their order. Refuses file names
    that occur more than once and shards made with different weights, checkpoint, precision or
    network backend (TensorFlow or PyTorch: they agree within ~1e-6, but a feature set has one
    maker);
    errors name the shards. Attributes shared by all shards are kept; ``device`` lists every
    device that made them (float32 on a CPU and on a GPU agree within tolerance, see
    :mod:`oath.network.device`; precisions never mix). Shards without rows (new
    images that all failed to read) add nothing, so their provenance is not compared.
    ``PreLogitsFlatten`` is merged when every shard has it; otherwise the merged file holds
    Logits only (a warning names a shard without it).
    """
    if not shard_paths:
        raise ValueError(f"{out_path}: no feature shards to merge")
    shards = [(Path(p), read_features(p)) for p in shard_paths]
    with_rows = [(path, shard) for path, shard in shards if shard.filenames] or shards

    for key in MAKING_ATTRS:
        seen: dict[str, list[str]] = {}
        for path, shard in with_rows:
            value = shard.attrs.get(key, ATTR_DEFAULTS.get(key, "<missing>"))
            seen.setdefault(value, []).append(str(path))
        if len(seen) > 1:
            detail = "; ".join(f"{value!r} in {', '.join(paths)}" for value, paths in seen.items())
            raise ValueError(
                f"{out_path}: feature shards disagree on '{key}': {detail}. Re-extract them "
                "with one checkpoint, precision and network backend (bfloat16 takes effect "
                "only on CPUs with AVX-512 BF16 or AMX: on a mixed cluster, use float32)."
            )

    owner: dict[str, Path] = {}
    clashes = []
    for path, shard in shards:
        for name in shard.filenames:
            if name in owner:
                clashes.append(f"{name} (in {owner[name]} and {path})")
            owner.setdefault(name, path)
    if clashes:
        more = f" and {len(clashes) - 5} more" if len(clashes) > 5 else ""
        raise ValueError(
            f"{out_path}: image file name(s) found more than once: {', '.join(clashes[:5])}{more}. "
            "Each image must be in exactly one shard."
        )

    widths = {shard.logits.shape[1] for _, shard in shards}
    if len(widths) > 1:
        raise ValueError(f"{out_path}: shards have different feature widths {sorted(widths)}")

    first = with_rows[0][1].attrs
    common = {
        key: value
        for key, value in sorted(first.items())
        if all(shard.attrs.get(key) == value for _, shard in with_rows)
    }
    for key, default in ATTR_DEFAULTS.items():  # the shards agree on it, recorded or not
        common[key] = first.get(key, default)
    devices = [shard.attrs[DEVICE_ATTR] for _, shard in with_rows if DEVICE_ATTR in shard.attrs]
    if devices:
        common[DEVICE_ATTR] = merged_devices(devices)
    merged = Features(
        filenames=[name for _, shard in shards for name in shard.filenames],
        logits=np.concatenate([shard.logits for _, shard in shards]),
        attrs=common,
        prelogits=_merged_prelogits(shards),
    )
    write_features(out_path, merged)
    log.info("merged %d shards into %s (%d images)", len(shards), out_path, len(owner))


def _merged_prelogits(shards: Sequence[tuple[Path, Features]]) -> np.ndarray | None:
    """The shards' ``PreLogitsFlatten`` stacked, or None when a shard lacks it (logged)."""
    lacking = [str(path) for path, shard in shards if shard.prelogits is None]
    if lacking:
        if len(lacking) < len(shards):
            log.warning(
                "%d shard(s) hold no %s (extracted before it was written), e.g. %s: the merged "
                "file holds Logits only; delete those shards to extract both feature sets",
                len(lacking),
                PRELOGITS,
                lacking[0],
            )
        return None
    widths = {shard.prelogits.shape[1] for _, shard in shards if shard.prelogits is not None}
    if len(widths) > 1:
        raise ValueError(f"shards have different {PRELOGITS} widths {sorted(widths)}")
    return np.concatenate([shard.prelogits for _, shard in shards if shard.prelogits is not None])
