"""oath.fit.model: train on split 0's training part, classify the test part as if it were new."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import RidgeClassifier

from oath.archive.themis import write_prepared_table
from oath.dataset.splits import make_split, write_split
from oath.dataset.table import CLASS6_NAMES, load_classifications
from oath.fit.model import (
    ModelError,
    classify_to_csv,
    contact_sheet,
    load_model,
    plot_class_counts,
    predict,
    score_column,
    train_model,
)
from oath.imaging.png import encode_png
from oath.network.featurefile import (
    PRELOGITS,
    FeatureFileError,
    Features,
    read_features,
    write_features,
)

N_PER_CLASS = 12
N_FEATURES = 1001
ATTRS = {
    "weights": "random (test)",
    "checkpoint": "ckpt/inception_v4",
    "checkpoint_sha256": "ab" * 32,
    "precision": "float32",
}


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict:
    """72 labelled images with class structure in 1001-d features, a split file, a model."""
    root = tmp_path_factory.mktemp("predict")
    rng = np.random.RandomState(5)
    n = 6 * N_PER_CLASS
    class6 = np.repeat(np.arange(6), N_PER_CLASS)
    pic_nums = rng.permutation(np.arange(1, n + 1))  # table order is not picNum order
    centres = rng.randn(6, N_FEATURES).astype(np.float32)
    logits = (centres[class6] + 2.0 * rng.randn(n, N_FEATURES)).astype(np.float32)
    angles = rng.randint(0, 360, n)
    names = [f"{p:05d}_{a}.png" for p, a in zip(pic_nums, angles, strict=True)]
    features = root / "auroral_feat.h5"
    write_features(features, Features(filenames=names, logits=logits, attrs=dict(ATTRS)))
    table = pd.DataFrame(
        {
            "class2": (class6 >= 3).astype(int),
            "class6": class6,
            "picNum": pic_nums,
            "label": [CLASS6_NAMES[c] for c in class6],
            "angle": angles,
        }
    )
    classifications = root / "classifications.csv"
    classifications.write_text("# synthetic test table\n" + table.to_csv(index=False))
    split_file = root / "train_test_split.csv"
    write_split(split_file, make_split(n, 5, 1804))
    model = root / "model.npz"
    train_model(
        str(features),
        str(classifications),
        ["class6", "class2"],
        0.03,
        str(model),
        split_file=str(split_file),
        split=0,
        train_fraction=0.7,
        provenance={"dataset": "synthetic test"},
    )
    # sklearn on the same training part, rows in table order (features matched by picNum)
    loaded = load_classifications(classifications)
    row_of = {
        int(name.split("_")[0]): i for i, name in enumerate(read_features(features).filenames)
    }
    X = read_features(features).logits[[row_of[int(p)] for p in loaded["picNum"]]]
    split = make_split(n, 5, 1804)[0]
    n_train = round(0.7 * n)
    train, test = split[:n_train], split[n_train:]
    reference = {
        name: RidgeClassifier(alpha=0.03).fit(X[train], loaded[name].to_numpy()[train])
        for name in ("class6", "class2")
    }
    return {
        "root": root,
        "model": model,
        "X": X,
        "train": train,
        "test": test,
        "table": loaded,
        "reference": reference,
    }


def new_images(root: Path, X_new: np.ndarray, attrs: dict) -> tuple[Path, Path]:
    """The test part as 'new images': PNGs, their feature file and a manifest with failures."""
    png_dir = root / "png"
    png_dir.mkdir(exist_ok=True)
    names = [f"new_{k:03d}.png" for k in range(len(X_new))]  # sorted = test order
    rng = np.random.RandomState(1)
    for name in names:
        (png_dir / name).write_bytes(encode_png(rng.randint(0, 255, (32, 32)).astype(np.uint8)))
    features = root / "new_feat.h5"
    write_features(features, Features(filenames=names, logits=X_new, attrs=attrs))
    sites = ["gill", "fsmi", ""]
    rows = [
        {
            "file": f"in/{'x' if k % 3 == 2 else '20140310'}_{k:03d}.pgm.gz",
            "frame": k % 20,
            # two sites with times over two hours; the third without times (file order)
            "timestamp": "" if k % 3 == 2 else f"2014-03-10T{6 + k % 2:02d}:{k:02d}:00.000000Z",
            "site": sites[k % 3],
            "png": str(png_dir / name),
            "status": "ok",
        }
        for k, name in enumerate(names)
    ]
    rows = [rows[k] for k in np.random.RandomState(2).permutation(len(rows))]  # not file order
    rows += [
        {
            "file": "in/20140310_0700_gill_themis19_full.pgm.gz",
            "frame": None,
            "timestamp": "",
            "site": "",
            "png": "",
            "status": "failed: pyucalgarysrs could not read it (truncated)",
        },
        {
            "file": "in/notes.txt",
            "frame": None,
            "timestamp": "",
            "site": "",
            "png": "",
            "status": "failed: unsupported file type",
        },
    ]
    manifest = root / "manifest.csv"
    table = pd.DataFrame(rows)
    table["frame"] = table["frame"].astype("Int64")
    write_prepared_table(table, manifest)
    return features, manifest


def test_predict_reproduces_ridge_classifier_exactly(data):
    X_test = data["X"][data["test"]]
    got = predict(load_model(data["model"]), X_test)
    for name, clf in data["reference"].items():
        np.testing.assert_array_equal(got[name].classes, clf.predict(X_test))
        np.testing.assert_array_equal(got[name].scores, clf.decision_function(X_test))
    assert got["class2"].scores.ndim == 1  # binary: one score, class = classes[score > 0]
    assert got["class6"].names[0] == CLASS6_NAMES[got["class6"].classes[0]]


def test_model_file_has_provenance_and_no_pickle(data):
    with zipfile.ZipFile(data["model"]) as zf:
        assert all(name.endswith(".npy") for name in zf.namelist())
    with np.load(data["model"], allow_pickle=False) as npz:  # raises on any object array
        assert all(npz[key].dtype != object for key in npz.files)
    info = load_model(data["model"]).provenance
    assert info["alpha"] == 0.03 and info["labels"] == ["class6", "class2"]
    training = info["training"]
    assert training["split"] == 0 and training["n_train"] == len(data["train"])
    train_pics = np.sort(data["table"]["picNum"].to_numpy(dtype=np.int64)[data["train"]])
    assert training["train_picnums_sha256"] == hashlib.sha256(train_pics.tobytes()).hexdigest()
    assert info["features"]["checkpoint_sha256"] == ATTRS["checkpoint_sha256"]
    assert info["features"]["weights"] == ATTRS["weights"]
    assert set(info["versions"]) >= {"sklearn", "numpy", "oath"}
    assert info["run"] == {"dataset": "synthetic test"}


def test_classify_csv_summary_and_contact_sheet(data, tmp_path):
    X_test = data["X"][data["test"]]
    features, manifest = new_images(tmp_path, X_test, dict(ATTRS))
    out_csv = tmp_path / "predictions.csv"
    classify_to_csv(str(features), str(manifest), str(data["model"]), str(out_csv))
    result = pd.read_csv(out_csv)
    ok = result[result["status"] == "ok"]
    assert len(ok) == len(X_test)
    # manifest rows are shuffled: put the CSV back in feature-file (= test) order
    ok = ok.iloc[np.argsort([Path(p).name for p in ok["png"]], kind="stable")]
    assert [Path(p).name for p in ok["png"]] == [f"new_{k:03d}.png" for k in range(len(X_test))]
    clf6, clf2 = data["reference"]["class6"], data["reference"]["class2"]
    np.testing.assert_array_equal(ok["class6"].to_numpy(), clf6.predict(X_test))
    assert ok["class6_name"].tolist() == [CLASS6_NAMES[c] for c in clf6.predict(X_test)]
    scores6 = ok[[score_column("class6", c) for c in CLASS6_NAMES]].to_numpy()
    np.testing.assert_array_equal(scores6, clf6.decision_function(X_test).astype(np.float64))
    np.testing.assert_array_equal(ok["class2"].to_numpy(), clf2.predict(X_test))
    d = clf2.decision_function(X_test).astype(np.float64)
    np.testing.assert_array_equal(ok["class2_score_no_aurora"].to_numpy(), d)
    np.testing.assert_array_equal(ok["class2_score_aurora"].to_numpy(), -d)

    failed = result[result["status"] != "ok"]
    assert failed["file"].tolist() == ["in/20140310_0700_gill_themis19_full.pgm.gz", "in/notes.txt"]
    assert failed["status"].str.startswith("failed: ").all()
    assert failed[["class6", "class6_name", "class2", "class2_score_aurora"]].isna().all().all()

    summary, sheet = tmp_path / "counts.png", tmp_path / "sheet.png"
    plot_class_counts(str(out_csv), str(summary))
    contact_sheet(str(out_csv), str(sheet), per_class=3)
    import matplotlib.pyplot as plt

    for picture in (summary, sheet):
        assert picture.stat().st_size > 10_000
        pixels = plt.imread(picture)
        assert min(pixels.shape[:2]) > 300 and pixels[..., :3].std() > 0.05


def test_features_from_other_weights_are_refused(data, tmp_path):
    other = dict(ATTRS, checkpoint_sha256="cd" * 32)
    features, manifest = new_images(tmp_path, data["X"][data["test"]][:3], other)
    with pytest.raises(ModelError, match="checkpoint"):
        classify_to_csv(str(features), str(manifest), str(data["model"]), str(tmp_path / "p.csv"))


def test_a_model_refuses_features_of_the_other_feature_set(data, tmp_path):
    """The model records the feature set it was trained on and scores no other."""
    feats = read_features(data["root"] / "auroral_feat.h5")
    rng = np.random.RandomState(9)
    pooled = np.abs(rng.randn(len(feats.filenames), 1536)).astype(np.float32)
    both = tmp_path / "both.h5"
    write_features(both, Features(feats.filenames, feats.logits, feats.attrs, pooled))
    pooled_model = tmp_path / "pooled.npz"
    classifications = str(data["root"] / "classifications.csv")
    train_model(str(both), classifications, ["class6"], 0.03, str(pooled_model), layer=PRELOGITS)
    model = load_model(pooled_model)
    assert model.provenance["features"]["layer"] == PRELOGITS
    assert model.provenance["features"]["n_features"] == 1536
    assert load_model(data["model"]).provenance["features"]["layer"] == "Logits"

    X_test = data["X"][data["test"]]
    with pytest.raises(ModelError, match="trained on PreLogitsFlatten features and cannot score"):
        predict(model, X_test)
    with pytest.raises(ModelError, match="trained on Logits features and cannot score Pre"):
        predict(load_model(data["model"]), pooled[:3], PRELOGITS)

    # new images: a Logits-only file is refused, one with both is scored on PreLogitsFlatten
    features, manifest = new_images(tmp_path, X_test, dict(ATTRS))
    out_csv = tmp_path / "p.csv"
    with pytest.raises(FeatureFileError, match="new_feat.h5 holds no 'PreLogitsFlatten'"):
        classify_to_csv(str(features), str(manifest), str(pooled_model), str(out_csv))
    new = read_features(features)
    new_pooled = np.abs(rng.randn(len(new.filenames), 1536)).astype(np.float32)
    write_features(features, Features(new.filenames, new.logits, new.attrs, new_pooled))
    classify_to_csv(str(features), str(manifest), str(pooled_model), str(out_csv))
    ok = pd.read_csv(out_csv).query("status == 'ok'")
    ok = ok.iloc[np.argsort([Path(p).name for p in ok["png"]], kind="stable")]
    expected = predict(model, new_pooled, PRELOGITS)["class6"].classes
    np.testing.assert_array_equal(ok["class6"].to_numpy(), expected)
