"""Inception-v4 as TF-slim defines it, in inference mode, and its reference preprocessing.

The network is TF-slim's Inception-v4 (Szegedy et al. 2016, arXiv:1602.07261) in inference mode:
scope ``InceptionV4``, 1001 classes, the auxiliary head built (its variables are part of the
published ``inception_v4_2016_09_09`` checkpoint) but never run. Batch norm uses the moving
statistics (no ``gamma``: ``scale=False``, epsilon 0.001), dropout is off, and the feature is
the pre-softmax ``Logits`` end point (N x 1001), as in Clausen & Nickisch (2018).

Extraction imports the network from a graph file built once per machine and cached
(:func:`import_inception_v4`), which is faster than building it with tf-slim in every job.
Preprocessing is the reference evaluation preprocessing (see :data:`PREPROCESSING`).
Checkpoints live in :mod:`oath.network.checkpoint`, running the network on images in
:mod:`oath.network.features`. TensorFlow is imported on first use.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib.metadata
import logging
import os
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from oath.atomic import write_bytes
from oath.network import _tf_compat

log = logging.getLogger(__name__)

NUM_CLASSES = 1001
IMAGE_SIZE = 299
CENTRAL_FRACTION = 0.875
BATCH_NORM_EPSILON = 0.001
BATCH_NORM_DECAY = 0.9997  # irrelevant in inference, kept equal to the reference arg scope
PREPROCESSING = (
    "decode to 3 channels, convert to float in [0, 1], central crop 0.875, bilinear resize to "
    "299x299 (align_corners=False), then (x - 0.5) * 2 (TF-slim Inception evaluation)"
)
#: Graph collection holding the network's variables (see inception_v4_logits).
VARIABLES_COLLECTION = "oath_inception_v4_variables"


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
    """Names and shapes of the network's variables, in creation order (from the graph cache)."""
    return _variables(_cached_meta_graph()[0])


# --------------------------------------------------------------------------------------------
# The network's graph, built once per machine and cached
# --------------------------------------------------------------------------------------------
# Building the network with tf-slim takes ~4 s of every extraction job's start-up; importing
# the same graph, saved once, takes ~0.4 s and gives bit-identical Logits. The cache is keyed
# by everything the graph depends on, so a new TensorFlow, tf-slim or network code writes a new
# file instead of reusing a stale one.
CACHE_DIR_ENV = "OATH_CACHE_DIR"  # where the graph is cached; default ~/.cache/oath-pipeline
_CACHE_FORMAT = "1"
_IMAGES = "images"  # the placeholder the cached graph is built on, replaced on import
_SIGNATURE = "features"  # the MetaGraphDef signature naming the input and the feature tensors
_FEATURES = ("Logits", "PreLogitsFlatten")  # the end points the signature names


@dataclasses.dataclass(frozen=True)
class ImportedNetwork:
    """Inception-v4 imported into a graph: what extraction fetches, restores and checks."""

    #: ``Logits`` and ``PreLogitsFlatten`` tensors by name.
    layers: dict[str, Any]
    #: The network's variables, (name, shape), as the checkpoint must hold them.
    variables: tuple[tuple[str, tuple[int, ...]], ...]
    #: ``session.run(restore_op, {filename_tensor: checkpoint})`` restores every variable.
    restore_op: Any
    filename_tensor: Any
    #: Where the graph came from, in words, for the log.
    source: str


