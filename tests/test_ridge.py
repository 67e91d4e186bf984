"""oath.fit.ridge on tiny synthetic features: parity with the original script, input checks,
sweep."""

from __future__ import annotations

import contextlib
import io
import json
import warnings
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import RidgeClassifier
from sklearn.metrics import confusion_matrix

from oath.dataset.splits import SplitError, make_split, write_split
from oath.dataset.table import CLASS6_NAMES
from oath.fit.ridge import (
    RidgeInputError,
    aggregate,
    fit_split_to_file,
    printed_confusion,
    printed_line,
    ridge_path_predict,
    sweep_alpha_to_file,
)
from oath.network.featurefile import (
    PRELOGITS,
    AlignmentError,
    FeatureFileError,
    Features,
    read_features,
    write_features,
)

N_IMAGES = 60
N_FEATURES = 12
WEIGHTS = "demo: deterministic RANDOM weights (seed 1), not the published Inception-v4"


def write_table(path: Path, pic_nums, class6, angles) -> None:
    lines = [
        "# OATH classifications (synthetic test table)",
        "# class2: 0 aurora, 1 no aurora",
        "#",
        "class2,class6,picNum,label,angle",
    ]
    for pic, c6, angle in zip(pic_nums, class6, angles, strict=True):
        lines.append(f"{int(c6 >= 3)},{c6},{pic},{CLASS6_NAMES[c6]},{angle}")
    path.write_text("\n".join(lines) + "\n")


def make_inputs(root: Path, n: int = N_IMAGES, seed: int = 0, shuffle_table: bool = False):
    """classifications.csv, auroral_feat.h5 and train_test_split.csv for n images.

    Features carry some class signal, so the classifier is neither perfect nor at chance.
    """
    rng = np.random.default_rng(seed)
    pic_nums = np.arange(1, n + 1)
    class6 = np.arange(n) % 6
    rng.shuffle(class6)
    angles = rng.integers(0, 360, n)
    centres = rng.normal(size=(6, N_FEATURES))
    logits = (centres[class6] + 1.5 * rng.normal(size=(n, N_FEATURES))).astype(np.float32)
    names = [f"{p:05d}_{a}.png" for p, a in zip(pic_nums, angles, strict=True)]
    root.mkdir(parents=True, exist_ok=True)
    order = rng.permutation(n) if shuffle_table else np.arange(n)
    paths = {
        "features": root / "auroral_feat.h5",
        "classifications": root / "classifications.csv",
        "split_file": root / "train_test_split.csv",
    }
    write_table(paths["classifications"], pic_nums[order], class6[order], angles[order])
    attrs = {
        "weights": WEIGHTS,
        "checkpoint": "ckpt/inception_v4.ckpt",
        "checkpoint_sha256": "ab" * 32,
        "random_weights": "true",
        "precision": "float32",
    }
    write_features(paths["features"], Features(filenames=names, logits=logits, attrs=attrs))
    write_split(paths["split_file"], make_split(n, 5))
    return {k: str(v) for k, v in paths.items()}


def original_script(
    paths: dict[str, str], labels: str = "class6", alpha: float = 0.03, dataset: str = "Logits"
):
    """The published ridge.py in essence: returns (stdout, accuracies, last confusion matrix)."""
    with h5py.File(paths["features"], "r") as h5:
        X = h5[dataset][:]
    y = pd.read_csv(paths["classifications"], comment="#")[labels].values
    S = np.loadtxt(paths["split_file"], delimiter=",").astype(int)
    N = len(y)
    acc = []
    for i in range(S.shape[0]):
        train = S[i, : int(round(0.7 * N))]
        test = S[i, int(round(0.7 * N)) :]
        clf = RidgeClassifier(alpha=alpha).fit(X[train], y[train])
        acc.append(clf.score(X[test], y[test]))
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        print(np.mean(acc), np.std(acc))
        print(confusion_matrix(y[test], clf.predict(X[test])))
    return out.getvalue(), acc, confusion_matrix(y[test], clf.predict(X[test]))


def run_splits(
    paths: dict[str, str],
    out_dir: Path,
    labels: str = "class6",
    n_splits: int = 5,
    layer: str = "Logits",
):
    results = []
    for split in range(n_splits):
        out = out_dir / f"{labels}_split_{split}.json"
        fit_split_to_file(
            **paths,
            split=split,
            labels=labels,
            alpha=0.03,
            train_fraction=0.7,
            out=str(out),
            layer=layer,
        )
        results.append(json.loads(out.read_text()))
    return results


