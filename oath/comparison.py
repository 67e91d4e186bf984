"""Beyond the 2018 protocol: how much of the published accuracy is same-night leakage?

Clausen & Nickisch (2018) scored ``RidgeClassifier(alpha=0.03)`` on 5 random 70/30 splits of
the OATH images (0.8174 +- 0.0103 for 6 classes). Consecutive THEMIS frames of one night look
alike, so a random split puts near-twins on both sides. This module scores the same features
under the two split protocols of :mod:`oath.protocols` (``grouped`` needs
``images/files_origin.csv``, read by :mod:`oath.origins`; without it only ``published`` runs
and the result says why) with the classifiers of :mod:`oath.classifiers`, for ``class6`` and
``class2``.

What is reported per classifier x protocol x label set: mean and (population) std of the test
accuracy over splits, macro F1, and for ``class2`` the aurora true-positive rate (recall of
class 0, "aurora"; the paper's 96 % is such a rate). The leakage gap is the published minus
the grouped mean accuracy. :func:`compare_to_file` writes everything as JSON;
:mod:`oath.report.protocols` turns that JSON into a report section.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sklearn
from joblib import Parallel, delayed

from oath.classifiers import (
    CLASSIFIERS,
    CV_FOLDS,
    LOGISTIC_CS,
    LOGISTIC_OPTIONS,
    RIDGE_ALPHA,
    SVM_CS,
    SVM_OPTIONS,
    SVM_PATIENCE,
    run_split,
)
from oath.data import LABEL_NAMES, load_classifications
from oath.featurefile import AlignmentError, aligned_logits, read_features
from oath.origins import Origins, ProtocolInputError, read_origins
from oath.protocols import Split, grouped_splits, published_splits
from oath.ridge import write_json
from oath.splits import TRAIN_FRACTION, load_split

log = logging.getLogger(__name__)

AURORA = 0  # class index of "aurora" in class2


@dataclass(frozen=True)
class ComparisonData:
    """Features aligned to the table, labels, split-file rows and (optionally) origins."""

    X: np.ndarray  # (N, d) float32, row j = table row j
    table: pd.DataFrame
    split_rows: np.ndarray
    origins: Origins | None
    skipped: dict[str, str]
    provenance: dict[str, Any]


def load_inputs(
    features: str, classifications: str, split_file: str, files_origin: str | None
) -> ComparisonData:
    """Read and check the inputs; features are matched to table rows by picNum.

    Raises :class:`ProtocolInputError` (a ``ValueError``) naming the file when features and
    table disagree in length or picNums, or the features hold NaN or infinite values.
    """
    table = load_classifications(classifications)
    feats = read_features(features)
    pic_nums = table["picNum"].to_numpy(dtype=np.int64)
    try:
        X = np.ascontiguousarray(aligned_logits(features, feats, pic_nums, classifications))
    except AlignmentError as exc:
        raise ProtocolInputError(str(exc)) from None
    split_rows = load_split(split_file, len(pic_nums))
    origins = None
    skipped: dict[str, str] = {}
    if files_origin is None or not str(files_origin).strip():
        skipped["grouped"] = (
            "no images/files_origin.csv in the data set, so station and night of the images "
            "are unknown; only the published splits were scored"
        )
    elif not Path(files_origin).is_file():
        skipped["grouped"] = (
            f"{files_origin} does not exist, so station and night of the images are unknown; "
            "only the published splits were scored"
        )
    else:
        origins = read_origins(files_origin, pic_nums)
    for reason in skipped.values():
        log.warning("grouped protocol skipped: %s", reason)
    provenance = {k: feats.attrs.get(k) for k in ("weights", "checkpoint_sha256", "precision")}
    provenance.update(sklearn_version=sklearn.__version__, numpy_version=np.__version__)
    return ComparisonData(X, table, split_rows, origins, skipped, provenance)


def _summary(per_split: list[dict[str, Any]], labels: str) -> dict[str, Any]:
    acc = [r["accuracy"] for r in per_split]
    f1 = [r["macro_f1"] for r in per_split]
    entry: dict[str, Any] = {
        "accuracies": acc,
        "mean_accuracy": float(np.mean(acc)),
        "std_accuracy": float(np.std(acc)),
        "printed_line": f"{np.mean(acc)} {np.std(acc)}",  # print(np.mean(acc), np.std(acc))
        "macro_f1s": f1,
        "mean_macro_f1": float(np.mean(f1)),
        "std_macro_f1": float(np.std(f1)),
    }
    if labels == "class2":
        tpr = [r["recall"][AURORA] for r in per_split]
        known = [t for t in tpr if t is not None]
        entry.update(
            aurora_tprs=tpr,
            mean_aurora_tpr=float(np.mean(known)) if known else None,
            std_aurora_tpr=float(np.std(known)) if known else None,
        )
    if "chosen" in per_split[0]:
        entry["chosen_C"] = [r["chosen"]["C"] for r in per_split]
    entry["per_split"] = per_split
    return entry


def _log_entry(c: str, p: str, name: str, entry: dict[str, Any]) -> None:
    log.info(
        "%s / %s / %s: accuracy %.4f +- %.4f, macro F1 %.4f%s",
        c,
        p,
        name,
        entry["mean_accuracy"],
        entry["std_accuracy"],
        entry["mean_macro_f1"],
        f", chosen C {entry['chosen_C']}" if "chosen_C" in entry else "",
    )
    grid = {"logistic": LOGISTIC_CS, "linear_svm": SVM_CS}.get(c)
    if grid and any(C in (grid[0], grid[-1]) for C in entry.get("chosen_C", [])):
        log.warning(
            "%s / %s / %s: a chosen C lies at the end of the grid %s; the best C may lie "
            "outside it",
            c,
            p,
            name,
            list(grid),
        )
    capped = sum(r.get("fits_at_max_iter", 0) for r in entry["per_split"])
    if capped:
        log.warning("%s / %s / %s: %d fit(s) reached max_iter", c, p, name, capped)


def _results(
    classifiers: Sequence[str],
    protocols: list[str],
    labels: Sequence[str],
    task_protocols: list[str],
    outputs: list[dict[str, Any]],
) -> dict[str, Any]:
    """classifier -> protocol -> label set -> summary over that protocol's splits."""
    results: dict[str, Any] = {c: {p: {} for p in protocols} for c in classifiers}
    for c in classifiers:
        for p in protocols:
            for name in labels:
                per_split = [
                    o[c][name] for q, o in zip(task_protocols, outputs, strict=True) if q == p
                ]
                results[c][p][name] = _summary(per_split, name)
                _log_entry(c, p, name, results[c][p][name])
    return results


