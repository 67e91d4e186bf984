"""Tests for oath.network.features, oath.network.checkpoint and oath.network.inception_v4:
Inception-v4 parity,
checkpoints, extraction errors, shard merging.

The parity test needs ../shared/fixtures/inception_v4 beside the checkout and skips without it;
everything else runs on the demo checkpoint that oath writes itself. Graphs and checkpoints are
built once per session (each checkpoint is ~185 MB in a temporary folder).
"""

from __future__ import annotations

import hashlib
import logging
import resource
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

import oath.network.inception_v4
from oath.demo.dataset import draw_sky
from oath.imaging.png import encode_png
from oath.network import _tf_compat
from oath.network.checkpoint import (
    CheckpointError,
    check_checkpoint,
    checkpoint_sha256,
    write_random_checkpoint,
)
from oath.network.device import batch_size_for, cpu_model, visible_gpus
from oath.network.featurefile import (
    PRELOGITS,
    FeatureFileError,
    Features,
    aligned_features,
    read_features,
    write_features,
)
from oath.network.features import (
    ImageError,
    InceptionV4Extractor,
    extract_logits,
    extract_shard,
    merge_feature_shards,
)
from oath.network.inception_v4 import (
    CACHE_DIR_ENV,
    NUM_CLASSES,
    PREPROCESSING,
    graph_cache_path,
    model_variables,
)

pytestmark = pytest.mark.network

FIXTURE = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "inception_v4"
PARITY_TOLERANCE = 1e-4  # relative L2 error against the reference TF-slim Logits/PreLogits
PRELOGITS_WIDTH = 1536
BFLOAT16_TOLERANCE = 2e-2  # relative L2 difference of bfloat16 against float32 features
DEMO_WEIGHTS = "demo: deterministic random weights (seed 1804), not the published Inception-v4"


def relative_error(ours: np.ndarray, reference: np.ndarray) -> float:
    return float(np.linalg.norm(ours - reference) / np.linalg.norm(reference))


