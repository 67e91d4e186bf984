"""Inception-v4 on PyTorch with TF-slim's exact semantics, its weights, and its preprocessing.

A second implementation of the network of :mod:`oath.network.inception_v4` (the reference, on
TensorFlow), built from the same block table and reading the same TF-slim checkpoint, so that a
GPU node with PyTorch but no TensorFlow can run it, and so the two check each other:

- **network** (:class:`InceptionV4Torch`): TensorFlow's ``SAME`` padding (asymmetric where the
  kernel and stride call for it, the extra row/column at the bottom/right), average pools that
  exclude the padding, batch norm with the moving statistics, no ``gamma`` and epsilon 0.001
  (folded into the convolutions once, at load), ReLU; the ``Logits`` and ``PreLogitsFlatten``
  end points. The auxiliary head is not built (nothing we fetch depends on it).
- **weights**: a ``{TF variable name: array}`` mapping, read from a checkpoint with TensorFlow
  once and kept in a cache file keyed by the checkpoint's SHA-256
  (:func:`checkpoint_weights`): a node with the cache needs no TensorFlow. Or drawn from a
  ``variables.txt`` listing as the parity fixture's ``make_checkpoint.py`` does
  (:func:`fixture_weights`), with no checkpoint at all.
- **preprocessing** (:func:`preprocess_png`): the reference evaluation preprocessing
  (:data:`oath.network.inception_v4.PREPROCESSING`) in numpy: TensorFlow's ``convert_image_dtype``,
  ``central_crop`` and legacy ``ResizeBilinear`` (align_corners=False, no half-pixel centres),
  reproduced operation for operation in float32.

PyTorch is imported here at module level: import this module only where the torch backend is
chosen. It runs with PyTorch 2.11 and later.
"""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from oath.atomic import atomic_path
from oath.network.checkpoint import (
    _random_values,  # the values make_checkpoint.py draws, per variable
)
from oath.network.inception_v4 import (
    _BLOCKS,
    _REDUCE,
    BATCH_NORM_EPSILON,
    CENTRAL_FRACTION,
    IMAGE_SIZE,
    NUM_CLASSES,
    Branch,
    Layer,
    _c,
    graph_cache_dir,
)

log = logging.getLogger(__name__)

SCOPE = "InceptionV4"
#: The stem's three convolutions, before the mixed blocks.
_STEM: list[Layer] = [
    _c("Conv2d_1a_3x3", 32, **_REDUCE),
    _c("Conv2d_2a_3x3", 32, padding="VALID"),
    _c("Conv2d_2b_3x3", 64),
]
#: The end points the network returns, and their widths (oath.network.featurefile's feature sets).
END_POINTS = {"Logits": NUM_CLASSES, "PreLogitsFlatten": 1536}
_WEIGHTS_FORMAT = "1"  # part of the cache file's name: a new layout writes a new file
Weights = Mapping[str, np.ndarray]


class WeightsError(ValueError):
    """Weights lack a variable the network needs, or hold it in the wrong shape."""


# --------------------------------------------------------------------------------------------
# The variables the network reads
# --------------------------------------------------------------------------------------------
def _kernel(scope: str) -> tuple[int, int]:
    height, width = (int(k) for k in scope.rsplit("_", 1)[-1].split("x"))
    return height, width


def _walk_layers(visit: Callable[[str, Layer, int], int]) -> int:
    """Call ``visit(prefix, layer, channels_in)`` for every layer in network order; it returns
    the layer's output channels. Returns the channels of ``Mixed_7d`` (1536)."""
    channels = 3
    for layer in _STEM:
        channels = visit(f"{SCOPE}/{layer[0]}", layer, channels)
    for block, branches in _BLOCKS:
        total = 0
        for index, branch in enumerate(branches):
            out = channels
            for item in branch:
                fork = item if isinstance(item[0], tuple) else (item,)
                out = sum(
                    visit(f"{SCOPE}/{block}/Branch_{index}/{layer[0]}", layer, out)
                    for layer in fork  # type: ignore[union-attr]
                )
            total += out
        channels = total
    return channels