def _leakage_gap(results: dict[str, Any], labels: Sequence[str]) -> dict[str, Any]:
    """Published minus grouped mean accuracy per classifier and label set."""
    gap: dict[str, Any] = {}
    for c, by_protocol in results.items():
        if "grouped" not in by_protocol:
            continue
        gap[c] = {}
        for name in labels:
            pub = by_protocol["published"][name]["mean_accuracy"]
            grp = by_protocol["grouped"][name]["mean_accuracy"]
            gap[c][name] = {
                "published_mean_accuracy": pub,
                "grouped_mean_accuracy": grp,
                "gap": pub - grp,
                "gap_points": 100.0 * (pub - grp),
            }
    return gap


def _versus_ridge(results: dict[str, Any], labels: Sequence[str]) -> dict[str, Any]:
    """Paired (same splits) accuracy difference of each tuned model to the published ridge."""
    if "ridge_published" not in results:
        return {}
    ridge = results["ridge_published"]
    versus: dict[str, Any] = {}
    for c, by_protocol in results.items():
        if c == "ridge_published":
            continue
        versus[c] = {p: {} for p in by_protocol}
        for p, by_label in by_protocol.items():
            for name in labels:
                diff = np.subtract(by_label[name]["accuracies"], ridge[p][name]["accuracies"])
                versus[c][p][name] = {
                    "per_split": diff.tolist(),
                    "mean": float(np.mean(diff)),
                    "std": float(np.std(diff)),
                }
    return versus


def _grouping_summary(origins: Origins | None) -> dict[str, Any] | None:
    if origins is None:
        return None
    sizes = np.bincount(origins.group)
    stations, counts = np.unique(origins.station, return_counts=True)
    return {
        "source": origins.source,
        "night_rule": origins.night_rule,
        "n_groups": int(sizes.size),
        "n_stations": int(stations.size),
        "images_per_station": {str(s): int(k) for s, k in zip(stations, counts, strict=True)},
        "images_per_group": {
            "min": int(sizes.min()),
            "median": float(np.median(sizes)),
            "max": int(sizes.max()),
        },
    }


