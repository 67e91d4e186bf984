"""Running Inception-v4 on PyTorch (``network.backend: torch``): image files and streamed frames.

:class:`TorchNetwork` is the torch backend's counterpart of :class:`oath.network.features.Network`
and
its two extractors: the same ``extract_layers`` (image files) and ``run`` (frame records, for
:mod:`oath.archive.stream`) with the same attributes (``device``, ``batch_size``,
``precision_in_use``,
``keep_images``), so extraction and classification pick a backend at the one place they open
the network (:func:`oath.network.features.open_network`).

Where it runs: the first CUDA GPU PyTorch sees, else the CPU. On a GPU, TensorFloat-32 is
turned off (float32 means float32, as on TensorFlow, see :mod:`oath.network.device`) and
``bfloat16``
autocasts to bfloat16, or to float16 where the GPU lacks bfloat16 (the features then say
float16). On a CPU, ``bfloat16`` autocasts to bfloat16 (fast on CPUs with AVX-512 BF16 or AMX,
slow elsewhere). The network runs channels-last. Images are decoded and preprocessed (numpy,
:func:`oath.network.inception_v4_torch.preprocess_png`) on a second thread, one batch ahead.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Self, TypeVar

import numpy as np
import torch

from oath.network.checkpoint import checkpoint_sha256
from oath.network.device import RunOptions, batch_size_for, cpu_model
from oath.network.inception_v4_torch import (
    END_POINTS,
    InceptionV4Torch,
    Weights,
    checkpoint_weights,
    preprocess_pixels,
    preprocess_png,
)

log = logging.getLogger(__name__)
T = TypeVar("T")
LOGITS = "Logits"  # oath.network.featurefile.LOGITS, not imported: this module needs no pandas


class ImageError(ValueError):
    """An image is missing or cannot be decoded; the message names the file."""


def torch_device() -> tuple[torch.device, str]:
    """The device the network runs on, and it in words (``GPU: NAME`` or ``CPU: MODEL``)."""
    if torch.cuda.is_available():
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        return torch.device("cuda", 0), f"GPU: {torch.cuda.get_device_name(0)}"
    return torch.device("cpu"), f"CPU: {cpu_model()}"


def autocast_dtype(device: torch.device, precision: str) -> torch.dtype | None:
    """The dtype ``precision`` autocasts to on ``device`` (None: float32, no autocast)."""
    if precision == "float32":
        return None
    if precision != "bfloat16":
        raise ValueError(f"precision must be float32 or bfloat16, got {precision!r}")
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        log.warning("this GPU has no bfloat16: precision bfloat16 computes in float16")
        return torch.float16
    return torch.bfloat16


def prefetched(items: Iterator[T]) -> Iterator[T]:
    """``items``, each made on a second thread while the caller works on the one before."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(next, items, None)
        while (item := pending.result()) is not None:
            pending = pool.submit(next, items, None)
            yield item


def _read_image(path: str) -> np.ndarray:
    try:
        return preprocess_png(Path(path).read_bytes())
    except (OSError, ValueError) as exc:
        raise ImageError(
            f"{path}: cannot read or decode as an image ({exc}). "
            "Replace it with a readable PNG or remove it from the data set."
        ) from exc