def network_variables() -> list[tuple[str, tuple[int, ...]]]:
    """(TF variable name, shape) of every variable the torch network reads, in network order:
    those of the published checkpoint less the auxiliary head's."""
    names: list[tuple[str, tuple[int, ...]]] = []

    def visit(prefix: str, layer: Layer, channels: int) -> int:
        scope, depth, _, _ = layer
        if depth is None:
            return channels
        names.append((f"{prefix}/weights", (*_kernel(scope), channels, depth)))
        for leaf in ("beta", "moving_mean", "moving_variance"):
            names.append((f"{prefix}/BatchNorm/{leaf}", (depth,)))
        return depth

    width = _walk_layers(visit)
    names.append((f"{SCOPE}/Logits/Logits/weights", (width, NUM_CLASSES)))
    names.append((f"{SCOPE}/Logits/Logits/biases", (NUM_CLASSES,)))
    return names


def check_weights(weights: Weights, source: str) -> None:
    """Raise :class:`WeightsError` naming ``source`` and the missing or misshapen variables."""
    missing = [name for name, _ in network_variables() if name not in weights]
    misshapen = [
        f"{name} has shape {list(np.shape(weights[name]))}, expected {list(shape)}"
        for name, shape in network_variables()
        if name in weights and tuple(np.shape(weights[name])) != shape
    ]
    if missing or misshapen:
        problems = [f"missing {', '.join(missing[:5])}"] if missing else []
        problems += misshapen[:5]
        raise WeightsError(
            f"{source}: not Inception-v4 weights ({len(missing)} missing, {len(misshapen)} "
            f"misshapen variable(s): {'; '.join(problems)}). Use the published "
            "inception_v4_2016_09_09 checkpoint or weights with its names and shapes."
        )


