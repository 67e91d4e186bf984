"""The torch backend (oath.network.inception_v4_torch, oath.network.torch_extract): parity with the
TF-slim
reference on the shared fixture, TensorFlow's preprocessing without TensorFlow, the weights
cache, the backend in provenance and merges, and the demo's labels equal to TensorFlow's."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch", reason="the torch extra is not installed")

from oath.archive.stream import classify_shard  # noqa: E402
from oath.fit.model import load_model, predict, train_model  # noqa: E402
from oath.imaging.rotate import read_manifest  # noqa: E402
from oath.network.featurefile import Features, read_features, write_features  # noqa: E402
from oath.network.features import extract_shard, merge_feature_shards  # noqa: E402
from oath.network.inception_v4_torch import (  # noqa: E402
    WeightsError,
    checkpoint_weights,
    fixture_weights,
    network_variables,
    preprocess_pixels,
    preprocess_png,
    weights_cache_path,
)
from oath.network.torch_extract import TorchNetwork  # noqa: E402

pytestmark = pytest.mark.network


def relative_l2(ours: np.ndarray, reference: np.ndarray) -> float:
    return float(np.linalg.norm(ours - reference) / np.linalg.norm(reference))


@pytest.fixture(scope="module")
def fixture(shared_dir) -> Path:
    return shared_dir / "fixtures" / "inception_v4"


@pytest.fixture(scope="module")
def weights(fixture) -> dict[str, np.ndarray]:
    return fixture_weights(fixture / "variables.txt", seed=1804)


def reference(fixture: Path, name: str) -> tuple[list[str], np.ndarray]:
    stem = "logits" if name == "Logits" else "prelogits"
    with h5py.File(fixture / f"reference_{stem}.h5") as f:
        names = [n.decode() if isinstance(n, bytes) else str(n) for n in f["filenames"][:]]
        return names, f[name][:]


def test_torch_inception_v4_matches_the_tf_slim_reference(fixture, weights):
    """The fixture's six images (gray and RGB, square and not) through the torch backend on
    the CPU, float32: both end points within 1e-4 relative L2 (measured ~8e-7)."""
    names, logits = reference(fixture, "Logits")
    _, prelogits = reference(fixture, "PreLogitsFlatten")
    with TorchNetwork("fixture", weights=weights, batch_size=4, threads=2) as network:
        ours = network.extract_layers([fixture / "images" / n for n in names])
        assert network.precision_in_use == "float32" and network.device.startswith("CPU")
    assert relative_l2(ours["Logits"], logits) < 1e-4
    assert relative_l2(ours["PreLogitsFlatten"], prelogits) < 1e-4


def test_preprocessing_equals_tensorflows(fixture):
    """Crop, bilinear resize and scaling as TensorFlow computes them, on the fixture's images
    and on odd sizes where the crop's rounding and the resize's edge matter."""
    import tensorflow as tf
    from PIL import Image

    from oath.network.inception_v4 import preprocess_image

    rng = np.random.RandomState(3)
    encoded = [p.read_bytes() for p in sorted((fixture / "images").glob("*.png"))]
    for shape in [(37, 301), (300, 299, 3), (64, 65, 4)]:
        buffer = io.BytesIO()
        Image.fromarray(rng.randint(0, 256, shape).astype(np.uint8)).save(buffer, "PNG")
        encoded.append(buffer.getvalue())
    for data in encoded:
        expected = preprocess_image(tf.constant(data)).numpy()
        assert np.abs(preprocess_png(data) - expected).max() < 1e-6
    # classify hands the network gray pixels, not PNGs: the same input as their PNG's
    gray = rng.randint(0, 256, (64, 48)).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(gray).save(buffer, "PNG")
    assert np.array_equal(preprocess_pixels(gray), preprocess_png(buffer.getvalue()))


def test_checkpoint_weights_are_converted_once_into_a_cache(random_checkpoint, weights, caplog):
    """The session's checkpoint (seed 1804: the fixture's values) read with TensorFlow, cached
    by its SHA-256, then read from the cache without TensorFlow."""
    from oath.network.checkpoint import checkpoint_sha256

    sha = checkpoint_sha256(random_checkpoint)
    converted = checkpoint_weights(random_checkpoint, sha)
    assert weights_cache_path(sha).is_file()
    assert sorted(converted) == sorted(name for name, _ in network_variables())
    for name, values in weights.items():
        np.testing.assert_array_equal(converted[name], values)
    with caplog.at_level(logging.INFO, logger="oath.network.inception_v4_torch"):
        again = checkpoint_weights(random_checkpoint, sha)
    assert "from the cache" in caplog.text
    biases = "InceptionV4/Logits/Logits/biases"
    np.testing.assert_array_equal(again[biases], weights[biases])
    with pytest.raises(WeightsError, match="fixture.*missing InceptionV4/Conv2d_1a_3x3/weights"):
        TorchNetwork("fixture", weights={})


def shard(path: Path, names: list[str], backend: str | None) -> Path:
    attrs = {"weights": "w", "checkpoint_sha256": "0" * 64, "precision": "float32"}
    if backend:
        attrs["backend"] = backend
    write_features(path, Features(names, np.ones((len(names), 1001), np.float32), attrs))
    return path


def test_shards_of_two_backends_are_not_merged(tmp_path):
    tf_shard = shard(tmp_path / "a.h5", ["00001_0.png"], "tensorflow")
    torch_shard = shard(tmp_path / "b.h5", ["00002_0.png"], "torch")
    with pytest.raises(ValueError, match="disagree on 'backend'.*'tensorflow' in .*a.h5"):
        merge_feature_shards([tf_shard, torch_shard], tmp_path / "merged.h5")
    # files from before the backend was recorded were made by TensorFlow
    old = shard(tmp_path / "c.h5", ["00003_0.png"], None)
    merge_feature_shards([tf_shard, old], tmp_path / "merged.h5")
    assert read_features(tmp_path / "merged.h5").attrs["backend"] == "tensorflow"


@pytest.mark.e2e
def test_the_demo_on_torch_gives_tensorflows_features_and_labels(
    demo_run, random_checkpoint, tmp_path
):
    """The demo's shards extracted and its images classified in-process with backend torch:
    features within 1e-4 of the workflow's TensorFlow features, and a model trained on those
    gives the same labels to both, through extraction and through classify."""
    workdir, _ = demo_run
    reference_file = workdir / "results" / "features" / "auroral_feat.h5"
    tf_features = read_features(reference_file)
    shards = []
    for manifest in sorted((workdir / "results" / "rotated" / "shards").glob("*.txt")):
        images = read_manifest(manifest, workdir / "results" / "rotated")
        out = tmp_path / f"{manifest.stem}.h5"
        extract_shard(images, random_checkpoint, out, weights="demo", backend="torch", threads=2)
        shards.append(out)
    merge_feature_shards(shards, tmp_path / "auroral_feat.h5")
    ours = read_features(tmp_path / "auroral_feat.h5")
    assert ours.filenames == tf_features.filenames
    assert (ours.attrs["backend"], tf_features.attrs["backend"]) == ("torch", "tensorflow")
    assert ours.attrs["checkpoint_sha256"] == tf_features.attrs["checkpoint_sha256"]
    assert "torch_version" in ours.attrs and "tensorflow_version" not in ours.attrs
    assert relative_l2(ours.logits, tf_features.logits) < 1e-4
    assert relative_l2(ours.prelogits, tf_features.prelogits) < 1e-4

    classifications = next(workdir.rglob("classifications.csv"))
    model = tmp_path / "model.npz"
    train_model(str(reference_file), str(classifications), ["class6", "class2"], 0.03, str(model))
    fitted = load_model(model)
    expected = predict(fitted, tf_features.logits)
    got = predict(fitted, ours.logits)
    for labels in ("class6", "class2"):
        np.testing.assert_array_equal(got[labels].classes, expected[labels].classes)
    # classify's own route (pixels, not PNGs) on one image in three, from both shards: the
    # torch forward passes of all 36 again would check nothing the 12 do not
    every_third = slice(None, None, 3)
    chosen = tf_features.filenames[every_third]
    table = classify_shard(
        [workdir / "results" / "rotated" / name for name in chosen],
        random_checkpoint,
        model,
        tmp_path / "shard.parquet",
        extras=tmp_path / "shard.extra",
        backend="torch",
    )
    assert (table["status"] == "ok").all()
    for labels in ("class6", "class2"):
        classes = expected[labels].classes[every_third]
        np.testing.assert_array_equal(table[labels].to_numpy(int), classes)
    assert pd.read_parquet(tmp_path / "shard.parquet").shape[0] == len(chosen) == 12