def save_v2(prefix: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write a V2 checkpoint holding exactly these arrays."""
    tf, _ = _tf_compat.load()
    names = sorted(arrays)
    tf.raw_ops.SaveV2(
        prefix=str(prefix),
        tensor_names=names,
        shape_and_slices=[""] * len(names),
        tensors=[arrays[n] for n in names],
    )


def zeros_checkpoint(prefix: Path, **replace: tuple[int, ...] | None) -> Path:
    """A checkpoint of zeros with every Inception-v4 variable, except as ``replace`` says.

    ``replace`` maps a variable name (``/`` written as ``__``) to a new shape, or None to drop it.
    """
    changes = {name.replace("__", "/"): shape for name, shape in replace.items()}
    arrays = {}
    for name, shape in model_variables():
        shape = changes.get(name, shape)
        if shape is not None:
            arrays[name] = np.zeros(shape, np.float32)
    save_v2(prefix, arrays)
    return prefix


# ------------------------------------------------------------------------------------------
# Session fixtures
# ------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def fixture_dir() -> Path:
    if not (FIXTURE / "reference_logits.h5").is_file():
        pytest.skip("../shared/fixtures/inception_v4 is not beside this checkout")
    return FIXTURE


@pytest.fixture(scope="session")
def fixture_checkpoint(fixture_dir, tmp_path_factory) -> Path:
    """The parity fixture's seed-1804 checkpoint, built by its own make_checkpoint.py."""
    prefix = tmp_path_factory.mktemp("fixture_ckpt") / "inception_v4"
    subprocess.run(
        [sys.executable, str(fixture_dir / "make_checkpoint.py"), str(prefix), "--seed", "1804"],
        check=True,
        capture_output=True,
        timeout=600,
    )
    return prefix


@pytest.fixture(scope="session")
def demo_checkpoint(random_checkpoint) -> Path:
    return random_checkpoint  # the default seed: the fixture's, so the two must agree


@pytest.fixture(scope="session")
def sky_images(tmp_path_factory) -> list[Path]:
    """Five demo-like 64 px grayscale all-sky PNGs."""
    folder = tmp_path_factory.mktemp("sky")
    rng = np.random.RandomState(3)
    paths = []
    for index in range(5):
        path = folder / f"{index + 1:05d}_{index * 40}.png"
        path.write_bytes(encode_png(draw_sky(index, rng, size=64)))
        paths.append(path)
    return paths


@pytest.fixture(scope="session")
def extractor(demo_checkpoint):
    with InceptionV4Extractor(demo_checkpoint, batch_size=2, threads=2) as ex:
        yield ex


# ------------------------------------------------------------------------------------------
# (1) Parity with the reference TF-slim implementation
# ------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def parity_shard(fixture_dir, fixture_checkpoint, tmp_path_factory) -> Path:
    """The six fixture images extracted once (in reverse name order) with the seed-1804 weights."""
    names = read_features(fixture_dir / "reference_logits.h5").filenames
    images = [fixture_dir / "images" / name for name in reversed(names)]
    out = tmp_path_factory.mktemp("parity") / "shard.h5"
    extract_shard(images, fixture_checkpoint, out, weights="fixture seed 1804", batch_size=4)
    return out


def test_parity_with_reference_logits(fixture_dir, fixture_checkpoint, parity_shard):
    reference = read_features(fixture_dir / "reference_logits.h5")
    ours = read_features(parity_shard)
    assert ours.filenames == reference.filenames  # sorted by name, whatever the input order
    assert ours.logits.shape == (6, NUM_CLASSES)
    assert ours.logits.dtype == np.float32
    assert relative_error(ours.logits, reference.logits) < PARITY_TOLERANCE
    assert ours.attrs["weights"] == "fixture seed 1804"
    assert ours.attrs["checkpoint"] == str(fixture_checkpoint)
    assert ours.attrs["checkpoint_sha256"] == checkpoint_sha256(fixture_checkpoint)
    assert ours.attrs["precision"] == "float32"
    assert ours.attrs["preprocessing"] == PREPROCESSING
    assert ours.attrs["tensorflow_version"]


def test_parity_with_reference_prelogits(fixture_dir, parity_shard):
    """The pooled PreLogitsFlatten of the same forward pass, against the reference network's."""
    with h5py.File(fixture_dir / "reference_prelogits.h5", "r") as h5:
        names = [n.decode() if isinstance(n, bytes) else str(n) for n in h5["filenames"][()]]
        reference = np.asarray(h5[PRELOGITS][()], dtype=np.float32)
    ours = read_features(parity_shard)
    assert ours.filenames == names
    assert ours.prelogits is not None
    assert ours.prelogits.shape == (6, PRELOGITS_WIDTH) and ours.prelogits.dtype == np.float32
    assert relative_error(ours.prelogits, reference) < PARITY_TOLERANCE


def test_network_variables_match_published_checkpoint(fixture_dir):
    lines = (fixture_dir / "variables.txt").read_text().split("\n")
    published = [
        (name, tuple(int(d) for d in dims.split(",")))
        for name, dims in (line.split() for line in lines if line.strip())
    ]
    assert list(model_variables()) == published  # names, shapes and creation order


def test_demo_checkpoint_equals_fixture_checkpoint(fixture_checkpoint, demo_checkpoint):
    """The default seed writes byte for byte the checkpoint the reference Logits were computed
    with (the fixture's make_checkpoint.py --seed 1804)."""
    assert checkpoint_sha256(demo_checkpoint) == checkpoint_sha256(fixture_checkpoint)


# ------------------------------------------------------------------------------------------
# (2) Checkpoint checks name what is wrong, before any restore
# ------------------------------------------------------------------------------------------
MISSING = "InceptionV4/Mixed_6c/Branch_2/Conv2d_0d_7x1/BatchNorm/moving_mean"
MISSHAPEN = "InceptionV4/Logits/Logits/weights"


def test_checkpoint_missing_variable_is_named(tmp_path):
    prefix = zeros_checkpoint(tmp_path / "missing", **{MISSING.replace("/", "__"): None})
    with pytest.raises(CheckpointError, match=MISSING) as error:
        check_checkpoint(prefix)
    assert str(prefix) in str(error.value)
    assert "write_random_checkpoint" in str(error.value)  # says how to fix it


def test_checkpoint_misshapen_variable_is_named(tmp_path, sky_images):
    prefix = zeros_checkpoint(
        tmp_path / "misshapen", **{MISSHAPEN.replace("/", "__"): (1536, 1000)}
    )
    with pytest.raises(CheckpointError, match=f"{MISSHAPEN} has shape \\[1536, 1000\\]"):
        check_checkpoint(prefix)
    with pytest.raises(CheckpointError, match=MISSHAPEN):  # extraction checks before restoring
        extract_logits(sky_images[:1], prefix)


def test_checkpoint_absent_or_not_a_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint there"):
        check_checkpoint(tmp_path / "nothing")
    junk = tmp_path / "junk.ckpt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="junk.ckpt"):
        check_checkpoint(junk)


def test_v1_single_file_checkpoint(demo_checkpoint, extractor, sky_images, tmp_path):
    """The published checkpoint is one V1 file: it is hashed, checked and restored as such."""
    tf, _ = _tf_compat.load()
    reader = tf.train.load_checkpoint(str(demo_checkpoint))
    names = [name for name, _ in model_variables()]
    v1 = tmp_path / "inception_v4.ckpt"
    tf.raw_ops.Save(
        filename=str(v1), tensor_names=names, data=[reader.get_tensor(n) for n in names]
    )
    assert checkpoint_sha256(v1) == hashlib.sha256(v1.read_bytes()).hexdigest()
    check_checkpoint(v1)
    expected = extractor.extract(sky_images[:2])
    assert np.array_equal(extract_logits(sky_images[:2], v1, batch_size=2), expected)


# ------------------------------------------------------------------------------------------
# (3) The demo checkpoint is deterministic and complete
# ------------------------------------------------------------------------------------------
def test_write_random_checkpoint_is_deterministic(demo_checkpoint, tmp_path):
    again = tmp_path / "again" / "inception_v4"
    write_random_checkpoint(again, seed=1804)  # the seed given explicitly: same file
    assert checkpoint_sha256(again) == checkpoint_sha256(demo_checkpoint)
    check_checkpoint(again)
    files = sorted(p.name for p in again.parent.iterdir())
    assert files == ["inception_v4.data-00000-of-00001", "inception_v4.index"]  # no leftovers


def test_checkpoint_sha256_covers_index_and_data(demo_checkpoint):
    digest = hashlib.sha256()
    for suffix in (".data-00000-of-00001", ".index"):
        digest.update(Path(f"{demo_checkpoint}{suffix}").read_bytes())
    assert checkpoint_sha256(demo_checkpoint) == digest.hexdigest()


# ------------------------------------------------------------------------------------------
# The network graph cache
# ------------------------------------------------------------------------------------------
def _no_build(*args, **kwargs):
    raise AssertionError("the network was built with tf-slim instead of read from the cache")


def test_cached_graph_gives_the_built_networks_features(
    demo_checkpoint, sky_images, tmp_path, monkeypatch, caplog
):
    """The first extractor builds the graph and caches it; the next one imports it instead of
    calling tf-slim, and both give bit-identical Logits and PreLogitsFlatten."""
    images = sky_images[:2]  # one batch: what is compared is the graph, not the batching
    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path / "cache"))
    caplog.set_level(logging.INFO, logger="oath")
    with InceptionV4Extractor(demo_checkpoint, batch_size=2, threads=1) as extractor:
        built = extractor.extract_layers(images)
    cache = graph_cache_path()
    assert cache.parent == tmp_path / "cache" and cache.is_file()
    assert f"cached as {cache}" in caplog.text
    caplog.clear()
    monkeypatch.setattr(oath.network.inception_v4, "inception_v4_logits", _no_build)
    with InceptionV4Extractor(demo_checkpoint, batch_size=2, threads=1) as extractor:
        cached = extractor.extract_layers(images)
    assert f"cached graph {cache}" in caplog.text
    for name in built:
        assert np.array_equal(built[name], cached[name]), name


