"""Inception-v4 ``Logits`` of images, as the TF-slim reference computes them, checkpoint-compatible.

The network is TF-slim's Inception-v4 (Szegedy et al. 2016, arXiv:1602.07261) in inference mode:
scope ``InceptionV4``, 1001 classes, the auxiliary head built (its variables are part of the
published ``inception_v4_2016_09_09`` checkpoint) but never run. Batch norm uses the moving
statistics (no ``gamma``: ``scale=False``, epsilon 0.001), dropout is off, and the feature is
the pre-softmax ``Logits`` end point (N x 1001), as in Clausen & Nickisch (2018).

Preprocessing is the reference evaluation preprocessing (see :data:`PREPROCESSING`). Decoding,
preprocessing and the network run in one TensorFlow graph: a ``tf.data`` pipeline decodes the
next images while the network works on the current batch.

TensorFlow is imported on first use, so merging shards or hashing a checkpoint stays cheap.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import math
import os
import time
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from oath import _tf_compat
from oath.featurefile import Features, read_features, write_features

log = logging.getLogger(__name__)

NUM_CLASSES = 1001
IMAGE_SIZE = 299
CENTRAL_FRACTION = 0.875
BATCH_NORM_EPSILON = 0.001
BATCH_NORM_DECAY = 0.9997  # irrelevant in inference, kept equal to the reference arg scope
PRECISIONS = ("float32", "bfloat16")
PREPROCESSING = (
    "decode to 3 channels, convert to float in [0, 1], central crop 0.875, bilinear resize to "
    "299x299 (align_corners=False), then (x - 0.5) * 2 (TF-slim Inception evaluation)"
)
#: Attributes that say how a feature file was made; shards must agree on them to be merged.
PROVENANCE_ATTRS = ("weights", "checkpoint_sha256", "precision")
#: Graph collection holding the network's variables (see inception_v4_logits).
VARIABLES_COLLECTION = "oath_inception_v4_variables"

_CHECKPOINT_FIX = (
    "Use the published inception_v4_2016_09_09 checkpoint (inception_v4.ckpt from "
    "inception_v4_2016_09_09.tar.gz) or write demo weights with "
    "oath.features.write_random_checkpoint(); delete the file(s) so the workflow rebuilds them."
)

Progress = Callable[[int, int], None]


class CheckpointError(ValueError):
    """A checkpoint is missing, unreadable, or lacks a variable the network needs."""


class ImageError(ValueError):
    """An image is missing or cannot be decoded; the message names the file."""


# --------------------------------------------------------------------------------------------
# The network
# --------------------------------------------------------------------------------------------
# A branch is a list of layers applied in turn. A layer is (scope, depth, stride, padding):
# the scope's prefix says what it is (Conv2d / MaxPool / AvgPool) and its suffix the kernel
# ("_1x7" -> 1 x 7); pools have depth None. A tuple of layers is a fork: each is applied to the
# same input and the results are concatenated along channels (the Inception-C 1x3/3x1 pairs).
Layer = tuple[str, int | None, int, str]
Branch = list[Layer | tuple[Layer, ...]]


def _c(scope: str, depth: int, stride: int = 1, padding: str = "SAME") -> Layer:
    return (scope, depth, stride, padding)


def _pool(scope: str, stride: int = 1, padding: str = "SAME") -> Layer:
    return (scope, None, stride, padding)


_REDUCE = {"stride": 2, "padding": "VALID"}

_MIXED_3A: list[Branch] = [
    [_pool("MaxPool_0a_3x3", **_REDUCE)],
    [_c("Conv2d_0a_3x3", 96, **_REDUCE)],
]
_MIXED_4A: list[Branch] = [
    [_c("Conv2d_0a_1x1", 64), _c("Conv2d_1a_3x3", 96, padding="VALID")],
    [
        _c("Conv2d_0a_1x1", 64),
        _c("Conv2d_0b_1x7", 64),
        _c("Conv2d_0c_7x1", 64),
        _c("Conv2d_1a_3x3", 96, padding="VALID"),
    ],
]
_MIXED_5A: list[Branch] = [
    [_c("Conv2d_1a_3x3", 192, **_REDUCE)],
    [_pool("MaxPool_1a_3x3", **_REDUCE)],
]
_INCEPTION_A: list[Branch] = [
    [_c("Conv2d_0a_1x1", 96)],
    [_c("Conv2d_0a_1x1", 64), _c("Conv2d_0b_3x3", 96)],
    [_c("Conv2d_0a_1x1", 64), _c("Conv2d_0b_3x3", 96), _c("Conv2d_0c_3x3", 96)],
    [_pool("AvgPool_0a_3x3"), _c("Conv2d_0b_1x1", 96)],
]
_REDUCTION_A: list[Branch] = [
    [_c("Conv2d_1a_3x3", 384, **_REDUCE)],
    [_c("Conv2d_0a_1x1", 192), _c("Conv2d_0b_3x3", 224), _c("Conv2d_1a_3x3", 256, **_REDUCE)],
    [_pool("MaxPool_1a_3x3", **_REDUCE)],
]
_INCEPTION_B: list[Branch] = [
    [_c("Conv2d_0a_1x1", 384)],
    [_c("Conv2d_0a_1x1", 192), _c("Conv2d_0b_1x7", 224), _c("Conv2d_0c_7x1", 256)],
    [
        _c("Conv2d_0a_1x1", 192),
        _c("Conv2d_0b_7x1", 192),
        _c("Conv2d_0c_1x7", 224),
        _c("Conv2d_0d_7x1", 224),
        _c("Conv2d_0e_1x7", 256),
    ],
    [_pool("AvgPool_0a_3x3"), _c("Conv2d_0b_1x1", 128)],
]
_REDUCTION_B: list[Branch] = [
    [_c("Conv2d_0a_1x1", 192), _c("Conv2d_1a_3x3", 192, **_REDUCE)],
    [
        _c("Conv2d_0a_1x1", 256),
        _c("Conv2d_0b_1x7", 256),
        _c("Conv2d_0c_7x1", 320),
        _c("Conv2d_1a_3x3", 320, **_REDUCE),
    ],
    [_pool("MaxPool_1a_3x3", **_REDUCE)],
]
_INCEPTION_C: list[Branch] = [
    [_c("Conv2d_0a_1x1", 256)],
    [_c("Conv2d_0a_1x1", 384), (_c("Conv2d_0b_1x3", 256), _c("Conv2d_0c_3x1", 256))],
    [
        _c("Conv2d_0a_1x1", 384),
        _c("Conv2d_0b_3x1", 448),
        _c("Conv2d_0c_1x3", 512),
        (_c("Conv2d_0d_1x3", 256), _c("Conv2d_0e_3x1", 256)),
    ],
    [_pool("AvgPool_0a_3x3"), _c("Conv2d_0b_1x1", 256)],
]

#: The mixed blocks after the three stem convolutions, in order.
_BLOCKS: list[tuple[str, list[Branch]]] = [
    ("Mixed_3a", _MIXED_3A),
    ("Mixed_4a", _MIXED_4A),
    ("Mixed_5a", _MIXED_5A),
    *[(f"Mixed_5{c}", _INCEPTION_A) for c in "bcde"],
    ("Mixed_6a", _REDUCTION_A),
    *[(f"Mixed_6{c}", _INCEPTION_B) for c in "bcdefgh"],
    ("Mixed_7a", _REDUCTION_B),
    *[(f"Mixed_7{c}", _INCEPTION_C) for c in "bcd"],
]


def _layer(net: Any, layer: Layer) -> Any:
    """Apply one convolution (with batch norm and ReLU from the arg scope) or pooling layer."""
    _, slim = _tf_compat.load()
    scope, depth, stride, padding = layer
    kernel = [int(k) for k in scope.rsplit("_", 1)[-1].split("x")]
    if scope.startswith("Conv2d"):
        return slim.conv2d(net, depth, kernel, stride=stride, padding=padding, scope=scope)
    pool = slim.max_pool2d if scope.startswith("MaxPool") else slim.avg_pool2d
    return pool(net, kernel, stride=stride, padding=padding, scope=scope)


def _mixed(net: Any, scope: str, branches: list[Branch]) -> Any:
    """One Inception block: parallel branches ``Branch_i`` concatenated along channels."""
    tf, _ = _tf_compat.load()
    outputs = []
    with tf.compat.v1.variable_scope(scope):
        for index, branch in enumerate(branches):
            with tf.compat.v1.variable_scope(f"Branch_{index}"):
                out = net
                for item in branch:
                    if isinstance(item[0], tuple):  # a fork
                        out = tf.concat([_layer(out, layer) for layer in item], axis=3)
                    else:
                        out = _layer(out, item)
                outputs.append(out)
        return tf.concat(outputs, axis=3)


def inception_v4_logits(images: Any, *, inference_only: bool = True) -> tuple[Any, dict[str, Any]]:
    """Build TF-slim Inception-v4 in inference mode on ``images`` (N x 299 x 299 x 3 in [-1, 1]).

    Must be called inside a graph (``tf.compat.v1``). Returns the ``Logits`` tensor
    (N x 1001, pre-softmax) and the end points by name. Variable names and shapes equal those
    of the published checkpoint, in the same creation order; all of them are in the graph
    collection :data:`VARIABLES_COLLECTION`.

    ``inference_only`` (default) builds in about half the time: the variables are neither
    trainable nor in the global collections (TF's legacy layers scan those collections once per
    variable, quadratic in the network size) and get cheap zero initializers, since every value
    is restored from the checkpoint. ``False`` builds them as stock TF-slim does; the outputs
    are the same.
    """
    tf, slim = _tf_compat.load()
    end_points: dict[str, Any] = {}
    batch_norm = {
        "decay": BATCH_NORM_DECAY,
        "epsilon": BATCH_NORM_EPSILON,
        "center": True,
        "scale": False,  # the checkpoint has beta but no gamma
        "is_training": False,  # moving mean and variance
    }

    def collect(getter: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if inference_only:
            kwargs["collections"] = [VARIABLES_COLLECTION]
            kwargs["initializer"] = tf.compat.v1.zeros_initializer()
        else:
            kwargs["collections"] = [*(kwargs.get("collections") or []), VARIABLES_COLLECTION]
        return getter(*args, **kwargs)

    with (
        warnings.catch_warnings(),
        tf.compat.v1.variable_scope("InceptionV4", custom_getter=collect),
        slim.arg_scope(
            [slim.conv2d],
            activation_fn=tf.nn.relu,
            normalizer_fn=slim.batch_norm,
            normalizer_params=batch_norm,
        ),
        slim.arg_scope([slim.conv2d, slim.max_pool2d, slim.avg_pool2d], padding="SAME"),
        slim.arg_scope(
            [slim.conv2d, slim.fully_connected, slim.batch_norm], trainable=not inference_only
        ),
    ):
        # tf-slim calls TF's legacy layers the deprecated way; nothing a user can act on.
        warnings.filterwarnings("ignore", r"`(layer\.apply|tf\.layers\.\w+)` is deprecated")
        net = _layer(images, _c("Conv2d_1a_3x3", 32, **_REDUCE))  # 149 x 149 x 32
        net = _layer(net, _c("Conv2d_2a_3x3", 32, padding="VALID"))  # 147 x 147 x 32
        net = _layer(net, _c("Conv2d_2b_3x3", 64))  # 147 x 147 x 64
        for scope, branches in _BLOCKS:
            net = _mixed(net, scope, branches)
            end_points[scope] = net
        # Mixed_6h: 17 x 17 x 1024; Mixed_7d: 8 x 8 x 1536

        with tf.compat.v1.variable_scope("AuxLogits"):
            # Built for the checkpoint's sake only: nothing we fetch depends on it, so the
            # session never computes it.
            aux = slim.avg_pool2d(
                end_points["Mixed_6h"], [5, 5], stride=3, padding="VALID", scope="AvgPool_1a_5x5"
            )
            aux = slim.conv2d(aux, 128, [1, 1], scope="Conv2d_1b_1x1")
            aux = slim.conv2d(aux, 768, aux.shape[1:3], padding="VALID", scope="Conv2d_2a")
            aux = slim.fully_connected(
                slim.flatten(aux), NUM_CLASSES, activation_fn=None, scope="Aux_logits"
            )
            end_points["AuxLogits"] = aux

        with tf.compat.v1.variable_scope("Logits"):
            net = slim.avg_pool2d(net, net.shape[1:3], padding="VALID", scope="AvgPool_1a")
            end_points["global_pool"] = net
            net = slim.dropout(net, 0.8, is_training=False, scope="Dropout_1b")
            net = slim.flatten(net, scope="PreLogitsFlatten")
            end_points["PreLogitsFlatten"] = net
            logits = slim.fully_connected(net, NUM_CLASSES, activation_fn=None, scope="Logits")
            end_points["Logits"] = logits
    return logits, end_points


@functools.cache
def model_variables() -> tuple[tuple[str, tuple[int, ...]], ...]:
    """Names and shapes of the network's variables, in creation order (built once, cached)."""
    tf, _ = _tf_compat.load()
    with tf.Graph().as_default():
        images = tf.compat.v1.placeholder(tf.float32, [None, IMAGE_SIZE, IMAGE_SIZE, 3])
        inception_v4_logits(images)
        return tuple(
            (v.op.name, tuple(int(d) for d in v.shape))
            for v in tf.compat.v1.get_collection(VARIABLES_COLLECTION)
        )


