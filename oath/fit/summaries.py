"""The comparison's summaries: mean and spread per classifier, protocol and label set, the
leakage gap, each classifier against the published ridge, the splits and the methods in words
(:func:`oath.fit.comparison.compare` assembles them into protocols.json)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from oath.fit.classifiers import (
    CV_FOLDS,
    LOGISTIC_CS,
    LOGISTIC_OPTIONS,
    SVM_CS,
    SVM_OPTIONS,
    SVM_PATIENCE,
)
from oath.fit.protocols import (
    Split,
)
from oath.network.featurefile import (
    LOGITS,
)

AURORA = 0  # class index of "aurora" in class2

log = logging.getLogger(__name__)


def summary(per_split: list[dict[str, Any]], labels: str) -> dict[str, Any]:
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


def log_entry(c: str, p: str, name: str, entry: dict[str, Any]) -> None:
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
    grid = {"logistic": LOGISTIC_CS, "linear_svm": SVM_CS}.get(c.rsplit(" / ", 1)[-1])
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


def layer_results(
    layer: str,
    classifiers: Sequence[str],
    protocols: list[str],
    labels: Sequence[str],
    task_protocols: list[str],
    outputs: list[dict[str, Any]],
) -> dict[str, Any]:
    """classifier -> protocol -> label set -> summary over that protocol's splits, for one
    feature set (``layer``, named in the log)."""
    results: dict[str, Any] = {c: {p: {} for p in protocols} for c in classifiers}
    for c in classifiers:
        for p in protocols:
            for name in labels:
                per_split = [
                    o[c][name] for q, o in zip(task_protocols, outputs, strict=True) if q == p
                ]
                results[c][p][name] = summary(per_split, name)
                log_entry(f"{layer} / {c}", p, name, results[c][p][name])
    return results


def leakage_gap(results: dict[str, Any], labels: Sequence[str]) -> dict[str, Any]:
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


def versus_ridge(results: dict[str, Any], labels: Sequence[str]) -> dict[str, Any]:
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


def split_summary(splits: list[Split], groups: np.ndarray | None) -> list[dict[str, Any]]:
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


def methods(
    seed: int,
    protocols_run: Sequence[str],
    alpha: float,
    train_fraction: float,
    classifiers: Sequence[str],
) -> dict[str, Any]:
    """The protocols, the classifiers that ran and the CV scheme in words, for the JSON."""
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
            name: described
            for name, described in {
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
            }.items()
            if name in classifiers
        },
        "cv": {
            "folds": CV_FOLDS,
            "scheme": {p: cv_words[p] for p in protocols_run},
            "strata": "class6 of the training rows (both label sets share the folds)",
            "note": "selection reads the training part of each split only",
        },
    }


def versus_published_ridge(
    by_layer: dict[str, dict[str, Any]], labels: Sequence[str]
) -> dict[str, Any]:
    """Each feature set x classifier x protocol x label set against the published ridge on
    Logits under the same protocol: the accuracy difference, in points and in units of that
    ridge's std over splits, and paired over the same splits."""
    reference = by_layer.get(LOGITS, {}).get("ridge_published")
    if reference is None:
        return {}
    out: dict[str, Any] = {}
    for layer, results in by_layer.items():
        for c, by_protocol in results.items():
            for p, by_label in by_protocol.items():
                for name in labels:
                    ref, entry = reference[p][name], by_label[name]
                    diff = entry["mean_accuracy"] - ref["mean_accuracy"]
                    paired = np.subtract(entry["accuracies"], ref["accuracies"])
                    std = ref["std_accuracy"]
                    out.setdefault(layer, {}).setdefault(c, {}).setdefault(p, {})[name] = {
                        "difference": float(diff),
                        "difference_points": float(100.0 * diff),
                        "reference_std": float(std),
                        "in_split_std": float(diff / std) if std > 0 else None,
                        "paired_mean": float(np.mean(paired)),
                        "paired_std": float(np.std(paired)),
                    }
    return out
