"""`dataset: oath` end to end against a tarball served on 127.0.0.1: download, unpack, rotate,
extract, fit on ours and the published features, compare, report; a second run has nothing
to do. The real OATH URL is never contacted."""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import tarfile
import threading

import numpy as np
import pytest

from oath.dataset.table import load_classifications, rotated_name
from oath.demo.dataset import write_demo_dataset
from oath.network.featurefile import Features, write_features

from .workflow import (
    RIDGE_ONLY,
    e2e_config,
    place_demo_checkpoint,
    planned_jobs,
    snakemake,
    write_config,
)

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def served_tarball(tmp_path_factory):
    """A 36-image data set in the OATH layout, with published features, as a .tgz on a server."""
    root = tmp_path_factory.mktemp("served")
    dataset = root / "build" / "oath_v1.1"
    write_demo_dataset(dataset, n_images=36, seed=21, image_size=64)
    table = load_classifications(dataset / "classifications" / "classifications.csv")
    names = [rotated_name(p, a) for p, a in zip(table["picNum"], table["angle"], strict=True)]
    published = np.random.RandomState(0).randn(len(names), 1001).astype(np.float32)
    write_features(dataset / "features" / "auroral_feat.h5", Features(names, published, {}))
    www = root / "www"
    www.mkdir()
    tarball = www / "oath_test.tgz"
    with tarfile.open(tarball, "w:gz") as tar:
        tar.add(dataset, arcname="oath_v1.1")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(www))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/oath_test.tgz"
    yield url, hashlib.sha256(tarball.read_bytes()).hexdigest()
    server.shutdown()
    server.server_close()


# One shard (picNums 1-36), one label set and one split: what these tests check does not depend
# on the shard, label set or split count (the demo run's tests check several of each, and the
# merge); 2 ridge fits and 2 sweeps (ours and the published features) instead of 8 and 4.
LABELS = ["class6"]
RIDGE = e2e_config()["ridge"] | {"n_splits": 1}


def oath_config(workdir, url, sha256):
    write_config(
        workdir,
        dataset="oath",
        checkpoint="random",
        oath={"url": url, "sha256": sha256, "n_images": 36},
        shard_size=64,
        labels=LABELS,
        ridge=RIDGE,
        **RIDGE_ONLY,
    )


def test_dry_run_lists_download_rotation_extraction_fits_and_report(tmp_path, served_tarball):
    oath_config(tmp_path, *served_tarball)
    jobs = planned_jobs(tmp_path)
    assert jobs["download_archive"] == 1 and jobs["unpack_oath"] == 1
    assert jobs["rotate_shard"] == 1 and jobs["extract_shard"] == 1
    # one fit per label set and split, on ours and on the published features
    assert jobs["fit_ridge"] == 2 * len(LABELS) * RIDGE["n_splits"]
    assert jobs["sweep_alpha"] == 2 * len(LABELS)
    assert jobs["compare_features"] == 1 and jobs["render_report"] == 1


def test_replication_runs_then_has_nothing_to_do(tmp_path, served_tarball, random_checkpoint):
    oath_config(tmp_path, *served_tarball)
    place_demo_checkpoint(tmp_path, random_checkpoint)
    snakemake(tmp_path)
    assert len(list((tmp_path / "results" / "rotated").glob("*.png"))) == 36
    comparison = json.loads(
        (tmp_path / "results/features/comparison_with_published.json").read_text()
    )
    assert comparison["n_compared"] == 36
    summary = (tmp_path / "results" / "report" / "summary.md").read_text()
    assert "Our features and the published ones" in summary
    assert planned_jobs(tmp_path) == {}  # the per-image plan now finds everything in place


def test_wrong_checksum_stops_with_what_to_do_and_leaves_nothing(
    tmp_path, served_tarball, random_checkpoint
):
    url, _ = served_tarball
    oath_config(tmp_path, url, "0" * 64)
    place_demo_checkpoint(tmp_path, random_checkpoint)  # what the run goes on with meanwhile
    done = snakemake(tmp_path, check=False)
    assert done.returncode != 0
    log = done.stdout + done.stderr
    logs = "".join(p.read_text() for p in (tmp_path / "logs").rglob("*.log"))
    assert "SHA-256" in logs or "sha256" in logs.lower()
    assert url in logs and "by hand" in logs
    assert "download_archive" in log
    assert not list((tmp_path / "resources" / "downloads").glob("*"))