def test_damaged_or_unwritable_graph_cache_never_stops_extraction(
    extractor, demo_checkpoint, sky_images, tmp_path, monkeypatch, caplog
):
    """A damaged cache file is named, rebuilt and replaced; a cache folder that cannot be
    written only means the graph is built in the job."""
    images = sky_images[:2]
    expected = extractor.extract(images)
    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path / "cache"))
    cache = graph_cache_path()
    cache.parent.mkdir()
    cache.write_bytes(b"\x00not a graph" * 100)
    caplog.set_level(logging.INFO, logger="oath")
    with InceptionV4Extractor(demo_checkpoint, batch_size=2, threads=2) as rebuilt:
        assert np.array_equal(rebuilt.extract(images), expected)
    assert f"{cache}: unreadable cached network graph" in caplog.text
    assert f"cached as {cache}" in caplog.text and cache.stat().st_size > 1_000_000

    (tmp_path / "a_file").write_text("")
    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path / "a_file" / "cache"))
    caplog.clear()
    with InceptionV4Extractor(demo_checkpoint, batch_size=2, threads=2) as uncached:
        assert np.array_equal(uncached.extract(images), expected)
    assert "not cached" in caplog.text


def test_graph_cache_is_keyed_by_tensorflow_version(monkeypatch):
    """A new TensorFlow (or tf-slim, or network code) writes a new cache file."""
    tf, _ = _tf_compat.load()
    before = graph_cache_path()
    monkeypatch.setattr(tf, "__version__", tf.__version__ + ".post1")
    assert graph_cache_path() != before and graph_cache_path().parent == before.parent