# --------------------------------------------------------------------------------------------
# Preprocessing
# --------------------------------------------------------------------------------------------
def preprocess_image(encoded: Any) -> Any:
    """Encoded PNG bytes (scalar string tensor) to one 299 x 299 x 3 float32 network input.

    Exactly the reference evaluation preprocessing: see :data:`PREPROCESSING`.
    """
    tf, _ = _tf_compat.load()
    image = tf.io.decode_png(encoded, channels=3)
    image = tf.image.convert_image_dtype(image, tf.float32)  # uint8 / 255 -> [0, 1]
    image = tf.image.central_crop(image, central_fraction=CENTRAL_FRACTION)
    # The reference's tf.compat.v1.image.resize_bilinear: align_corners=False and no half-pixel
    # centres (tf.image.resize would use half-pixel centres), called directly as the raw op.
    image = tf.raw_ops.ResizeBilinear(
        images=image[tf.newaxis],
        size=[IMAGE_SIZE, IMAGE_SIZE],
        align_corners=False,
        half_pixel_centers=False,
    )[0]
    image.set_shape([IMAGE_SIZE, IMAGE_SIZE, 3])
    return (image - 0.5) * 2.0


def _read_and_preprocess(path: Any) -> Any:
    """Network input for one image path (scalar string tensor)."""
    tf, _ = _tf_compat.load()
    return preprocess_image(tf.io.read_file(path))


