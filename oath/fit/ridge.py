"""The published classifier: ``RidgeClassifier(alpha=0.03)`` on Inception-v4 ``Logits``.

The feature set is a choice (config ``features``): ``Logits`` as published, or the pooled
``PreLogitsFlatten`` of the same forward pass; results record it as ``provenance["layer"]``.

Clausen & Nickisch (2018) fit one ridge classifier per row ``S[i]`` of ``train_test_split.csv``
(a permutation of the rows of ``classifications.csv``): the first ``round(0.7 * N)`` indices
train, the rest test. Their script ends with::

    print(np.mean(acc), np.std(acc))  # 0.8174012593016601 0.010271527444147862
    print(confusion_matrix(y[test], clf.predict(X[test])))  # of the last split

:func:`fit_split_to_file` does one split for one label set and writes a JSON result;
:func:`aggregate` combines the splits and gives back those two printed texts exactly
(:func:`printed_line`, :func:`printed_confusion`). :func:`sweep_alpha_to_file` scores other
alphas by cross-validation inside the training parts only; the test parts are never read.

Feature rows are matched to table rows by picNum (from the image file name), so the result
does not depend on the order of either file; split indices count table rows, as published.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import sklearn
from scipy import linalg
from sklearn.linear_model import RidgeClassifier
from sklearn.metrics import confusion_matrix
from sklearn.model_selection import KFold, StratifiedKFold

from oath import atomic
from oath.dataset.splits import SPLIT_SEED, load_split, train_test_rows
from oath.dataset.table import LABEL_NAMES, load_classifications
from oath.network.featurefile import (
    LOGITS,
    MAKING_ATTRS,
    RESULT_ATTRS,
    aligned_features,
    read_features,
)

log = logging.getLogger(__name__)

SCORE_DIGITS = 6  # decimals kept of the decision scores in the JSON (display only)


class RidgeInputError(ValueError):
    """Features, labels or split do not fit together; the message names the file and the fix."""


@dataclass(frozen=True)
class RidgeData:
    """Features aligned to the classification table, with labels and the split rows."""

    X: np.ndarray  # (N, n_features) float32, row j = table row j
    y: np.ndarray  # (N,) int64 class indices of the chosen label set
    pic_nums: np.ndarray  # (N,) int64, table order
    class_names: tuple[str, ...]
    split: np.ndarray  # (n_rows, N) int64, each row a permutation of 0..N-1
    provenance: dict[str, Any]


# --------------------------------------------------------------------------------------------
# Reading and checking
# --------------------------------------------------------------------------------------------
def check_labels(labels: str) -> tuple[str, ...]:
    """Class names of a label set; refuses names other than class6 and class2."""
    if labels not in LABEL_NAMES:
        raise RidgeInputError(
            f"unknown label set {labels!r}; use one of {', '.join(sorted(LABEL_NAMES))}."
        )
    return tuple(LABEL_NAMES[labels])


def load_ridge_data(
    features: str, classifications: str, split_file: str, labels: str, layer: str = LOGITS
) -> RidgeData:
    """Read the three inputs, align feature set ``layer`` to the table by picNum, check all.

    Raises ``AlignmentError`` when features and table disagree (row counts, picNums) or the
    features hold NaN or infinite values; ``DatasetError``, ``FeatureFileError`` (also for a
    file without ``layer``) and ``SplitError`` (all ``ValueError``) come through from the
    readers for malformed files. Messages name the file.
    """
    class_names = check_labels(labels)
    table = load_classifications(classifications)
    feats = read_features(features)
    pic_nums = table["picNum"].to_numpy(dtype=np.int64)

    X = aligned_features(features, feats, pic_nums, classifications, layer)

    split = load_split(split_file, len(pic_nums))
    provenance: dict[str, Any] = {key: feats.attrs.get(key) for key in RESULT_ATTRS}
    provenance.update(
        features=str(features),
        layer=layer,
        classifications=str(classifications),
        split_file=str(split_file),
        sklearn_version=sklearn.__version__,
    )
    log.info(
        "%s: %d images x %d %s features aligned to %s by picNum; split file %s has %d rows",
        features,
        X.shape[0],
        X.shape[1],
        layer,
        classifications,
        split_file,
        split.shape[0],
    )
    return RidgeData(
        X=X,
        y=table[labels].to_numpy(dtype=np.int64),
        pic_nums=pic_nums,
        class_names=class_names,
        split=split,
        provenance=provenance,
    )


# --------------------------------------------------------------------------------------------
# One split
# --------------------------------------------------------------------------------------------
def class_scores(decision: np.ndarray, classes: np.ndarray, n_classes: int) -> np.ndarray:
    """Decision scores as one column per class of the label set.

    ``decision`` is what ``RidgeClassifier.decision_function`` gives for the classes seen in
    training (``classes``, sklearn's ``classes_``). For two classes that is one value ``d`` (for
    class 1); we give ``[-d, d]``, what a one-vs-rest ridge with both target columns gives.
    Classes absent from training get NaN (never predicted; written as null in JSON, empty in
    CSV).
    """
    decision = np.asarray(decision, dtype=np.float64)
    if decision.ndim == 1:
        decision = np.column_stack([-decision, decision])
    scores = np.full((decision.shape[0], n_classes), np.nan)
    scores[:, np.asarray(classes, dtype=np.intp)] = decision
    return scores


def per_class_metrics(matrix: np.ndarray, class_names: Sequence[str]) -> list[dict[str, Any]]:
    """Precision, recall and support per class from a confusion matrix (rows true).

    Precision is ``None`` for a class never predicted, recall ``None`` for one never present.
    """
    rows = []
    for k, name in enumerate(class_names):
        predicted = int(matrix[:, k].sum())
        support = int(matrix[k, :].sum())
        hit = int(matrix[k, k])
        rows.append(
            {
                "class": k,
                "name": name,
                "precision": hit / predicted if predicted else None,
                "recall": hit / support if support else None,
                "support": support,
                "predicted": predicted,
            }
        )
    return rows


def fit_split(
    data: RidgeData, split: int, labels: str, alpha: float, train_fraction: float, split_file: str
) -> dict[str, Any]:
    """Fit ``RidgeClassifier(alpha)`` on one split's training part and score its test part."""
    train, test = train_test_rows(data.split, split, train_fraction, split_file)
    X, y = data.X, data.y
    clf = RidgeClassifier(alpha=alpha).fit(X[train], y[train])
    accuracy = clf.score(X[test], y[test])  # the original's number, computed the same way
    predicted = clf.predict(X[test])
    n_classes = len(data.class_names)
    matrix = confusion_matrix(y[test], predicted, labels=list(range(n_classes)))
    scores = class_scores(clf.decision_function(X[test]), clf.classes_, n_classes)
    missing = sorted(set(range(n_classes)) - {int(c) for c in clf.classes_})
    if missing:
        log.warning(
            "split %d: class(es) %s absent from the training part; never predicted", split, missing
        )
    log.info(
        "split %d, %s, alpha %g: accuracy %s on %d test images",
        split,
        labels,
        alpha,
        accuracy,
        len(test),
    )
    return {
        "split": int(split),
        "labels": labels,
        "class_names": list(data.class_names),
        "alpha": float(alpha),
        "train_fraction": float(train_fraction),
        "n_train": int(len(train)),
        "n_test": int(len(test)),
        "accuracy": float(accuracy),
        "confusion_matrix": matrix.astype(int).tolist(),
        "per_class": per_class_metrics(matrix, data.class_names),
        "predictions": [
            {
                "picNum": int(data.pic_nums[row]),
                "true": int(y[row]),
                "predicted": int(pred),
                "scores": [
                    None if not np.isfinite(s) else round(float(s), SCORE_DIGITS) for s in score_row
                ],
            }
            for row, pred, score_row in zip(test, predicted, scores, strict=True)
        ],
        "provenance": dict(data.provenance),
    }