# ------------------------------------------------------------------------------------------
# Extraction: order, batching, errors
# ------------------------------------------------------------------------------------------
def test_both_feature_sets_come_from_the_same_forward_pass(extractor, demo_checkpoint, sky_images):
    """Row i of Logits is the Logits layer applied to row i of PreLogitsFlatten."""
    tf, _ = _tf_compat.load()
    reader = tf.train.load_checkpoint(str(demo_checkpoint))
    weights = reader.get_tensor("InceptionV4/Logits/Logits/weights")
    biases = reader.get_tensor("InceptionV4/Logits/Logits/biases")
    layers = extractor.extract_layers(sky_images[::-1])  # batches of 2: 2 + 2 + 1
    assert layers[PRELOGITS].shape == (5, PRELOGITS_WIDTH)
    assert layers[PRELOGITS].dtype == np.float32 and np.isfinite(layers[PRELOGITS]).all()
    recomputed = layers[PRELOGITS].astype(np.float64) @ weights + biases
    assert relative_error(layers["Logits"], recomputed) < 1e-5
    assert np.array_equal(extractor.extract(sky_images[::-1]), layers["Logits"])
    assert extractor.extract_layers([])[PRELOGITS].shape == (0, PRELOGITS_WIDTH)


def test_rows_follow_input_order_across_batches(extractor, sky_images):
    forward = extractor.extract(sky_images)  # batches of 2: 2 + 2 + 1
    backward = extractor.extract(sky_images[::-1])
    assert forward.shape == (5, NUM_CLASSES) and forward.dtype == np.float32
    assert np.all(np.isfinite(forward))
    np.testing.assert_allclose(backward[::-1], forward, rtol=1e-5, atol=1e-5)
    assert extractor.extract([]).shape == (0, NUM_CLASSES)