# --------------------------------------------------------------------------------------------
# Checkpoints
# --------------------------------------------------------------------------------------------
def _checkpoint_files(checkpoint: str | Path) -> list[Path]:
    """The file(s) of a checkpoint: ``prefix.index`` + ``prefix.data-*``, or one V1 file."""
    checkpoint = Path(checkpoint)
    index = checkpoint.with_name(checkpoint.name + ".index")
    if index.is_file():
        data = sorted(
            p
            for p in checkpoint.parent.iterdir()
            if p.name.startswith(checkpoint.name + ".data-") and p.is_file()
        )
        if not data:
            raise CheckpointError(
                f"{checkpoint}: {index.name} exists but no {checkpoint.name}.data-* file; the "
                f"checkpoint is incomplete. {_CHECKPOINT_FIX}"
            )
        return sorted([index, *data], key=lambda p: p.name)
    if checkpoint.is_file():
        return [checkpoint]
    raise CheckpointError(
        f"{checkpoint}: no checkpoint there (neither {index.name} nor a single checkpoint file). "
        f"{_CHECKPOINT_FIX}"
    )


def checkpoint_sha256(checkpoint: str | Path) -> str:
    """SHA-256 over the checkpoint's bytes: its single file, or index and data files by name."""
    digest = hashlib.sha256()
    for path in _checkpoint_files(checkpoint):
        with path.open("rb") as fh:
            while chunk := fh.read(1 << 20):
                digest.update(chunk)
    return digest.hexdigest()