def fit_split_to_file(
    features: str,
    classifications: str,
    split_file: str,
    split: int,
    labels: str,
    alpha: float,
    train_fraction: float,
    out: str,
    layer: str = LOGITS,
) -> None:
    """One split (0-based row of the split file), one label set ("class6" or "class2"), on
    feature set ``layer`` ("Logits" or "PreLogitsFlatten").

    Writes a JSON object with keys ``split``, ``labels``, ``class_names``, ``alpha``,
    ``train_fraction``, ``n_train``, ``n_test``, ``accuracy``, ``confusion_matrix`` (rows true,
    columns predicted, every class of the label set), ``per_class`` (``class``, ``name``,
    ``precision``, ``recall``, ``support``, ``predicted``), ``predictions`` (per test image
    ``picNum``, ``true``, ``predicted``, ``scores`` one per class) and ``provenance`` (the feature
    file's ``weights``, ``checkpoint``, ``checkpoint_sha256``, ``precision``; the input paths;
    ``layer``; ``sklearn_version``).
    """
    data = load_ridge_data(features, classifications, split_file, labels, layer)
    result = fit_split(data, split, labels, alpha, train_fraction, split_file)
    write_json(out, result)


# --------------------------------------------------------------------------------------------
# All splits: the original's printed output
# --------------------------------------------------------------------------------------------
def printed_line(accuracies: Sequence[float]) -> str:
    """What ``print(np.mean(acc), np.std(acc))`` printed (population std, numpy's default).

    >>> printed_line([0.8, 0.9])
    '0.8500000000000001 0.04999999999999999'
    """
    acc = [float(a) for a in accuracies]
    return f"{np.mean(acc)} {np.std(acc)}"