def _split_summary(splits: list[Split], groups: np.ndarray | None) -> list[dict[str, Any]]:
    rows = []
    for s in splits:
        row: dict[str, Any] = {
            "split": s.index,
            "n_train": int(s.train.size),
            "n_test": int(s.test.size),
            "train_fraction": float(s.train.size / (s.train.size + s.test.size)),
        }
        if groups is not None:
            row["n_train_groups"] = int(np.unique(groups[s.train]).size)
            row["n_test_groups"] = int(np.unique(groups[s.test]).size)
        rows.append(row)
    return rows


def _methods(
    seed: int, protocols_run: Sequence[str], alpha: float, train_fraction: float
) -> dict[str, Any]:
    """The protocols, classifiers and CV scheme in words, for the JSON."""
    cv_words = {
        "published": f"StratifiedKFold(n_splits={CV_FOLDS}, shuffle=True, random_state={seed})",
        "grouped": (
            f"StratifiedGroupKFold(n_splits={CV_FOLDS}, shuffle=True, random_state={seed}) "
            "on station-night groups"
        ),
    }
    return {
        "protocol_descriptions": {
            "published": (
                f"rows of train_test_split.csv: first round({train_fraction:g} N) indices train, "
                "rest test"
            ),
            "grouped": (
                f"station-nights shuffled with RandomState([{seed}, split]) and taken until "
                f"the training part is closest to round({train_fraction:g} N) images; no "
                "station-night on "
                "both sides"
            ),
        },
        "classifiers": {
            "ridge_published": {
                "model": f"RidgeClassifier(alpha={alpha}) on the raw features",
                "grid": None,
            },
            "logistic": {
                "model": "StandardScaler + LogisticRegression (multinomial)",
                "options": dict(LOGISTIC_OPTIONS),
                "grid": {"C": list(LOGISTIC_CS)},
                "search": "full grid, warm-started along C within each fold",
            },
            "linear_svm": {
                "model": "StandardScaler + LinearSVC (one-vs-rest, squared hinge)",
                "options": dict(SVM_OPTIONS, random_state=seed),
                "grid": {"C": list(SVM_CS)},
                "search": (
                    f"grid walked upwards, stopped after {SVM_PATIENCE} C value(s) below the "
                    "best CV accuracy"
                ),
            },
        },
        "cv": {
            "folds": CV_FOLDS,
            "scheme": {p: cv_words[p] for p in protocols_run},
            "strata": "class6 of the training rows (both label sets share the folds)",
            "note": "selection reads the training part of each split only",
        },
    }


def compare(
    data: ComparisonData,
    labels: Sequence[str],
    n_splits: int,
    seed: int,
    split_file: str = "split file",
    n_jobs: int = 1,
    classifiers: Sequence[str] = CLASSIFIERS,
    *,
    alpha: float = RIDGE_ALPHA,
    train_fraction: float = TRAIN_FRACTION,
) -> dict[str, Any]:
    """Score every classifier x protocol x label set; see :func:`compare_to_file` for keys."""
    for name in labels:
        if name not in LABEL_NAMES:
            raise ProtocolInputError(
                f"unknown label set {name!r}; use {', '.join(sorted(LABEL_NAMES))}."
            )
    if n_splits < 1:
        raise ProtocolInputError(f"n_splits must be at least 1, got {n_splits}.")
    ys = {name: data.table[name].to_numpy(dtype=np.int64) for name in labels}
    strata = data.table["class6"].to_numpy(dtype=np.int64)
    splits = {"published": published_splits(data.split_rows, n_splits, split_file, train_fraction)}
    groups = None
    if data.origins is not None:
        groups = data.origins.group
        splits["grouped"] = grouped_splits(groups, n_splits, seed, train_fraction)
    tasks = [(p, s) for p in splits for s in splits[p]]
    wall = time.perf_counter()
    outputs = Parallel(n_jobs=n_jobs)(
        delayed(run_split)(
            data.X, ys, s, strata, groups if p == "grouped" else None, seed, classifiers, alpha
        )
        for p, s in tasks
    )
    wall = time.perf_counter() - wall
    task_seconds = {
        k: round(float(sum(o["_seconds"][k] for o in outputs)), 3) for k in outputs[0]["_seconds"]
    }
    log.info(
        "%d split(s) in %.1f s wall with n_jobs=%d; seconds per classifier (summed over "
        "splits): %s",
        len(tasks),
        wall,
        n_jobs,
        task_seconds,
    )
    results = _results(classifiers, list(splits), labels, [p for p, _ in tasks], outputs)
    published_line = None
    if "ridge_published" in classifiers and "class6" in labels:
        published_line = results["ridge_published"]["published"]["class6"]["printed_line"]
    return {
        "n_images": int(data.X.shape[0]),
        "n_features": int(data.X.shape[1]),
        "labels": list(labels),
        "class_names": {name: list(LABEL_NAMES[name]) for name in labels},
        "n_splits": int(n_splits),
        "seed": int(seed),
        "train_fraction": train_fraction,
        "protocols": list(splits),
        "protocols_skipped": dict(data.skipped),
        "grouping": _grouping_summary(data.origins),
        "splits": {
            p: _split_summary(splits[p], groups if p == "grouped" else None) for p in splits
        },
        **_methods(seed, list(splits), alpha, train_fraction),
        "results": results,
        "published_printed_line": published_line,
        "leakage_gap": _leakage_gap(results, labels),
        "versus_ridge": _versus_ridge(results, labels),
        "provenance": dict(data.provenance),
        "timing_s": {"wall": round(wall, 3), "n_jobs": int(n_jobs), "summed": task_seconds},
    }