def _checkpoint_shapes(checkpoint: str | Path) -> dict[str, tuple[int, ...]]:
    """Variable name -> shape as stored in the checkpoint (V1 file or V2 prefix)."""
    tf, _ = _tf_compat.load()
    _checkpoint_files(checkpoint)  # a clear error for a missing checkpoint
    try:
        reader = tf.train.load_checkpoint(str(checkpoint))
    except (tf.errors.OpError, ValueError) as exc:
        raise CheckpointError(
            f"{checkpoint}: not a readable TensorFlow checkpoint ({exc}). {_CHECKPOINT_FIX}"
        ) from exc
    return {
        name: tuple(int(d) for d in shape)
        for name, shape in reader.get_variable_to_shape_map().items()
    }


def _compare_checkpoint(
    checkpoint: str | Path,
    expected: Sequence[tuple[str, tuple[int, ...]]],
    stored: dict[str, tuple[int, ...]] | None = None,
) -> None:
    """Raise CheckpointError naming the missing or misshapen variable(s), if any."""
    if stored is None:
        stored = _checkpoint_shapes(checkpoint)
    missing = [name for name, _ in expected if name not in stored]
    misshapen = [
        f"{name} has shape {list(stored[name])}, expected {list(shape)}"
        for name, shape in expected
        if name in stored and stored[name] != shape
    ]
    problems = []
    if missing:
        more = f" (and {len(missing) - 5} more)" if len(missing) > 5 else ""
        problems.append(f"missing variable(s) {', '.join(missing[:5])}{more}")
    if misshapen:
        more = f" (and {len(misshapen) - 5} more)" if len(misshapen) > 5 else ""
        problems.append(f"misshapen variable(s): {'; '.join(misshapen[:5])}{more}")
    if problems:
        raise CheckpointError(
            f"{checkpoint}: not an Inception-v4 (TF-slim, 1001 classes) checkpoint: "
            f"{'; '.join(problems)}. {_CHECKPOINT_FIX}"
        )


