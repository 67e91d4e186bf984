"""Inception-v4 checkpoints: find their files, hash them, check them, write demo weights.

A checkpoint is a V2 prefix (``prefix.index`` + ``prefix.data-*``) or a V1 single file such as
the published ``inception_v4.ckpt``. TensorFlow is imported on first use, so hashing a
checkpoint stays cheap.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from oath.network import _tf_compat
from oath.network.inception_v4 import model_variables

log = logging.getLogger(__name__)

#: Default seed of :func:`write_random_checkpoint`: the seed the parity fixture's
#: ``make_checkpoint.py`` is run with, so the demo weights are the fixture's weights byte for
#: byte (the same number as the split seed, by history, not by meaning).
FIXTURE_CHECKPOINT_SEED = 1804

_CHECKPOINT_FIX = (
    "Use the published inception_v4_2016_09_09 checkpoint (inception_v4.ckpt from "
    "inception_v4_2016_09_09.tar.gz) or write demo weights with "
    "oath.network.checkpoint.write_random_checkpoint(); delete the file(s) so the workflow "
    "rebuilds them."
)


class CheckpointError(ValueError):
    """A checkpoint is missing, unreadable, or lacks a variable the network needs."""


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


def checkpoint_shapes(checkpoint: str | Path) -> dict[str, tuple[int, ...]]:
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


def compare_checkpoint(
    checkpoint: str | Path,
    expected: Sequence[tuple[str, tuple[int, ...]]],
    stored: dict[str, tuple[int, ...]] | None = None,
) -> None:
    """Raise CheckpointError naming the missing or misshapen variable(s), if any."""
    if stored is None:
        stored = checkpoint_shapes(checkpoint)
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
    compare_checkpoint(checkpoint, model_variables())
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


def write_random_checkpoint(prefix: str | Path, seed: int = FIXTURE_CHECKPOINT_SEED) -> None:
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