class TorchNetwork:
    """Inception-v4 on PyTorch with the checkpoint's weights (converted once, cached by the
    checkpoint's SHA-256: :func:`oath.network.inception_v4_torch.checkpoint_weights`), or with
    ``weights`` given directly (then ``checkpoint`` only names them).

    ``threads`` is PyTorch's intra-op thread count on a CPU; ``gpu_batch_size`` replaces
    ``batch_size`` on a GPU. See the module docstring for devices and precisions.
    """

    def __init__(
        self, checkpoint: str | Path, *, weights: Weights | None = None, **options: Any
    ) -> None:
        run = RunOptions(**options)
        threads, precision = run.threads, run.precision
        started = time.perf_counter()
        torch.set_num_threads(threads)
        self.checkpoint = Path(checkpoint)
        self.torch_device, self.device = torch_device()
        self.batch_size = batch_size_for(self.device, run.batch_size, run.gpu_batch_size)
        self._autocast = autocast_dtype(self.torch_device, precision)
        #: What the network computes in: float32, bfloat16, or float16 (a GPU without bf16).
        self.precision_in_use = str(self._autocast or torch.float32).removeprefix("torch.")
        #: Keep each frame's PNG bytes in the records :meth:`run` returns (else dropped).
        self.keep_images = False
        if weights is None:
            self.checkpoint_sha256: str | None = checkpoint_sha256(checkpoint)
            weights = checkpoint_weights(checkpoint, self.checkpoint_sha256)
        else:
            self.checkpoint_sha256 = None
        model = InceptionV4Torch(weights, str(checkpoint)).eval()
        self.model = model.to(self.torch_device, memory_format=torch.channels_last)
        log.info(
            "Inception-v4 on PyTorch %s ready in %.1f s (%s, batch %d, %d threads, %s)",
            torch.__version__,
            time.perf_counter() - started,
            self.device,
            self.batch_size,
            threads,
            self.precision_in_use,
        )

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the GPU memory the network holds."""
        del self.model
        if self.torch_device.type == "cuda":
            torch.cuda.empty_cache()

    def forward(self, images: np.ndarray) -> dict[str, np.ndarray]:
        """Both feature sets of a batch of preprocessed images (N x 299 x 299 x 3 float32)."""
        # N H W C in memory is N C H W channels-last: a permuted view, no copy.
        batch = torch.from_numpy(images).to(self.torch_device).permute(0, 3, 1, 2)
        with (
            torch.inference_mode(),
            torch.autocast(
                self.torch_device.type,
                dtype=self._autocast or torch.bfloat16,
                enabled=self._autocast is not None,
            ),
        ):
            out = self.model(batch)
        return {name: out[name].float().cpu().numpy() for name in END_POINTS}

    def extract_layers(
        self, image_paths: Sequence[str | Path], progress: Callable[[int, int], None] | None = None
    ) -> dict[str, np.ndarray]:
        """``Logits`` (N x 1001) and ``PreLogitsFlatten`` (N x 1536) of image files, rows in the
        given order; ``progress(done, total)`` before the first batch and after each."""
        paths = [str(p) for p in image_paths]
        for path in paths:
            if not Path(path).is_file():
                raise ImageError(f"{path}: no such image file.")
        total, started = len(paths), time.perf_counter()
        if progress:
            progress(0, total)
        chunks = (paths[i : i + self.batch_size] for i in range(0, total, self.batch_size))
        batches, done = [], 0
        for chunk, images in prefetched((c, np.stack([_read_image(p) for p in c])) for c in chunks):
            batches.append(self.forward(images))
            done += len(chunk)
            if progress:
                progress(done, total)
        layers = {
            name: np.concatenate([b[name] for b in batches])
            if batches
            else np.zeros((0, width), np.float32)
            for name, width in END_POINTS.items()
        }
        for name, values in layers.items():
            finite = np.isfinite(values).all(axis=1)
            if not finite.all():
                raise ValueError(
                    f"non-finite {name} for {int((~finite).sum())} image(s), e.g. "
                    f"{paths[int(np.flatnonzero(~finite)[0])]}: the checkpoint {self.checkpoint} "
                    "holds non-finite or badly scaled weights."
                )
        if total:
            elapsed = time.perf_counter() - started
            log.info("%d images in %.1f s (%.3f s/image)", total, elapsed, elapsed / total)
        return layers

    def run(self, records: Iterable[Any], layer: str = LOGITS) -> tuple[list[Any], dict]:
        """All frame records (:class:`oath.archive.feed.FrameRecord`, failed ones included) and
        their features, NaN rows for failures: ``Logits`` always, and feature set ``layer``
        too."""
        seen: list[Any] = []

        def batches() -> Iterator[tuple[list[int], np.ndarray]]:
            rows: list[int] = []
            images: list[np.ndarray] = []
            for record in records:
                seen.append(record)
                if record.image is not None:  # pixels, as classify hands them over
                    images.append(preprocess_pixels(record.image))
                elif record.png is not None:
                    images.append(preprocess_png(record.png))
                else:  # a failed row
                    continue
                rows.append(len(seen) - 1)
                if not self.keep_images:
                    record.png = record.image = None
                if len(rows) == self.batch_size:
                    yield rows, np.stack(images)
                    rows, images = [], []
            if rows:
                yield rows, np.stack(images)

        names = list(dict.fromkeys((LOGITS, layer)))
        computed = [(rows, self.forward(images)) for rows, images in prefetched(batches())]
        out = {}
        for name in names:
            out[name] = np.full((len(seen), END_POINTS[name]), np.nan, dtype=np.float32)
            for rows, values in computed:
                out[name][rows] = values[name]
        return seen, out