def check_checkpoint(checkpoint: str | Path) -> None:
    """Check that a checkpoint holds every Inception-v4 variable with the right shape.

    ``checkpoint`` is a V2 prefix (``prefix.index`` + ``prefix.data-*``) or a V1 single file
    such as the published ``inception_v4.ckpt``. Extra variables (e.g. ``global_step``) are
    allowed. Raises :class:`CheckpointError` naming the checkpoint, the offending variable(s)
    and the fix; nothing is restored.
    """
    _compare_checkpoint(checkpoint, model_variables())
    log.info("%s: all %d Inception-v4 variables present", checkpoint, len(model_variables()))


def _random_values(name: str, shape: tuple[int, ...], rng: np.random.RandomState) -> np.ndarray:
    """Pseudo-random values for one variable, scaled so activations stay finite (He init)."""
    leaf = name.rsplit("/", 1)[-1]
    if leaf == "weights":
        return rng.normal(0.0, np.sqrt(2.0 / int(np.prod(shape[:-1]))), shape)
    if leaf == "biases":
        return rng.normal(0.0, 0.01, shape)
    if leaf in ("beta", "moving_mean"):
        return rng.normal(0.0, 0.1, shape)
    if leaf == "moving_variance":
        return rng.uniform(0.5, 1.5, shape)
    raise ValueError(f"no random-value rule for variable {name}")