@pytest.fixture
def inputs(tmp_path) -> dict[str, str]:
    return make_inputs(tmp_path / "data")


def test_parity_with_original_script(inputs, tmp_path):
    stdout, acc, last_matrix = original_script(inputs)
    results = run_splits(inputs, tmp_path / "out")
    assert [r["accuracy"] for r in results] == acc  # exact, every digit
    summary = aggregate(results)
    assert summary["accuracies"] == acc
    assert summary["printed_line"] == stdout.splitlines()[0]
    assert printed_line(acc) == stdout.splitlines()[0]
    assert summary["printed_confusion"] + "\n" == stdout.split("\n", 1)[1]
    assert printed_confusion(results[-1]) == str(last_matrix)
    assert np.array_equal(results[-1]["confusion_matrix"], last_matrix)  # all 6 classes present
    assert summary["mean_accuracy"] == np.mean(acc) and summary["std_accuracy"] == np.std(acc)
    assert 0.3 < summary["mean_accuracy"] < 1.0  # the synthetic signal is learnable


def test_result_json_contents(inputs, tmp_path):
    (result,) = run_splits(inputs, tmp_path / "out", n_splits=1)
    assert result["split"] == 0 and result["labels"] == "class6"
    assert result["class_names"] == list(CLASS6_NAMES)
    assert (result["n_train"], result["n_test"]) == (42, 18)
    assert len(result["predictions"]) == result["n_test"]
    matrix = np.array(result["confusion_matrix"])
    assert matrix.shape == (6, 6) and matrix.sum() == 18
    assert np.trace(matrix) / 18 == pytest.approx(result["accuracy"])
    for row in result["per_class"]:
        assert row["support"] == matrix[row["class"]].sum()
    first = result["predictions"][0]
    assert set(first) == {"picNum", "true", "predicted", "scores"} and len(first["scores"]) == 6
    assert int(np.argmax(first["scores"])) == first["predicted"]
    prov = result["provenance"]
    assert prov["weights"] == WEIGHTS and prov["checkpoint_sha256"] == "ab" * 32
    assert prov["precision"] == "float32" and prov["features"] == inputs["features"]


def test_class2_scores_are_symmetric(inputs, tmp_path):
    (result,) = run_splits(inputs, tmp_path / "out", labels="class2", n_splits=1)
    assert result["class_names"] == ["aurora", "no aurora"]
    assert np.array(result["confusion_matrix"]).shape == (2, 2)
    for pred in result["predictions"]:
        low, high = pred["scores"]
        assert low == -high and pred["predicted"] == int(high > 0)


def test_rows_matched_by_picnum(tmp_path):
    """A table in another order than the features gives the same per-image labels."""
    shuffled = make_inputs(tmp_path / "shuffled", shuffle_table=True)
    table = pd.read_csv(shuffled["classifications"], comment="#")
    with h5py.File(shuffled["features"], "r") as h5:
        X = h5["Logits"][:]
        names = [n.decode() for n in h5["filenames"][:]]
    row = {int(n[:5]): i for i, n in enumerate(names)}
    X_aligned = X[[row[p] for p in table["picNum"]]]
    y = table["class6"].to_numpy()
    S = np.loadtxt(shuffled["split_file"], delimiter=",").astype(int)
    train, test = S[0, :42], S[0, 42:]
    expected = RidgeClassifier(alpha=0.03).fit(X_aligned[train], y[train])
    (result,) = run_splits(shuffled, tmp_path / "out", n_splits=1)
    assert result["accuracy"] == expected.score(X_aligned[test], y[test])
    assert [p["picNum"] for p in result["predictions"]] == table["picNum"].to_numpy()[test].tolist()


def damage_features(path: str, edit) -> None:
    with h5py.File(path, "r") as h5:
        names = [n.decode() for n in h5["filenames"][:]]
        logits = h5["Logits"][:]
        attrs = dict(h5.attrs)
    names, logits = edit(names, logits)
    write_features(path, Features(filenames=names, logits=logits, attrs=attrs))


def fit_one(paths, tmp_path, split=0):
    fit_split_to_file(
        **paths,
        split=split,
        labels="class6",
        alpha=0.03,
        train_fraction=0.7,
        out=str(tmp_path / "r.json"),
    )