def test_extraction_reuses_its_memory_between_batches(demo_checkpoint, sky_images):
    """After the first batches, a forward pass does not page-fault its activations in again.

    With glibc's defaults each image cost ~20,000 minor page faults and ~90 ms of kernel time
    (a quarter of the run on a 2-core EPYC); see oath.network._tf_compat.keep_freed_memory.
    """
    # One batch of 8: big enough for glibc's defaults to page-fault ~4,600 times an image
    # (measured), so the test tells the two apart; ~80 with oath's settings.
    images = (sky_images * 2)[:8]
    with InceptionV4Extractor(demo_checkpoint, batch_size=8, threads=2) as extractor:
        extractor.extract(images)  # the allocators grow to their working size
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        extractor.extract(images)
        faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / len(images)
    assert faults < 2000, f"{faults:.0f} minor page faults an image"


def test_tf_slim_loads_without_scikit_learn_which_stays_importable():
    """A fresh extraction process does not pay for scikit-learn (tf-slim's unused loss), and a
    classify job can still import it after TensorFlow."""
    code = (
        "import sys\n"
        "from oath.network import _tf_compat\n"
        "_tf_compat.load()\n"
        "print('sklearn' in sys.modules)\n"
        "from sklearn.linear_model import RidgeClassifier\n"
        "print(RidgeClassifier.__name__)\n"
    )
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=root, check=True
    )
    assert done.stdout.split() == ["False", "RidgeClassifier"]


def test_corrupt_or_missing_image_is_named(extractor, sky_images, tmp_path):
    truncated = tmp_path / "00009_10.png"
    truncated.write_bytes(sky_images[0].read_bytes()[:200])
    not_png = tmp_path / "00010_20.png"
    not_png.write_text("this is not an image")
    for bad in (truncated, not_png):
        with pytest.raises(ImageError, match=bad.name):
            extractor.extract([*sky_images[:3], bad])
    with pytest.raises(ImageError, match="00011_30.png"):
        extractor.extract([tmp_path / "00011_30.png"])
    assert extractor.extract(sky_images[:1]).shape == (1, NUM_CLASSES)  # session still usable


def test_extract_shard_refuses_duplicate_file_names(demo_checkpoint, sky_images, tmp_path):
    other = tmp_path / sky_images[0].name
    other.write_bytes(sky_images[0].read_bytes())
    with pytest.raises(ValueError, match=sky_images[0].name):
        extract_shard([sky_images[0], other], demo_checkpoint, tmp_path / "x.h5", weights="w")


# ------------------------------------------------------------------------------------------
# (5) bfloat16 mode
# ------------------------------------------------------------------------------------------
def test_bfloat16_close_to_float32(extractor, demo_checkpoint, sky_images):
    images = sky_images[:3]
    fp32 = extractor.extract(images)
    bf16 = extract_logits(images, demo_checkpoint, batch_size=3, precision="bfloat16")
    assert bf16.dtype == np.float32
    assert relative_error(bf16, fp32) < BFLOAT16_TOLERANCE


def test_feature_file_names_the_precision_really_used(demo_checkpoint, sky_images, tmp_path):
    """bfloat16 is honoured only where the CPU supports it; the file must say which it got."""
    images = sky_images[:2]
    for precision in ("float32", "bfloat16"):
        extract_shard(
            images, demo_checkpoint, tmp_path / f"{precision}.h5", weights="w", precision=precision
        )
    fp32, bf16 = (read_features(tmp_path / f"{p}.h5") for p in ("float32", "bfloat16"))
    assert fp32.attrs["precision"] == "float32"
    computed_in_bfloat16 = not np.array_equal(bf16.logits, fp32.logits)
    assert bf16.attrs["precision"] == ("bfloat16" if computed_in_bfloat16 else "float32")
    # ... and the device that ran the network, with the CPU's or the GPU's name
    tf, _ = _tf_compat.load()
    gpus = visible_gpus(tf)
    assert fp32.attrs["device"] == (f"GPU: {gpus[0]}" if gpus else f"CPU: {cpu_model()}")


def test_unknown_precision_is_refused(demo_checkpoint, sky_images):
    with pytest.raises(ValueError, match="float16"):
        extract_logits(sky_images[:1], demo_checkpoint, precision="float16")