def write_random_checkpoint(prefix: str | Path, seed: int = 1804) -> None:
    """Write a V2 checkpoint of Inception-v4 with deterministic pseudo-random weights.

    Same names, shapes and creation order as the published checkpoint; values drawn in that
    order from ``numpy.random.RandomState(seed)`` (the scheme of the parity fixture's
    ``make_checkpoint.py``, so seed 1804 gives the fixture's values). For the offline demo: these
    are not the published weights. Files are written under a temporary prefix and renamed, the
    index last, so an interrupted run never leaves a checkpoint that looks complete.
    """
    tf, _ = _tf_compat.load()
    prefix = Path(prefix)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    rng = np.random.RandomState(seed)
    values = {
        name: _random_values(name, shape, rng).astype(np.float32)
        for name, shape in model_variables()
    }
    names = sorted(values)  # the order tf.train.Saver writes them in
    tmp = prefix.with_name(f".{prefix.name}.tmp-{os.getpid()}")

    def temporary_files() -> list[Path]:
        return [p for p in prefix.parent.iterdir() if p.name.startswith(tmp.name + ".")]

    try:
        with tf.Graph().as_default():
            feeds = {n: tf.compat.v1.placeholder(tf.float32, values[n].shape) for n in names}
            save = tf.raw_ops.SaveV2(
                prefix=str(tmp),
                tensor_names=names,
                shape_and_slices=[""] * len(names),
                tensors=[feeds[n] for n in names],
            )
            with tf.compat.v1.Session() as sess:
                sess.run(save, {feeds[n]: values[n] for n in names})
        # Retire any old checkpoint at this prefix (index first), then move the new one in with
        # its index last: a reader sees either no checkpoint or the complete new one.
        prefix.with_name(prefix.name + ".index").unlink(missing_ok=True)
        for old in prefix.parent.iterdir():
            if old.name.startswith(prefix.name + ".data-"):
                old.unlink()
        for path in sorted(temporary_files(), key=lambda p: p.name.endswith(".index")):
            os.replace(path, prefix.with_name(prefix.name + path.name[len(tmp.name) :]))
    finally:
        for path in temporary_files():
            path.unlink(missing_ok=True)
    log.info(
        "wrote random Inception-v4 checkpoint %s (seed %d, %d variables) in %.1f s",
        prefix,
        seed,
        len(names),
        time.perf_counter() - started,
    )