# --------------------------------------------------------------------------------------------
# The network
# --------------------------------------------------------------------------------------------
def _same_pads(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow's SAME padding along one axis: (before, after), the odd one after."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _pads(x: torch.Tensor, kernel: tuple[int, int], stride: int, padding: str) -> list[int]:
    """``F.pad`` amounts (left, right, top, bottom) for TensorFlow padding ``padding``."""
    if padding == "VALID":
        return [0, 0, 0, 0]
    top, bottom = _same_pads(x.shape[2], kernel[0], stride)
    left, right = _same_pads(x.shape[3], kernel[1], stride)
    return [left, right, top, bottom]


class InceptionV4Torch(nn.Module):
    """TF-slim Inception-v4 in inference mode; ``forward`` maps N x 3 x 299 x 299 inputs in
    [-1, 1] to ``{"Logits": N x 1001, "PreLogitsFlatten": N x 1536}`` (float32).

    Batch norm is folded into each convolution (weight / sqrt(var + eps), bias beta - mean /
    sqrt(var + eps)), computed in float64 and stored in float32.
    """

    def __init__(self, weights: Weights, source: str = "weights") -> None:
        super().__init__()
        check_weights(weights, source)
        self._convs: dict[str, tuple[str, str]] = {}

        def fold(prefix: str, layer: Layer, channels: int) -> int:
            if layer[1] is None:
                return channels
            kernel = np.asarray(weights[f"{prefix}/weights"], np.float64)  # H W I O
            mean, variance, beta = (
                np.asarray(weights[f"{prefix}/BatchNorm/{leaf}"], np.float64)
                for leaf in ("moving_mean", "moving_variance", "beta")
            )
            scale = 1.0 / np.sqrt(variance + BATCH_NORM_EPSILON)
            key = prefix.replace("/", "__")
            folded = (kernel * scale).transpose(3, 2, 0, 1)  # O I H W
            self.register_buffer(f"{key}__w", torch.from_numpy(folded.astype(np.float32)))
            bias = (beta - mean * scale).astype(np.float32)
            self.register_buffer(f"{key}__b", torch.from_numpy(bias))
            self._convs[prefix] = (f"{key}__w", f"{key}__b")
            return int(layer[1])

        _walk_layers(fold)
        logits = np.asarray(weights[f"{SCOPE}/Logits/Logits/weights"], np.float32)
        self.register_buffer("logits_w", torch.from_numpy(np.ascontiguousarray(logits.T)))
        biases = np.asarray(weights[f"{SCOPE}/Logits/Logits/biases"], np.float32)
        self.register_buffer("logits_b", torch.from_numpy(biases.copy()))

    def _layer(self, x: torch.Tensor, prefix: str, layer: Layer) -> torch.Tensor:
        scope, depth, stride, padding = layer
        kernel = _kernel(scope)
        pads = _pads(x, kernel, stride, padding)
        if depth is not None:
            weight, bias = (getattr(self, name) for name in self._convs[prefix])
            if pads[0] == pads[1] and pads[2] == pads[3]:
                y = F.conv2d(x, weight, bias, stride, padding=(pads[2], pads[0]))
            else:
                y = F.conv2d(F.pad(x, pads), weight, bias, stride)
            return F.relu(y)
        if scope.startswith("AvgPool"):
            if pads[0] != pads[1] or pads[2] != pads[3]:
                raise NotImplementedError(f"{prefix}: asymmetric SAME average pool")
            return F.avg_pool2d(x, kernel, stride, (pads[2], pads[0]), count_include_pad=False)
        if any(pads):
            x = F.pad(x, pads, value=float("-inf"))
        return F.max_pool2d(x, kernel, stride)

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        net = images
        for layer in _STEM:
            net = self._layer(net, f"{SCOPE}/{layer[0]}", layer)
        for block, branches in _BLOCKS:
            net = torch.cat(
                [
                    self._branch(net, f"{SCOPE}/{block}/Branch_{i}", b)
                    for i, b in enumerate(branches)
                ],
                dim=1,
            )
        prelogits = net.mean(dim=(2, 3))  # AvgPool_1a over the whole 8 x 8, then flatten
        logits = F.linear(prelogits, self.logits_w, self.logits_b)
        return {"Logits": logits.float(), "PreLogitsFlatten": prelogits.float()}

    def _branch(self, net: torch.Tensor, prefix: str, branch: Branch) -> torch.Tensor:
        for item in branch:
            if isinstance(item[0], tuple):  # a fork: its layers side by side on the same input
                net = torch.cat([self._layer(net, f"{prefix}/{x[0]}", x) for x in item], dim=1)  # type: ignore[union-attr]
            else:
                net = self._layer(net, f"{prefix}/{item[0]}", item)  # type: ignore[arg-type]
        return net


# --------------------------------------------------------------------------------------------
# Weights: from a checkpoint (once, through a cache) or drawn as the parity fixture's
# --------------------------------------------------------------------------------------------
def weights_cache_path(sha256: str) -> Path:
    """The cache file of the converted weights of the checkpoint with this SHA-256."""
    return graph_cache_dir() / f"inception_v4_torch-{_WEIGHTS_FORMAT}-{sha256}.npz"


def _read_checkpoint(checkpoint: str | Path) -> dict[str, np.ndarray]:
    """The network's variables from a TF checkpoint (V1 file or V2 prefix): needs TensorFlow."""
    from oath.network.checkpoint import compare_checkpoint

    try:
        from oath.network import _tf_compat

        tf, _ = _tf_compat.load()
    except ImportError as exc:
        raise WeightsError(
            f"{checkpoint}: its weights are not converted for PyTorch yet, and converting them "
            f"needs TensorFlow ({exc}). Run the extraction once where TensorFlow is installed "
            "(bash setup.sh), or copy the cache file inception_v4_torch-*.npz from such a "
            f"machine into {graph_cache_dir()}."
        ) from exc
    expected = network_variables()
    compare_checkpoint(checkpoint, expected)
    reader = tf.train.load_checkpoint(str(checkpoint))
    return {name: np.asarray(reader.get_tensor(name), np.float32) for name, _ in expected}


def checkpoint_weights(checkpoint: str | Path, sha256: str) -> dict[str, np.ndarray]:
    """The network's weights of ``checkpoint`` (whose SHA-256 is ``sha256``), from the cache
    (:func:`weights_cache_path`), else read with TensorFlow and cached where writable."""
    path = weights_cache_path(sha256)
    if path.is_file():
        try:
            with np.load(path) as stored:
                weights = {name: stored[name] for name in stored.files}
            check_weights(weights, str(path))
            log.info("weights of %s from the cache %s", checkpoint, path)
            return weights
        except (OSError, ValueError) as exc:
            log.warning("%s: unreadable converted weights (%s); converting again.", path, exc)
    started = time.perf_counter()
    weights = _read_checkpoint(checkpoint)
    try:
        with atomic_path(path, suffix=".npz") as tmp, open(tmp, "wb") as out:
            np.savez(out, **weights)
    except OSError as exc:
        log.info("weights of %s not cached (%s: %s)", checkpoint, path, exc.strerror or exc)
    else:
        log.info("weights of %s converted in %.1f s, cached as %s", checkpoint,
                 time.perf_counter() - started, path)  # fmt: skip
    return weights


def fixture_weights(variables_txt: str | Path, seed: int = 1804) -> dict[str, np.ndarray]:
    """The weights the parity fixture's ``make_checkpoint.py OUT --seed SEED`` writes, drawn
    from numpy's RandomState in the order of ``variables_txt`` (name and shape a line), without
    TensorFlow; the auxiliary head's values are drawn (they advance the generator) and dropped."""
    rng = np.random.RandomState(seed)
    needed = {name for name, _ in network_variables()}
    weights = {}
    for line in Path(variables_txt).read_text().splitlines():
        if not line.strip():
            continue
        name, dims = line.split()
        values = _random_values(name, tuple(int(d) for d in dims.split(",")), rng)
        if name in needed:
            weights[name] = values.astype(np.float32)
    return weights


# --------------------------------------------------------------------------------------------
# Preprocessing, without TensorFlow
# --------------------------------------------------------------------------------------------
def decode_rgb(encoded: bytes) -> np.ndarray:
    """PNG/JPEG bytes to an H x W x 3 uint8 array, as ``tf.io.decode_png(..., channels=3)``:
    gray replicated to three channels, alpha dropped. Raises ValueError for other data."""
    from PIL import Image

    with Image.open(io.BytesIO(encoded)) as image:
        if image.mode in ("I;16", "I;16B", "I", "F"):
            raise ValueError(f"{image.mode} images are not supported; use 8-bit PNG or JPEG")
        return np.asarray(image.convert("RGB"), dtype=np.uint8)


def central_crop(image: np.ndarray, fraction: float = CENTRAL_FRACTION) -> np.ndarray:
    """``tf.image.central_crop``: start = int((size - size * fraction) / 2), same on both ends."""
    height, width = image.shape[:2]
    top = int((height - height * fraction) / 2)
    left = int((width - width * fraction) / 2)
    return image[top : height - top, left : width - left]


def _source_axis(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """TensorFlow's legacy bilinear scaler along one axis: lower and upper source index and
    the float32 interpolation weight of each output index."""
    scale = np.float32(in_size) / np.float32(out_size)
    source = np.arange(out_size, dtype=np.float32) * scale
    floor = np.floor(source)
    lower = np.maximum(floor.astype(np.int64), 0)
    upper = np.minimum(np.ceil(source).astype(np.int64), in_size - 1)
    return lower, upper, (source - floor).astype(np.float32)


def resize_bilinear(image: np.ndarray, size: int = IMAGE_SIZE) -> np.ndarray:
    """``tf.raw_ops.ResizeBilinear(align_corners=False, half_pixel_centers=False)`` of an
    H x W x C float32 image to size x size, in TensorFlow's order of float32 operations."""
    y0, y1, y_lerp = _source_axis(image.shape[0], size)
    x0, x1, x_lerp = _source_axis(image.shape[1], size)
    x_lerp = x_lerp[None, :, None]
    top_left, top_right = image[y0][:, x0], image[y0][:, x1]
    bottom_left, bottom_right = image[y1][:, x0], image[y1][:, x1]
    top = top_left + (top_right - top_left) * x_lerp
    bottom = bottom_left + (bottom_right - bottom_left) * x_lerp
    return top + (bottom - top) * y_lerp[:, None, None]


def preprocess_png(encoded: bytes) -> np.ndarray:
    """Encoded image bytes to one 299 x 299 x 3 float32 network input in [-1, 1]: the
    reference evaluation preprocessing (see :data:`oath.network.inception_v4.PREPROCESSING`)."""
    return preprocess_pixels(decode_rgb(encoded))


def preprocess_pixels(image: np.ndarray) -> np.ndarray:
    """uint8 pixels (H x W gray, H x W x 1 or H x W x 3) to one network input, as
    :func:`preprocess_png` does for the PNG of those pixels (gray becomes three equal channels,
    as decoding a gray PNG to RGB does)."""
    image = np.asarray(image, dtype=np.uint8)
    if image.ndim == 2:
        image = image[:, :, None]
    if image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    image = image.astype(np.float32) * np.float32(1.0 / 255.0)
    image = resize_bilinear(central_crop(image))
    return (image - np.float32(0.5)) * np.float32(2.0)