def graph_cache_dir() -> Path:
    """``$OATH_CACHE_DIR``, else ``$XDG_CACHE_HOME/oath-pipeline`` (``~/.cache/oath-pipeline``)."""
    if os.environ.get(CACHE_DIR_ENV):
        return Path(os.environ[CACHE_DIR_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "oath-pipeline"


def graph_cache_path() -> Path:
    """The cached graph file for this TensorFlow, tf-slim and network code."""
    tf, _ = _tf_compat.load()
    key = hashlib.sha256()
    for part in (_CACHE_FORMAT, tf.__version__, importlib.metadata.version("tf-slim")):
        key.update(part.encode() + b"\0")
    for module in (__file__, _tf_compat.__file__):  # the network code and the tf-slim alias
        key.update(Path(module).read_bytes())
    return graph_cache_dir() / f"inception_v4-{key.hexdigest()[:16]}.meta"


def _built_meta_graph() -> Any:
    """Inception-v4 on an ``images`` placeholder with its restore op, as a MetaGraphDef whose
    ``features`` signature names the input and the two feature tensors."""
    tf, _ = _tf_compat.load()
    with tf.Graph().as_default() as graph:
        images = tf.compat.v1.placeholder(tf.float32, [None, IMAGE_SIZE, IMAGE_SIZE, 3], _IMAGES)
        _, end_points = inception_v4_logits(images)
        variables = tf.compat.v1.get_collection(VARIABLES_COLLECTION)
        saver = tf.compat.v1.train.Saver(
            var_list={v.op.name: v for v in variables}, write_version=2
        )
    meta = tf.compat.v1.MetaGraphDef()
    meta.graph_def.CopyFrom(graph.as_graph_def())
    meta.saver_def.CopyFrom(saver.as_saver_def())
    meta.meta_info_def.tensorflow_version = tf.__version__
    signature = meta.signature_def[_SIGNATURE]
    signature.inputs[_IMAGES].name = images.name
    for name in _FEATURES:
        signature.outputs[name].name = end_points[name].name
    # Checked against the checkpoint before restoring, in creation order.
    meta.collection_def[VARIABLES_COLLECTION].bytes_list.value.extend(
        f"{v.op.name}:{','.join(str(int(d)) for d in v.shape)}".encode() for v in variables
    )
    return meta


def _variables(meta: Any) -> tuple[tuple[str, tuple[int, ...]], ...]:
    """The (name, shape) list :func:`_built_meta_graph` stored in ``meta``."""
    variables = []
    for entry in meta.collection_def[VARIABLES_COLLECTION].bytes_list.value:
        name, shape = entry.decode().rsplit(":", 1)
        variables.append((name, tuple(int(d) for d in shape.split(",") if d)))
    return tuple(variables)


def _cached_meta_graph() -> tuple[Any, str]:
    """The MetaGraphDef from the cache, or built (and cached where the folder is writable)."""
    tf, _ = _tf_compat.load()
    path = graph_cache_path()
    if path.is_file():
        from google.protobuf.message import DecodeError

        meta = tf.compat.v1.MetaGraphDef()
        try:
            meta.ParseFromString(path.read_bytes())
        except (OSError, DecodeError) as exc:
            log.warning("%s: unreadable cached network graph (%s); building it again.", path, exc)
        else:
            if _SIGNATURE in meta.signature_def and meta.saver_def.restore_op_name:
                return meta, f"cached graph {path}"
            log.warning("%s: not a cached network graph; building it again.", path)
    started = time.perf_counter()
    meta = _built_meta_graph()
    built = f"graph built in {time.perf_counter() - started:.1f} s"
    try:
        write_bytes(path, meta.SerializeToString())
    except OSError as exc:
        log.info("%s; not cached (%s: %s)", built, path, exc.strerror or exc)
        return meta, built
    return meta, f"{built}, cached as {path}"


def import_inception_v4(images: Any) -> ImportedNetwork:
    """Inception-v4 in inference mode on ``images`` (N x 299 x 299 x 3 in [-1, 1]) in the
    current graph, from the graph cache (:func:`graph_cache_path`), built there on first use.

    The same network :func:`inception_v4_logits` builds, under the name scope ``network/``;
    its variables are restored by running :attr:`ImportedNetwork.restore_op`.
    """
    tf, _ = _tf_compat.load()
    meta, source = _cached_meta_graph()
    signature = meta.signature_def[_SIGNATURE]
    saver = meta.saver_def
    *outputs, restore_op, filename = tf.compat.v1.import_graph_def(
        meta.graph_def,
        input_map={signature.inputs[_IMAGES].name: images},
        return_elements=[
            *(signature.outputs[name].name for name in _FEATURES),
            saver.restore_op_name,
            saver.filename_tensor_name,
        ],
        name="network",
    )
    return ImportedNetwork(
        layers=dict(zip(_FEATURES, outputs, strict=True)),
        variables=_variables(meta),
        restore_op=restore_op,
        filename_tensor=filename,
        source=source,
    )


# --------------------------------------------------------------------------------------------
# Preprocessing
# --------------------------------------------------------------------------------------------
def preprocess_image(encoded: Any) -> Any:
    """Encoded PNG bytes (scalar string tensor) to one 299 x 299 x 3 float32 network input.

    Exactly the reference evaluation preprocessing: see :data:`PREPROCESSING`.
    """
    tf, _ = _tf_compat.load()
    return preprocess_pixels(tf.io.decode_png(encoded, channels=3))


def preprocess_pixels(image: Any) -> Any:
    """A decoded uint8 image (H x W x 3, or H x W x 1 gray: repeated to 3 channels, as
    ``decode_png(channels=3)`` does) to one 299 x 299 x 3 float32 network input."""
    tf, _ = _tf_compat.load()
    if image.shape[-1] == 1:
        image = tf.tile(image, [1, 1, 3])
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


def read_and_preprocess(path: Any) -> Any:
    """Network input for one image path (scalar string tensor)."""
    tf, _ = _tf_compat.load()
    return preprocess_image(tf.io.read_file(path))
