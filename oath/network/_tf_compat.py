"""Make tf-slim 1.1.0 importable and usable on TensorFlow 2.21 with tf_keras.

TensorFlow's legacy ``tf.compat.v1.layers`` (which tf-slim's ``batch_norm`` calls) load their
Keras half lazily from ``tf_keras.legacy_tf_layers``, but tf_keras 2.21 ships that package as
``tf_keras.src.legacy_tf_layers``. We register the shipped modules under the expected names in
``sys.modules`` before tf-slim is imported, so both names refer to the same module objects (no
second copy of the layer classes). Nothing else is patched.

Import ``tensorflow`` and ``tf_slim`` through :func:`load` only; it is cheap after the first call
and keeps TensorFlow out of processes that never build a graph (e.g. the feature merge).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import importlib
import os
import sys
from collections.abc import Iterator
from types import ModuleType

# The package and the submodules TensorFlow or tf-slim import by the old name.
_ALIASED = ("", ".base", ".convolutional", ".core", ".normalization", ".pooling")
_modules: tuple[ModuleType, ModuleType] | None = None

# glibc mallopt parameters (malloc.h) and the values keep_freed_memory sets.
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3
_MMAP_THRESHOLD = 32 * 2**20  # glibc's largest: blocks below it come from the heap
_TRIM_THRESHOLD = 2**31 - 1  # (int's largest) keep freed heap between batches
_TOP_PAD = 512 * 2**20


def keep_freed_memory() -> bool:
    """Have glibc keep freed memory for reuse instead of returning it to the system.

    Each forward pass allocates and frees hundreds of MB of activations. By default glibc
    serves blocks over its (adaptive) mmap threshold with fresh pages and trims freed heap,
    so every batch page-faults its activations in again: measured on a 2-core EPYC, up to
    ~30,000 minor faults and ~90 ms of kernel time an image, the job 1.4x slower
    (bench/bench_allocator.py). With this and
    TensorFlow's caching CPU allocator (``TF_CPU_ALLOCATOR_USE_BFC``, set in :func:`load`)
    the faults after the first batch drop to ~100 an image. Returns False where the C
    library has no ``mallopt`` (not glibc): nothing is changed there.
    """
    name = ctypes.util.find_library("c")
    try:
        mallopt = ctypes.CDLL(name).mallopt if name else None
    except (OSError, AttributeError):
        mallopt = None
    if mallopt is None:
        return False
    settings = (
        (_M_MMAP_THRESHOLD, _MMAP_THRESHOLD),
        (_M_TRIM_THRESHOLD, _TRIM_THRESHOLD),
        (_M_TOP_PAD, _TOP_PAD),
    )
    return all(mallopt(param, ctypes.c_int(value)) == 1 for param, value in settings)


def _alias_legacy_tf_layers() -> None:
    """Register ``tf_keras.src.legacy_tf_layers[.x]`` as ``tf_keras.legacy_tf_layers[.x]``."""
    for suffix in _ALIASED:
        old = f"tf_keras.legacy_tf_layers{suffix}"
        if old not in sys.modules:
            sys.modules[old] = importlib.import_module(f"tf_keras.src.legacy_tf_layers{suffix}")


@contextlib.contextmanager
def _without_sklearn() -> Iterator[None]:
    """Hide scikit-learn from an import, unless this process has already imported it.

    tf-slim imports ``sklearn.metrics`` for one loss we never use (``cluster_loss``); that
    costs 0.9 s of every extraction job's start-up. Hidden, tf-slim records that it has no
    scikit-learn and goes on; the entry is removed afterwards, so later imports work.
    """
    if "sklearn" in sys.modules:
        yield
        return
    sys.modules["sklearn"] = None  # type: ignore[assignment]  # makes its import fail at once
    try:
        yield
    finally:
        if sys.modules.get("sklearn", 0) is None:
            del sys.modules["sklearn"]


def load() -> tuple[ModuleType, ModuleType]:
    """Return ``(tensorflow, tf_slim)``, importing them with the alias in place on first use."""
    global _modules
    if _modules is None:
        # Settings that only take effect before TensorFlow is first imported; explicit values
        # in the environment win. Keep the C++ start-up banners (oneDNN, CUDA stubs) out of
        # rule logs (warnings and errors still come through), and let tf.keras be tf_keras,
        # which tf-slim needs anyway, instead of importing Keras 3 as well (~0.5 s per job).
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
        os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
        # A caching allocator for tensors on the CPU (read when TensorFlow first allocates).
        os.environ.setdefault("TF_CPU_ALLOCATOR_USE_BFC", "true")
        keep_freed_memory()
        import tensorflow as tf

        _alias_legacy_tf_layers()
        with _without_sklearn():
            import tf_slim

        _modules = (tf, tf_slim)
    return _modules