def printed_confusion(result: dict[str, Any]) -> str:
    """What ``print(confusion_matrix(y[test], clf.predict(X[test])))`` printed for a split.

    sklearn's default keeps only the classes present among true or predicted labels; so do we.
    """
    matrix = np.asarray(result["confusion_matrix"], dtype=np.int64)
    present = np.flatnonzero((matrix.sum(axis=0) + matrix.sum(axis=1)) > 0)
    return str(matrix[np.ix_(present, present)])


def aggregate(split_results: list[dict[str, Any]]) -> dict[str, Any]:
    """Combine per-split results of one label set, given in split order (last = printed one).

    Returns ``labels``, ``class_names``, ``alpha``, ``splits``, ``accuracies``,
    ``mean_accuracy``, ``std_accuracy`` (population), ``printed_line``, ``last_split``,
    ``last_confusion_matrix``, ``printed_confusion``, ``pooled_confusion_matrix`` (sum over
    splits), ``per_class`` (``class``, ``name``, mean/std over splits of ``precision`` and
    ``recall`` where defined, ``support`` summed) and ``provenance`` (of the first split).
    """
    if not split_results:
        raise RidgeInputError("no split results to aggregate.")
    first = split_results[0]
    for key in ("labels", "class_names", "alpha", "train_fraction"):
        values = {json.dumps(r[key]) for r in split_results}
        if len(values) > 1:
            raise RidgeInputError(f"split results disagree on {key!r}: {sorted(values)}.")
    for key in ("features", "layer", *MAKING_ATTRS):
        values = {str(r["provenance"].get(key)) for r in split_results}
        if len(values) > 1:
            raise RidgeInputError(
                f"split results come from different feature files ({key}: {sorted(values)}); "
                "rerun the ridge fits on one feature file."
            )
    splits = [int(r["split"]) for r in split_results]
    if len(set(splits)) != len(splits):
        raise RidgeInputError(f"split results repeat a split: {splits}.")
    accuracies = [float(r["accuracy"]) for r in split_results]
    last = split_results[-1]
    pooled = np.sum([np.asarray(r["confusion_matrix"], dtype=np.int64) for r in split_results], 0)
    per_class = []
    for k, name in enumerate(first["class_names"]):
        entry: dict[str, Any] = {"class": k, "name": name}
        for metric in ("precision", "recall"):
            values = [r["per_class"][k][metric] for r in split_results]
            values = [v for v in values if v is not None]
            entry[f"{metric}_mean"] = float(np.mean(values)) if values else None
            entry[f"{metric}_std"] = float(np.std(values)) if values else None
        entry["support"] = int(sum(r["per_class"][k]["support"] for r in split_results))
        per_class.append(entry)
    return {
        "labels": first["labels"],
        "class_names": list(first["class_names"]),
        "alpha": first["alpha"],
        "train_fraction": first["train_fraction"],
        "splits": splits,
        "n_train": [int(r["n_train"]) for r in split_results],
        "n_test": [int(r["n_test"]) for r in split_results],
        "accuracies": accuracies,
        "mean_accuracy": float(np.mean(accuracies)),
        "std_accuracy": float(np.std(accuracies)),
        "printed_line": printed_line(accuracies),
        "last_split": int(last["split"]),
        "last_confusion_matrix": last["confusion_matrix"],
        "printed_confusion": printed_confusion(last),
        "pooled_confusion_matrix": pooled.tolist(),
        "per_class": per_class,
        "provenance": dict(first["provenance"]),
    }