def test_length_mismatch_names_file(inputs, tmp_path):
    damage_features(inputs["features"], lambda n, x: (n[:-1], x[:-1]))
    with pytest.raises(AlignmentError, match="auroral_feat.h5 has 59 feature rows") as err:
        fit_one(inputs, tmp_path)
    assert "classifications.csv has 60" in str(err.value)
    assert "picNum(s) 60 have labels but no features" in str(err.value)


def test_picnum_mismatch_names_file(inputs, tmp_path):
    damage_features(inputs["features"], lambda n, x: (["00099_1.png"] + n[1:], x))
    with pytest.raises(AlignmentError, match="auroral_feat.h5.*99 have features but no labels"):
        fit_one(inputs, tmp_path)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_features_name_file(inputs, tmp_path, bad):
    def edit(names, logits):
        logits[7, 3] = bad
        return names, logits

    damage_features(inputs["features"], edit)
    with pytest.raises(AlignmentError, match=r"auroral_feat.h5: NaN or infinite.*00008_"):
        fit_one(inputs, tmp_path)
    assert not (tmp_path / "r.json").exists()


def test_split_out_of_range_names_file(inputs, tmp_path):
    with pytest.raises(SplitError, match=r"train_test_split.csv: split 5 .* 5 row"):
        fit_one(inputs, tmp_path, split=5)


def test_split_file_for_other_n_names_file(inputs, tmp_path):
    write_split(inputs["split_file"], make_split(N_IMAGES - 1, 5))
    with pytest.raises(SplitError, match=r"train_test_split.csv: row 1 is not a permutation"):
        fit_one(inputs, tmp_path)


def test_unknown_label_set(inputs, tmp_path):
    with pytest.raises(RidgeInputError, match="class3"):
        fit_split_to_file(
            **inputs,
            split=0,
            labels="class3",
            alpha=0.03,
            train_fraction=0.7,
            out=str(tmp_path / "r.json"),
        )


def sweep(paths, out, n_splits=2):
    sweep_alpha_to_file(
        **paths,
        labels="class6",
        alphas=[0.01, 1.0, 100.0],
        train_fraction=0.7,
        n_splits=n_splits,
        folds=3,
        out=str(out),
    )
    return out.read_bytes()


def poison_labels(paths, rows) -> None:
    """Give the table rows ``rows`` another class6 (and the matching class2), in place."""
    table = pd.read_csv(paths["classifications"], comment="#")
    class6 = table["class6"].to_numpy().copy()
    class6[rows] = (class6[rows] + 3) % 6
    write_table(Path(paths["classifications"]), table["picNum"], class6, table["angle"])


def test_sweep_never_reads_test_parts(inputs, tmp_path):
    before = sweep(inputs, tmp_path / "before.json")
    S = np.loadtxt(inputs["split_file"], delimiter=",").astype(int)
    test_rows = np.intersect1d(S[0, 42:], S[1, 42:])  # test in both swept splits
    assert test_rows.size > 0

    def edit(names, logits):
        logits[test_rows] = 1e6  # feature rows are in table order here (picNum 1..N)
        return names, logits

    poison_labels(inputs, test_rows)
    damage_features(inputs["features"], edit)
    assert sweep(inputs, tmp_path / "after.json") == before

    poison_labels(inputs, S[0, :42][:10])  # training rows do matter: the check can fail
    assert sweep(inputs, tmp_path / "train_poisoned.json") != before


def test_sweep_json(inputs, tmp_path):
    result = json.loads(sweep(inputs, tmp_path / "sweep.json", n_splits=2))
    assert [r["alpha"] for r in result["results"]] == [0.01, 1.0, 100.0]
    for row in result["results"]:
        assert len(row["per_split"]) == 2
        assert row["mean_accuracy"] == pytest.approx(np.mean(row["per_split"]))
    assert result["best_alpha"] in (0.01, 1.0, 100.0)
    assert result["folds"] == 3 and "test parts unused" in result["cv"]
    assert result["provenance"]["weights"] == WEIGHTS


def test_sweep_on_tiny_data(tmp_path):
    """12 images: no class has 5 training images, so plain KFold; 10 folds of 8 is refused."""
    paths = make_inputs(tmp_path / "tiny", n=12)
    args = dict(labels="class6", alphas=[0.1], train_fraction=0.7, n_splits=1)
    sweep_alpha_to_file(**paths, **args, folds=5, out=str(tmp_path / "s.json"))
    assert len(json.loads((tmp_path / "s.json").read_text())["results"]) == 1
    with pytest.raises(RidgeInputError, match="train_test_split.csv: split 0 has 8 training"):
        sweep_alpha_to_file(**paths, **args, folds=10, out=str(tmp_path / "t.json"))