def compare_to_file(
    features: str,
    classifications: str,
    split_file: str,
    files_origin: str | None,
    labels: list[str],
    n_splits: int,
    seed: int,
    out: str,
    *,
    n_jobs: int = 1,
    alpha: float = RIDGE_ALPHA,
    train_fraction: float = TRAIN_FRACTION,
) -> None:
    """Score the classifiers under both protocols and write one JSON file (atomically).

    ``files_origin`` may be None (or a path that does not exist): then only the published
    protocol runs and ``protocols_skipped["grouped"]`` says why. ``n_jobs`` runs that many
    splits at once (processes, one BLAS thread each); results do not depend on it. ``alpha`` is
    the published ridge's and ``train_fraction`` the share of images that train (config
    ``ridge.alpha`` and ``ridge.train_fraction``).

    JSON keys: ``n_images``, ``n_features``, ``labels``, ``class_names``, ``n_splits``,
    ``seed``, ``train_fraction``, ``protocols`` (run), ``protocols_skipped`` (protocol ->
    reason), ``protocol_descriptions``, ``grouping`` (``source``, ``night_rule``,
    ``n_groups``, ``n_stations``, ``images_per_station``, ``images_per_group``; null without
    origins), ``splits`` (protocol -> per split ``n_train``, ``n_test``, ``train_fraction``,
    group counts), ``classifiers`` (model, options, C grid, search), ``cv`` (folds and scheme
    per protocol), ``results`` (classifier -> protocol -> label set -> ``accuracies``,
    ``mean_accuracy``, ``std_accuracy``, ``printed_line``, ``macro_f1s``, ``mean_macro_f1``,
    ``std_macro_f1``; for class2 ``aurora_tprs``, ``mean_aurora_tpr``, ``std_aurora_tpr``; for
    tuned models ``chosen_C``; ``per_split`` with ``split``, ``n_train``, ``n_test``,
    ``accuracy``, ``macro_f1``, ``recall`` per class, ``confusion_matrix`` and for tuned models
    ``chosen``, ``cv_scores`` (C -> mean CV accuracy), ``fits_at_max_iter``),
    ``published_printed_line`` (ridge_published / published / class6, as the original
    script prints it), ``leakage_gap`` (classifier -> label set -> published and grouped mean
    accuracy, ``gap``, ``gap_points``; empty without origins), ``versus_ridge`` (classifier ->
    protocol -> label set -> paired accuracy difference to ridge_published per split, mean, std)
    ``provenance`` and ``timing_s`` (wall seconds, ``n_jobs``, seconds per classifier summed over
    splits; the only key that changes between identical runs).
    """
    data = load_inputs(features, classifications, split_file, files_origin)
    result = compare(
        data,
        labels,
        n_splits,
        seed,
        split_file=split_file,
        n_jobs=n_jobs,
        alpha=alpha,
        train_fraction=train_fraction,
    )
    result["inputs"] = {
        "features": str(features),
        "classifications": str(classifications),
        "split_file": str(split_file),
        "files_origin": None if files_origin is None else str(files_origin),
    }
    write_json(out, result)