# ------------------------------------------------------------------------------------------
# (4) Merging shards
# ------------------------------------------------------------------------------------------
def make_shard(path: Path, names: list[str], **attrs: str) -> Path:
    base = {
        "weights": DEMO_WEIGHTS,
        "checkpoint": "resources/inception_v4/inception_v4",
        "checkpoint_sha256": "ab" * 32,
        "precision": "float32",
        **attrs,
    }
    seeds = [int(name[:5]) for name in names]
    logits = np.stack([np.random.RandomState(s).randn(NUM_CLASSES) for s in seeds])
    prelogits = np.stack([np.random.RandomState(s).rand(PRELOGITS_WIDTH) for s in seeds])
    features = Features(names, logits.astype(np.float32), base, prelogits=prelogits)
    write_features(path, features)
    return path


def test_merge_is_independent_of_shard_count_and_order(tmp_path):
    names = [f"{i:05d}_{i * 7 % 360}.png" for i in range(1, 11)]
    a = make_shard(tmp_path / "a.h5", names[6:])
    b = make_shard(tmp_path / "b.h5", names[:3])
    c = make_shard(tmp_path / "c.h5", names[3:6])
    whole = make_shard(tmp_path / "whole.h5", names[::-1])

    merged = []
    for index, shards in enumerate(([a, b, c], [c, a, b], [whole])):
        out = tmp_path / f"merged_{index}.h5"
        merge_feature_shards(shards, out)
        merged.append(read_features(out))
    for other in merged[1:]:
        assert other.filenames == merged[0].filenames == sorted(names)
        assert np.array_equal(other.logits, merged[0].logits)
        assert np.array_equal(other.prelogits, merged[0].prelogits)
        assert other.attrs == merged[0].attrs
    for row, name in enumerate(merged[0].filenames):  # both feature sets follow the file names
        seed = int(name[:5])
        logits = np.random.RandomState(seed).randn(NUM_CLASSES).astype(np.float32)
        prelogits = np.random.RandomState(seed).rand(PRELOGITS_WIDTH).astype(np.float32)
        assert np.array_equal(merged[0].logits[row], logits)
        assert np.array_equal(merged[0].prelogits[row], prelogits)
    assert merged[0].attrs["weights"] == DEMO_WEIGHTS
    assert merged[0].attrs["precision"] == "float32"
    assert merged[0].attrs["checkpoint"] == "resources/inception_v4/inception_v4"


def test_merge_lists_the_devices_of_its_shards_but_never_mixes_precisions(tmp_path):
    """float32 from a CPU node and a GPU node agree within tolerance: merged, both named."""
    cpu = make_shard(tmp_path / "a.h5", ["00001_0.png"], device="CPU: AMD EPYC")
    gpu = make_shard(tmp_path / "b.h5", ["00002_0.png"], device="GPU: NVIDIA H200")
    also_cpu = make_shard(tmp_path / "c.h5", ["00003_0.png"], device="CPU: AMD EPYC")
    merge_feature_shards([cpu, gpu, also_cpu], tmp_path / "merged.h5")
    merged = read_features(tmp_path / "merged.h5")
    assert merged.attrs["device"] == "CPU: AMD EPYC; GPU: NVIDIA H200"
    bf16 = make_shard(tmp_path / "d.h5", ["00004_0.png"], device="GPU: X", precision="bfloat16")
    with pytest.raises(ValueError, match="precision"):
        merge_feature_shards([cpu, bf16], tmp_path / "refused.h5")


def test_a_gpu_gets_its_own_batch_size():
    assert batch_size_for("GPU: NVIDIA H200", 16, 64) == 64
    assert batch_size_for("CPU: AMD EPYC", 16, 64) == 16
    assert batch_size_for("GPU: NVIDIA H200", 16, None) == 16


def test_merge_keeps_only_common_attributes(tmp_path):
    """Same checkpoint bytes at two paths is fine, but the merged file claims neither path."""
    a = make_shard(tmp_path / "a.h5", ["00001_0.png"], checkpoint="here/inception_v4")
    b = make_shard(tmp_path / "b.h5", ["00002_0.png"], checkpoint="there/inception_v4")
    merge_feature_shards([a, b], tmp_path / "merged.h5")
    merged = read_features(tmp_path / "merged.h5")
    assert merged.filenames == ["00001_0.png", "00002_0.png"]
    assert "checkpoint" not in merged.attrs
    assert merged.attrs["checkpoint_sha256"] == "ab" * 32