# --------------------------------------------------------------------------------------------
# Alpha sweep on the training parts
# --------------------------------------------------------------------------------------------
def _cv_folds(
    X_train: np.ndarray, y_train: np.ndarray, n_classes: int, folds: int, split: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """The sweep's CV folds of one training part: stratified, or plain ``KFold`` when no class
    has ``folds`` training images (tiny test data sets)."""
    counts = np.bincount(y_train, minlength=n_classes)
    cv: StratifiedKFold | KFold = StratifiedKFold(
        n_splits=folds, shuffle=True, random_state=SPLIT_SEED
    )
    if counts.max() < folds:
        cv = KFold(n_splits=folds, shuffle=True, random_state=SPLIT_SEED)
        log.warning(
            "split %d: no class has %d training images (%s); plain KFold instead of "
            "stratified folds",
            split,
            folds,
            counts.tolist(),
        )
    elif counts[counts > 0].min() < folds:
        log.warning(
            "split %d: a class has fewer training images (%s) than CV folds (%d)",
            split,
            counts.tolist(),
            folds,
        )
    return list(cv.split(X_train, y_train))


def ridge_path_predict(
    X_fit: np.ndarray, y_fit: np.ndarray, X_held: np.ndarray, alphas: Sequence[float]
) -> list[np.ndarray]:
    """What ``RidgeClassifier(alpha).fit(X_fit, y_fit).predict(X_held)`` gives, per alpha.

    The same algorithm as scikit-learn's (``solver="auto"`` on dense data with more rows than
    columns: centre, then a Cholesky solve of ``X'X + alpha I``), with the Gram matrix ``X'X``
    computed once for all alphas instead of once per alpha. Pass float64 features: in float32
    the Logits' Gram matrix is singular at small alphas, where scikit-learn falls back to an
    SVD per alpha (measured: that SVD is 60 % of a float32 sweep). Cases outside that path
    (more columns than rows, one class, a singular matrix) are handed to ``RidgeClassifier``.
    """
    classes = np.unique(y_fit)
    n_rows, n_features = X_fit.shape
    if n_rows <= n_features or classes.size < 2:
        return [RidgeClassifier(alpha=a).fit(X_fit, y_fit).predict(X_held) for a in alphas]
    # LabelBinarizer(neg_label=-1): one +-1 column per class, a single column for two classes.
    Y = np.where(y_fit[:, None] == classes, 1.0, -1.0).astype(X_fit.dtype)
    if classes.size == 2:
        Y = Y[:, 1:]
    X_offset, y_offset = X_fit.mean(axis=0), Y.mean(axis=0)
    centred = X_fit - X_offset
    gram = centred.T @ centred
    Xy = centred.T @ (Y - y_offset)
    predictions = []
    for alpha in alphas:
        A = gram.copy()
        A.flat[:: n_features + 1] += alpha
        try:
            coef = linalg.solve(A, Xy, assume_a="pos", overwrite_a=True).T
        except linalg.LinAlgError:  # singular: scikit-learn's own fallback (SVD)
            predictions.append(RidgeClassifier(alpha=alpha).fit(X_fit, y_fit).predict(X_held))
            continue
        scores = X_held @ coef.T + (y_offset - X_offset @ coef.T)
        index = (scores[:, 0] > 0).astype(np.intp) if classes.size == 2 else scores.argmax(axis=1)
        predictions.append(classes[index])
    return predictions


def sweep_alpha(
    data: RidgeData,
    labels: str,
    alphas: Sequence[float],
    train_fraction: float,
    n_splits: int,
    folds: int,
    split_file: str,
) -> dict[str, Any]:
    """Cross-validated accuracy per alpha inside the training part of each of the first splits.

    Folds come from ``StratifiedKFold(folds, shuffle=True, random_state=SPLIT_SEED)`` on the
    training rows of each split (plain ``KFold`` when no class has ``folds`` training images,
    as in tiny test data sets) and are the same for every alpha. The test rows are not read.
    ``best_alpha`` has the highest mean CV accuracy; ties go to the smallest alpha.
    Each fold is scored as ``RidgeClassifier`` on float64 features scores it
    (:func:`ridge_path_predict`: one Gram matrix per fold for all alphas).
    """
    if not alphas:
        raise RidgeInputError("no alphas to sweep; set ridge.sweep_alphas in the config.")
    if any(a <= 0 for a in alphas):
        raise RidgeInputError(f"alphas must be positive, got {list(alphas)}.")
    if folds < 2:
        raise RidgeInputError(f"at least 2 CV folds are needed, got {folds}.")
    if n_splits < 1:
        raise RidgeInputError(f"n_splits must be at least 1, got {n_splits}.")
    per_alpha: list[list[float]] = [[] for _ in alphas]
    for split in range(n_splits):
        train, _ = train_test_rows(data.split, split, train_fraction, split_file)
        X_train, y_train = data.X[train], data.y[train]  # the test part stops here
        if len(train) < folds:
            raise RidgeInputError(
                f"{split_file}: split {split} has {len(train)} training images, fewer than the "
                f"{folds} CV folds of the alpha sweep; lower ridge.sweep_folds."
            )
        fold_indices = _cv_folds(X_train, y_train, len(data.class_names), folds, split)
        X_train64 = X_train.astype(np.float64)
        fold_scores = [
            [
                float(np.mean(predicted == y_train[held]))
                for predicted in ridge_path_predict(
                    X_train64[fit], y_train[fit], X_train64[held], alphas
                )
            ]
            for fit, held in fold_indices
        ]
        for a, scores in enumerate(zip(*fold_scores, strict=True)):
            per_alpha[a].append(float(np.mean(scores)))
        log.info("split %d: CV accuracies %s", split, [round(p[-1], 4) for p in per_alpha])
    results = [
        {
            "alpha": float(alpha),
            "mean_accuracy": float(np.mean(values)),
            "std_accuracy": float(np.std(values)),
            "per_split": values,
        }
        for alpha, values in zip(alphas, per_alpha, strict=True)
    ]
    best = max(results, key=lambda r: (r["mean_accuracy"], -r["alpha"]))
    return {
        "labels": labels,
        "class_names": list(data.class_names),
        "train_fraction": float(train_fraction),
        "n_splits": int(n_splits),
        "folds": int(folds),
        "cv": (
            f"StratifiedKFold(n_splits={folds}, shuffle=True, random_state={SPLIT_SEED}) "
            "on the training part of each split (plain KFold where no class has that many "
            "training images); test parts unused"
        ),
        "solver": (
            "RidgeClassifier's Cholesky solve on float64 features, one Gram matrix per fold "
            "for all alphas"
        ),
        "results": results,
        "best_alpha": best["alpha"],
        "provenance": dict(data.provenance),
    }


def sweep_alpha_to_file(
    features: str,
    classifications: str,
    split_file: str,
    labels: str,
    alphas: list[float],
    train_fraction: float,
    n_splits: int,
    folds: int,
    out: str,
    layer: str = LOGITS,
) -> None:
    """Alpha sweep for one label set on feature set ``layer``; writes JSON with keys
    ``labels``, ``class_names``, ``train_fraction``, ``n_splits``, ``folds``, ``cv`` (the
    scheme in words), ``results`` (per alpha: ``alpha``, ``mean_accuracy``, ``std_accuracy``
    over splits, ``per_split``), ``best_alpha`` and ``provenance`` (with ``layer``).
    """
    data = load_ridge_data(features, classifications, split_file, labels, layer)
    result = sweep_alpha(data, labels, alphas, train_fraction, n_splits, folds, split_file)
    write_json(out, result)


# --------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------
def write_json(path: str | Path, obj: dict[str, Any]) -> None:
    """Write JSON atomically (standard JSON: no NaN or Infinity)."""
    atomic.write_json(path, obj)
    log.info("wrote %s", path)


def read_json(path: str | Path) -> dict[str, Any]:
    """Read a result written by this module; the error names the file."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise RidgeInputError(
            f"{path}: not a readable ridge result ({exc}); delete it so the workflow redoes it."
        ) from exc