@pytest.mark.parametrize("n_classes", [6, 2])
def test_sweep_predicts_as_ridge_classifier_does(n_classes):
    """The sweep's one-Gram-matrix-per-fold path gives RidgeClassifier's predictions, alpha by
    alpha, also on ill-conditioned features (rank 8 plus tiny noise, as correlated Logits)."""
    rng = np.random.default_rng(3)
    y = rng.integers(0, n_classes, 300)
    X = rng.normal(size=(300, 8)) @ rng.normal(size=(8, 40)) * 50.0 + y[:, None]
    X += rng.normal(scale=1e-6, size=X.shape)
    alphas = [1e-9, 1e-3, 0.03, 1.0, 100.0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # LinAlgWarning at the smallest alphas, on both sides
        ours = ridge_path_predict(X[:200], y[:200], X[200:], alphas)
        for alpha, predicted in zip(alphas, ours, strict=True):
            expected = RidgeClassifier(alpha=alpha).fit(X[:200], y[:200]).predict(X[200:])
            np.testing.assert_array_equal(predicted, expected, err_msg=f"alpha {alpha}")
        # More columns than rows: handed to RidgeClassifier itself.
        wide = ridge_path_predict(X[:30], y[:30], X[200:], alphas)
    for alpha, predicted in zip(alphas, wide, strict=True):
        expected = RidgeClassifier(alpha=alpha).fit(X[:30], y[:30]).predict(X[200:])
        np.testing.assert_array_equal(predicted, expected)


def test_aggregate_refuses_mixed_results(inputs, tmp_path):
    results = run_splits(inputs, tmp_path / "out", n_splits=2)
    other = dict(results[1], provenance=dict(results[1]["provenance"], checkpoint_sha256="cd"))
    with pytest.raises(RidgeInputError, match="different feature files"):
        aggregate([results[0], other])
    with pytest.raises(RidgeInputError, match="repeat"):
        aggregate([results[0], results[0]])


def add_prelogits(features: str, seed: int = 1) -> None:
    """Rewrite a feature file with a PreLogitsFlatten dataset beside its Logits, as extracted."""
    feats = read_features(features)
    rng = np.random.default_rng(seed)
    pooled = np.abs(rng.normal(size=(len(feats.filenames), 24))).astype(np.float32)
    pooled[:, :12] += feats.logits  # some of the class signal, on other columns
    write_features(features, Features(feats.filenames, feats.logits, feats.attrs, pooled))


def test_ridge_py_reading_of_logits_is_unchanged_beside_prelogits(inputs, tmp_path):
    """With PreLogitsFlatten in the file, the original script still prints the same line, so do
    our Logits fits, and features: PreLogitsFlatten fits the pooled rows the same way."""
    before, _, _ = original_script(inputs)
    add_prelogits(inputs["features"])
    with h5py.File(inputs["features"], "r") as h5:
        assert set(h5) == {"filenames", "Logits", PRELOGITS}
    after, _, _ = original_script(inputs)
    assert after == before
    logits = run_splits(inputs, tmp_path / "logits")
    assert aggregate(logits)["printed_line"] == before.splitlines()[0]
    assert logits[0]["provenance"]["layer"] == "Logits"

    pooled_stdout, _, _ = original_script(inputs, dataset=PRELOGITS)
    pooled = run_splits(inputs, tmp_path / "pooled", layer=PRELOGITS)
    assert aggregate(pooled)["printed_line"] == pooled_stdout.splitlines()[0]
    assert pooled_stdout.splitlines()[0] != before.splitlines()[0]  # other features, other fit
    assert pooled[0]["provenance"]["layer"] == PRELOGITS
    with pytest.raises(RidgeInputError, match="layer"):
        aggregate(logits[:2] + pooled[2:])


def test_prelogits_from_a_logits_only_file_says_to_re_extract(inputs, tmp_path):
    with pytest.raises(FeatureFileError, match=r"auroral_feat\.h5 holds no 'PreLogitsFlatten'"):
        run_splits(inputs, tmp_path / "out", n_splits=1, layer=PRELOGITS)