# --------------------------------------------------------------------------------------------
# Extraction
# --------------------------------------------------------------------------------------------
class InceptionV4Extractor:
    """A restored Inception-v4 graph with its input pipeline; reusable for several image lists.

    ``threads`` is TensorFlow's intra-op thread count (the convolutions; one inter-op thread,
    since the branches of a block gain nothing from running side by side on few cores); image
    decoding runs on a private ``tf.data`` pool of the same size, ahead of the network by two
    batches. ``precision="bfloat16"`` turns on oneDNN's automatic mixed precision graph rewrite:
    about twice as fast on CPUs with AVX-512 BF16 or AMX, features within ~5e-3 relative L2 of
    float32. Never mix precisions in one feature set (the shard merge refuses it).

    TensorFlow skips that rewrite without a word on CPUs that lack bfloat16 support (AVX2-only
    machines, for one). So the first batch of :meth:`extract` reads the graph TensorFlow really
    ran, and :attr:`precision_in_use` says what the features were computed in.
    """

    def __init__(
        self,
        checkpoint: str | Path,
        *,
        batch_size: int = 16,
        threads: int = 2,
        precision: str = "float32",
    ) -> None:
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        if batch_size < 1 or threads < 1:
            raise ValueError(f"batch_size and threads must be >= 1, got {batch_size}, {threads}")
        tf, _ = _tf_compat.load()
        from tensorflow.core.protobuf import rewriter_config_pb2

        started = time.perf_counter()
        self.checkpoint = Path(checkpoint)
        self.batch_size = batch_size
        self.precision = precision
        #: What the network computes in, known after the first batch: "float32" when bfloat16
        #: was asked for on a CPU where TensorFlow skips the rewrite.
        self.precision_in_use: str | None = "float32" if precision == "float32" else None
        self._tf = tf
        stored = _checkpoint_shapes(checkpoint)  # fail fast on a missing/unreadable checkpoint
        self.graph = tf.Graph()
        with self.graph.as_default():
            self._paths = tf.compat.v1.placeholder(tf.string, [None], name="image_paths")
            dataset = (
                tf.data.Dataset.from_tensor_slices(self._paths)
                .map(
                    tf.autograph.experimental.do_not_convert(_read_and_preprocess),
                    num_parallel_calls=threads,
                    deterministic=True,
                )
                .batch(batch_size)
                .prefetch(2)
            )
            options = tf.data.Options()
            options.threading.private_threadpool_size = threads
            options.deterministic = True
            # Parallelism and buffer sizes are fixed above. The autotuner's background thread
            # only makes closing the session wait for it (1 to 7 s, measured).
            options.autotune.enabled = False
            dataset = dataset.with_options(options)
            self._iterator = tf.compat.v1.data.make_initializable_iterator(dataset)
            self.logits, _ = inception_v4_logits(self._iterator.get_next())
            # Decodes one image on its own, to name the culprit when a batch fails.
            self._probe_path = tf.compat.v1.placeholder(tf.string, [], name="probe_path")
            self._probe = _read_and_preprocess(self._probe_path)
            variables = tf.compat.v1.get_collection(VARIABLES_COLLECTION)
            expected = [(v.op.name, tuple(int(d) for d in v.shape)) for v in variables]
            _compare_checkpoint(checkpoint, expected, stored)  # before any restore
            saver = tf.compat.v1.train.Saver(
                var_list={v.op.name: v for v in variables}, write_version=2
            )
            self.graph.finalize()

        config = tf.compat.v1.ConfigProto(
            intra_op_parallelism_threads=threads, inter_op_parallelism_threads=1
        )
        if precision == "bfloat16":
            config.graph_options.rewrite_options.auto_mixed_precision_onednn_bfloat16 = (
                rewriter_config_pb2.RewriterConfig.ON
            )
        self.session = tf.compat.v1.Session(graph=self.graph, config=config)
        try:
            with self.graph.as_default():
                saver.restore(self.session, str(checkpoint))
        except BaseException:
            self.session.close()
            raise
        log.info(
            "Inception-v4 graph built and %s restored in %.1f s (batch %d, %d threads, %s)",
            checkpoint,
            time.perf_counter() - started,
            batch_size,
            threads,
            precision,
        )

    def __enter__(self) -> InceptionV4Extractor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the session."""
        self.session.close()

    def extract(
        self, image_paths: Sequence[str | Path], progress: Progress | None = None
    ) -> np.ndarray:
        """``Logits`` (N x 1001 float32) of the images, rows in the given order.

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
            return np.zeros((0, NUM_CLASSES), dtype=np.float32)
        started = time.perf_counter()
        self.session.run(self._iterator.initializer, {self._paths: paths})
        batches = []
        n_batches = math.ceil(total / self.batch_size)
        for index in range(n_batches):
            try:
                batches.append(self._run_batch())
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
        logits = np.concatenate(batches).astype(np.float32, copy=False)
        if not np.all(np.isfinite(logits)):
            bad = [paths[i] for i in np.flatnonzero(~np.isfinite(logits).all(axis=1))]
            raise ValueError(
                f"non-finite Logits for {len(bad)} image(s), e.g. {bad[0]}: the checkpoint "
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
        return logits

    def _run_batch(self) -> np.ndarray:
        """The next batch's Logits; the first time under bfloat16, also learn whether the
        graph TensorFlow ran computes in bfloat16 (:attr:`precision_in_use`)."""
        if self.precision_in_use is not None:
            return self.session.run(self.logits)
        tf = self._tf
        metadata = tf.compat.v1.RunMetadata()
        logits = self.session.run(
            self.logits,
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
        self.precision_in_use = "bfloat16" if rewritten else "float32"
        if not rewritten:
            log.warning(
                "precision bfloat16 was asked for, but TensorFlow computes in float32 on this "
                "CPU (%s): it has no bfloat16 support (AVX-512 BF16 or AMX). The features are "
                "float32 and say so; this mode is no faster here.",
                cpu_model(),
            )
        return logits

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


def cpu_model() -> str:
    """The CPU's model name (Linux), to say which machine a figure or a warning is about."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


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
) -> None:
    """Extract the images' ``Logits`` and write them as a feature file (rows sorted by name).

    ``weights`` says in words which weights the checkpoint holds; it is stored with the
    checkpoint path and SHA-256, the precision, the preprocessing and the TensorFlow version.
    """
    names = [Path(p).name for p in image_paths]
    duplicates = sorted(name for name, count in Counter(names).items() if count > 1)
    if duplicates:
        raise ValueError(f"{out_path}: duplicate image file names in one shard: {duplicates}")
    # Hash the checkpoint on a second thread while TensorFlow is imported and the graph is
    # built: hashlib releases the GIL, so this is nearly free on a machine with 2+ cores.
    with ThreadPoolExecutor(max_workers=1) as pool:
        sha = pool.submit(checkpoint_sha256, checkpoint)
        with InceptionV4Extractor(
            checkpoint, batch_size=batch_size, threads=threads, precision=precision
        ) as extractor:
            logits = extractor.extract(image_paths, progress=progress)
            # An empty shard runs nothing: it keeps the precision asked for (the merge does not
            # compare the provenance of shards without rows).
            precision = extractor.precision_in_use or precision
    tf, _ = _tf_compat.load()
    attrs = {
        "weights": weights,
        "checkpoint": str(checkpoint),
        "checkpoint_sha256": sha.result(),
        "precision": precision,
        "preprocessing": PREPROCESSING,
        "tensorflow_version": tf.__version__,
    }
    write_features(out_path, Features(filenames=names, logits=logits, attrs=attrs))
    log.info("wrote %s (%d images, %s)", out_path, len(names), precision)


# --------------------------------------------------------------------------------------------
# Merging shards
# --------------------------------------------------------------------------------------------
def merge_feature_shards(shard_paths: Sequence[str | Path], out_path: str | Path) -> None:
    """Concatenate feature shards into one file sorted by file name.

    The result does not depend on how many shards there are or their order. Refuses file names
    that occur more than once and shards made with different weights, checkpoint or precision;
    errors name the shards. Attributes shared by all shards are kept. Shards without rows (new
    images that all failed to read) add nothing, so their provenance is not compared.
    """
    if not shard_paths:
        raise ValueError(f"{out_path}: no feature shards to merge")
    shards = [(Path(p), read_features(p)) for p in shard_paths]
    with_rows = [(path, shard) for path, shard in shards if shard.filenames] or shards

    for key in PROVENANCE_ATTRS:
        seen: dict[str, list[str]] = {}
        for path, shard in with_rows:
            seen.setdefault(shard.attrs.get(key, "<missing>"), []).append(str(path))
        if len(seen) > 1:
            detail = "; ".join(f"{value!r} in {', '.join(paths)}" for value, paths in seen.items())
            raise ValueError(
                f"{out_path}: feature shards disagree on '{key}': {detail}. Re-extract them "
                "with one checkpoint and precision (bfloat16 takes effect only on CPUs with "
                "AVX-512 BF16 or AMX: on a mixed cluster, use float32)."
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
    merged = Features(
        filenames=[name for _, shard in shards for name in shard.filenames],
        logits=np.concatenate([shard.logits for _, shard in shards]),
        attrs=common,
    )
    write_features(out_path, merged)
    log.info("merged %d shards into %s (%d images)", len(shards), out_path, len(owner))