def test_merge_ignores_the_provenance_of_empty_shards(tmp_path):
    """A shard of new images that all failed to read holds no features to disagree with."""
    a = make_shard(tmp_path / "a.h5", ["00001_0.png"])
    empty = tmp_path / "empty.h5"
    write_features(
        empty,
        Features([], np.zeros((0, NUM_CLASSES), np.float32), {"precision": "bfloat16"}),
    )
    merge_feature_shards([empty, a], tmp_path / "merged.h5")
    merged = read_features(tmp_path / "merged.h5")
    assert merged.filenames == ["00001_0.png"] and merged.attrs["precision"] == "float32"


def test_merge_refuses_duplicates(tmp_path):
    a = make_shard(tmp_path / "a.h5", ["00001_0.png", "00002_0.png"])
    b = make_shard(tmp_path / "b.h5", ["00002_0.png", "00003_0.png"])
    with pytest.raises(ValueError, match=r"00002_0\.png.*a\.h5.*b\.h5"):
        merge_feature_shards([a, b], tmp_path / "merged.h5")
    assert not (tmp_path / "merged.h5").exists()


@pytest.mark.parametrize(
    "attr, value",
    [
        ("weights", "published inception_v4_2016_09_09"),
        ("checkpoint_sha256", "cd" * 32),
        ("precision", "bfloat16"),
    ],
)
def test_merge_refuses_mixed_provenance(tmp_path, attr, value):
    a = make_shard(tmp_path / "a.h5", ["00001_0.png"])
    b = make_shard(tmp_path / "b.h5", ["00002_0.png"], **{attr: value})
    with pytest.raises(ValueError, match=rf"'{attr}'.*a\.h5.*b\.h5"):
        merge_feature_shards([a, b], tmp_path / "merged.h5")


def test_merge_of_shards_without_prelogits_keeps_logits_only(tmp_path):
    """Shards extracted before PreLogitsFlatten was written still merge (Logits only)."""
    a = make_shard(tmp_path / "a.h5", ["00001_0.png"])
    old = make_shard(tmp_path / "old.h5", ["00002_0.png"])
    shard = read_features(old)
    write_features(old, Features(shard.filenames, shard.logits, shard.attrs))  # Logits only
    merge_feature_shards([a, old], tmp_path / "merged.h5")
    merged = read_features(tmp_path / "merged.h5")
    assert merged.filenames == ["00001_0.png", "00002_0.png"] and merged.prelogits is None
    with h5py.File(tmp_path / "merged.h5", "r") as h5:
        assert set(h5) == {"filenames", "Logits"}


def test_a_published_layout_file_reads_as_logits_and_names_itself_for_prelogits(tmp_path):
    """The published auroral_feat.h5 (filenames, Logits, no attributes) works as before; asking
    it for PreLogitsFlatten says which file and what to do."""
    path = tmp_path / "auroral_feat.h5"
    names = ["00001_0.png", "00002_90.png"]
    logits = np.arange(2 * NUM_CLASSES, dtype=np.float32).reshape(2, NUM_CLASSES)
    with h5py.File(path, "w") as h5:
        h5["filenames"] = np.array(names, dtype="S")
        h5["Logits"] = logits
    features = read_features(path)
    assert features.filenames == names and features.prelogits is None
    pic_nums = np.array([2, 1])
    assert np.array_equal(aligned_features(path, features, pic_nums, "c.csv"), logits[::-1])
    with pytest.raises(FeatureFileError, match=r"auroral_feat\.h5 holds no 'PreLogitsFlatten'"):
        aligned_features(path, features, pic_nums, "c.csv", PRELOGITS)
    with pytest.raises(FeatureFileError, match="Re-extract the features"):
        features.layer(PRELOGITS, path)
