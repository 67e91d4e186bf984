"""Beyond the 2018 protocol: how much of the published accuracy is same-night leakage?

Clausen & Nickisch (2018) scored ``RidgeClassifier(alpha=0.03)`` on 5 random 70/30 splits of
the OATH images (0.8174 +- 0.0103 for 6 classes). Consecutive THEMIS frames of one night look
alike, so a random split puts near-twins on both sides. This module scores the same features
under the two split protocols of :mod:`oath.fit.protocols` (``grouped`` needs
``images/files_origin.csv``, read by :mod:`oath.dataset.origins`; without it only ``published`` runs
and the result says why) with the classifiers of :mod:`oath.fit.classifiers`, for ``class6`` and
``class2``.

What is reported per classifier x protocol x label set: mean and (population) std of the test
accuracy over splits, macro F1, and for ``class2`` the aurora true-positive rate (recall of
class 0, "aurora"; the paper's 96 % is such a rate). The leakage gap is the published minus
the grouped mean accuracy. :func:`compare_to_file` writes everything as JSON;
:mod:`oath.report.protocols` turns that JSON into a report section.

Feature sets: all of the above runs on ``Logits``, as published; a ``PreLogitsFlatten`` in the
file is scored on the same splits (:func:`layer_plan`: the published ridge only, unless it is
the configured feature set) and every row is set against the published ridge on Logits.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sklearn
from joblib import Parallel, delayed

from oath.dataset.origins import Origins, ProtocolInputError, read_origins
from oath.dataset.splits import TRAIN_FRACTION, load_split
from oath.dataset.table import LABEL_NAMES, load_classifications
from oath.fit.classifiers import (
    CLASSIFIERS,
    CV_FOLDS,
    DEFAULT_CLASSIFIERS,
    RIDGE_ALPHA,
    check_classifiers,
    run_split,
)
from oath.fit.protocols import (
    Split,
    grouped_shortfall,
    grouped_splits,
    published_splits,
    tuned_left_out,
)
from oath.fit.ridge import write_json
from oath.fit.summaries import (
    layer_results,
    leakage_gap,
    methods,
    split_summary,
    versus_published_ridge,
    versus_ridge,
)
from oath.network.featurefile import (
    LAYERS,
    LOGITS,
    RANDOM_WEIGHTS_ATTR,
    AlignmentError,
    aligned_features,
    read_features,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ComparisonData:
    """Feature sets aligned to the table, labels, split-file rows and (optionally) origins."""

    layers: dict[str, np.ndarray]  # feature set -> (N, d) float32, row j = table row j
    table: pd.DataFrame
    split_rows: np.ndarray
    origins: Origins | None
    skipped: dict[str, str]  # protocol -> why it did not run
    provenance: dict[str, Any]
    layer: str = LOGITS  # the configured feature set: every classifier runs on it
    layers_skipped: dict[str, str] | None = None  # feature set -> why it did not run

    @property
    def X(self) -> np.ndarray:
        """The Logits, as published."""
        return self.layers[LOGITS]


def _aligned_layers(
    features: str, classifications: str, pic_nums: np.ndarray, layer: str
) -> tuple[dict[str, np.ndarray], dict[str, str], dict[str, str]]:
    """Every feature set the file holds, aligned; why the others are missing; its attributes.

    Raises the feature file's error (it says to re-extract) when the configured ``layer``
    is missing.
    """
    if layer not in LAYERS:
        raise ProtocolInputError(f"unknown feature set {layer!r}; use one of {LAYERS}.")
    feats = read_features(features)
    layers, missing = {}, {}
    for name in LAYERS:
        if name != layer and name != LOGITS and feats.prelogits is None:
            missing[name] = (
                f"{features} holds Logits only (as the published auroral_feat.h5 does, or "
                f"features extracted before {name} was written: re-extract those to compare it)"
            )
            continue
        try:
            aligned = aligned_features(features, feats, pic_nums, classifications, name)
        except AlignmentError as exc:
            raise ProtocolInputError(str(exc)) from None
        layers[name] = np.ascontiguousarray(aligned)
    return layers, missing, feats.attrs


def load_inputs(
    features: str,
    classifications: str,
    split_file: str,
    files_origin: str | None,
    layer: str = LOGITS,
) -> ComparisonData:
    """Read and check the inputs; features are matched to table rows by picNum.

    Raises :class:`ProtocolInputError` (a ``ValueError``) naming the file when features and
    table disagree in length or picNums, or the features hold NaN or infinite values; a
    ``FeatureFileError`` when the file lacks the configured feature set ``layer``. Logits are
    always read; ``PreLogitsFlatten`` too when the file holds it.
    """
    table = load_classifications(classifications)
    pic_nums = table["picNum"].to_numpy(dtype=np.int64)
    layers, layers_skipped, attrs = _aligned_layers(features, classifications, pic_nums, layer)
    for name, reason in layers_skipped.items():
        log.warning("feature set %s not compared: %s", name, reason)
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
    keys = ("weights", "checkpoint_sha256", "precision", RANDOM_WEIGHTS_ATTR)
    provenance = {k: attrs.get(k) for k in keys}
    provenance.update(sklearn_version=sklearn.__version__, numpy_version=np.__version__)
    return ComparisonData(
        layers, table, split_rows, origins, skipped, provenance, layer, layers_skipped
    )


def layer_plan(
    layers: Sequence[str], layer: str, classifiers: Sequence[str] = CLASSIFIERS
) -> dict[str, tuple[str, ...]]:
    """Feature set -> the classifiers scored on it: every one on Logits (as published) and on
    the configured ``layer``; the published ridge alone on any other (it costs seconds where
    the tuned models cost minutes)."""
    return {
        name: tuple(classifiers)
        if name in (LOGITS, layer)
        else tuple(c for c in classifiers if c == "ridge_published")
        for name in layers
    }


def _run_tasks(
    data: ComparisonData,
    plan: dict[str, tuple[str, ...]],
    ys: dict[str, np.ndarray],
    splits: dict[str, list[Split]],
    seed: int,
    n_jobs: int,
    alpha: float,
) -> tuple[list[tuple[str, str, Split]], list[dict[str, Any]], dict[str, Any]]:
    """Every feature set x split in parallel; the tasks, their outputs and the timing."""
    strata = data.table["class6"].to_numpy(dtype=np.int64)
    groups = data.origins.group if data.origins is not None else None
    cv_groups = {"published": None, "grouped": groups}
    tasks = [(name, p, s) for name in plan if plan[name] for p in splits for s in splits[p]]
    wall = time.perf_counter()
    outputs = Parallel(n_jobs=n_jobs)(
        delayed(run_split)(data.layers[name], ys, s, strata, cv_groups[p], seed, plan[name], alpha)
        for name, p, s in tasks
    )
    wall = time.perf_counter() - wall
    per_layer: dict[str, Counter[str]] = {name: Counter() for name, _, _ in tasks}
    for (name, _, _), output in zip(tasks, outputs, strict=True):
        per_layer[name].update(output["_seconds"])
    summed: Counter[str] = Counter()
    for sums in per_layer.values():
        summed.update(sums)

    def rounded(sums: Counter[str]) -> dict[str, float]:
        return {k: round(float(v), 3) for k, v in sums.items()}

    timing = {"wall": round(wall, 3), "n_jobs": int(n_jobs), "summed": rounded(summed)}
    timing["summed_per_layer"] = {name: rounded(sums) for name, sums in per_layer.items()}
    log.info(
        "%d split task(s) in %.1f s wall with n_jobs=%d; seconds per feature set and "
        "classifier (summed over splits): %s",
        len(tasks),
        wall,
        n_jobs,
        timing["summed_per_layer"],
    )
    return tasks, outputs, timing


def _checked(labels: Sequence[str], n_splits: int, classifiers: Sequence[str]) -> list[str]:
    """The classifiers to run, once labels, split count and classifier names are known good."""
    try:
        classifiers = check_classifiers(classifiers)
    except ValueError as exc:
        raise ProtocolInputError(str(exc)) from None
    for name in labels:
        if name not in LABEL_NAMES:
            raise ProtocolInputError(
                f"unknown label set {name!r}; use {', '.join(sorted(LABEL_NAMES))}."
            )
    if n_splits < 1:
        raise ProtocolInputError(f"n_splits must be at least 1, got {n_splits}.")
    return list(classifiers)


@dataclass
class _Protocols:
    """The split protocols the data supports, and what was left out and why."""

    splits: dict[str, list[Split]]
    groups: np.ndarray | None
    classifiers: list[str]
    skipped: dict[str, str]
    left_out: dict[str, Any]
    classifiers_left_out: dict[str, Any]

    @classmethod
    def plan(
        cls,
        data: ComparisonData,
        classifiers: list[str],
        n_splits: int,
        seed: int,
        split_file: str,
        train_fraction: float,
    ) -> _Protocols:
        published = published_splits(data.split_rows, n_splits, split_file, train_fraction)
        strata = data.table["class6"].to_numpy(dtype=np.int64)
        classifiers, dropped = tuned_left_out(classifiers, published, strata, CV_FOLDS)
        found = cls({"published": published}, None, classifiers, dict(data.skipped), {}, dropped)
        if data.origins is None:
            return found
        found.groups = groups = data.origins.group
        tuned = any(c != "ridge_published" for c in classifiers)
        short = grouped_shortfall(groups, n_splits, seed, train_fraction, cross_validated=tuned)
        if short is None:
            found.splits["grouped"] = grouped_splits(groups, n_splits, seed, train_fraction)
            found.classifiers, more = tuned_left_out(
                classifiers, found.splits["grouped"], strata, CV_FOLDS
            )
            found.classifiers_left_out.update(more)
        else:
            found.skipped["grouped"] = f"{short['reason']}; only the published splits were scored"
            found.left_out["grouped"] = short
            log.warning("grouped protocol left out: %s", found.skipped["grouped"])
        return found


def compare(
    data: ComparisonData,
    labels: Sequence[str],
    n_splits: int,
    seed: int,
    split_file: str = "split file",
    n_jobs: int = 1,
    classifiers: Sequence[str] = DEFAULT_CLASSIFIERS,
    *,
    alpha: float = RIDGE_ALPHA,
    train_fraction: float = TRAIN_FRACTION,
) -> dict[str, Any]:
    """Score every feature set x classifier x protocol x label set (:func:`layer_plan` says
    which classifiers run on which feature set); see :func:`compare_to_file` for keys."""
    classifiers = _checked(labels, n_splits, classifiers)
    ys = {name: data.table[name].to_numpy(dtype=np.int64) for name in labels}
    protocols = _Protocols.plan(data, classifiers, n_splits, seed, split_file, train_fraction)
    splits, groups, classifiers = protocols.splits, protocols.groups, protocols.classifiers
    skipped, left_out = protocols.skipped, protocols.left_out
    classifiers_left_out = protocols.classifiers_left_out
    plan = layer_plan(list(data.layers), data.layer, classifiers)
    tasks, outputs, timing = _run_tasks(data, plan, ys, splits, seed, n_jobs, alpha)
    by_layer = {}
    for layer in plan:
        ran = [k for k, (name, _, _) in enumerate(tasks) if name == layer]
        if ran:
            protocols_run = [tasks[k][1] for k in ran]
            outputs_run = [outputs[k] for k in ran]
            by_layer[layer] = layer_results(
                layer, plan[layer], list(splits), labels, protocols_run, outputs_run
            )
    results = by_layer[LOGITS]
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
        "protocols_skipped": skipped,
        "protocols_left_out": left_out,
        "origins_left_out": [] if data.origins is None else list(data.origins.left_out),
        "layer": data.layer,
        "layers": {
            name: {"n_features": int(data.layers[name].shape[1]), "classifiers": list(plan[name])}
            for name in by_layer
        },
        "layers_skipped": dict(data.layers_skipped or {}),
        "grouping": None if data.origins is None else data.origins.summary(),
        "splits": {p: split_summary(splits[p], groups if p == "grouped" else None) for p in splits},
        "classifiers_run": list(classifiers),
        "classifiers_left_out": classifiers_left_out,
        **methods(seed, list(splits), alpha, train_fraction, classifiers),
        "results": results,
        "layer_results": {name: r for name, r in by_layer.items() if name != LOGITS},
        "published_printed_line": published_line,
        "leakage_gap": leakage_gap(results, labels),
        "versus_ridge": versus_ridge(results, labels),
        "versus_published_ridge": versus_published_ridge(by_layer, labels),
        "provenance": dict(data.provenance),
        "timing_s": timing,
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
    layer: str = LOGITS,
    classifiers: Sequence[str] = DEFAULT_CLASSIFIERS,
) -> None:
    """Score the classifiers under both protocols on each feature set and write one JSON file
    (atomically).

    ``files_origin`` may be None (or a path that does not exist): then only the published
    protocol runs and ``protocols_skipped["grouped"]`` says why. ``n_jobs`` runs that many
    splits at once (processes, one BLAS thread each); results do not depend on it. ``alpha`` is
    the published ridge's and ``train_fraction`` the share of images that train (config
    ``ridge.alpha`` and ``ridge.train_fraction``). ``layer`` is the configured feature set
    (config ``features``): every classifier runs on it and on Logits; any other feature set
    the file holds gets the published ridge only. A file without the configured feature set
    is refused (``FeatureFileError``, saying to re-extract). ``classifiers`` are the ones
    scored (config ``compare.classifiers``; names from ``oath.fit.classifiers.CLASSIFIERS``, the
    published ridge among them, else :class:`ProtocolInputError` listing the names).

    JSON keys: ``n_images``, ``n_features``, ``labels``, ``class_names``, ``n_splits``,
    ``seed``, ``train_fraction``, ``protocols`` (run), ``protocols_skipped`` (protocol ->
    reason), ``protocols_left_out`` (protocol -> ``reason``, ``found``, ``needed``, ``what``:
    a minimum not met), ``origins_left_out`` (files_origin.csv rows left out of the grouping:
    ``file``, ``line``, ``picNum``, ``reason``), ``classifiers_left_out`` (tuned classifier ->
    as protocols_left_out), ``protocol_descriptions``, ``grouping`` (``source``, ``night_rule``,
    ``n_groups``, ``n_stations``, ``images_per_station``, ``images_per_group``; null without
    origins), ``splits`` (protocol -> per split ``n_train``, ``n_test``, ``train_fraction``,
    group counts), ``classifiers_run`` (names, in the order run), ``classifiers`` (of those:
    model, options, C grid, search), ``cv`` (folds and scheme
    per protocol), ``results`` (classifier -> protocol -> label set -> ``accuracies``,
    ``mean_accuracy``, ``std_accuracy``, ``printed_line``, ``macro_f1s``, ``mean_macro_f1``,
    ``std_macro_f1``; for class2 ``aurora_tprs``, ``mean_aurora_tpr``, ``std_aurora_tpr``; for
    tuned models ``chosen_C``; ``per_split`` with ``split``, ``n_train``, ``n_test``,
    ``accuracy``, ``macro_f1``, ``recall`` per class, ``confusion_matrix`` and for tuned models
    ``chosen``, ``cv_scores`` (C -> mean CV accuracy), ``fits_at_max_iter``),
    ``published_printed_line`` (ridge_published / published / class6, as the original
    script prints it), ``leakage_gap`` (classifier -> label set -> published and grouped mean
    accuracy, ``gap``, ``gap_points``; empty without origins), ``versus_ridge`` (classifier ->
    protocol -> label set -> paired accuracy difference to ridge_published per split, mean, std),
    all of these on Logits; then the feature-set dimension: ``layer`` (configured), ``layers``
    (feature set -> ``n_features``, ``classifiers`` run), ``layers_skipped`` (feature set ->
    reason), ``layer_results`` (feature sets other than Logits -> the same nesting as
    ``results``), ``versus_published_ridge`` (feature set -> classifier -> protocol -> label set
    -> ``difference`` and ``difference_points`` of the mean accuracy to the published ridge on
    Logits under the same protocol, ``reference_std`` (that ridge's std over splits),
    ``in_split_std`` (the difference in units of it; null when it is 0), ``paired_mean`` and
    ``paired_std`` over the same splits); ``provenance`` and ``timing_s`` (wall seconds,
    ``n_jobs``, seconds per classifier summed over splits, ``summed_per_layer``; the only key
    that changes between identical runs).
    """
    data = load_inputs(features, classifications, split_file, files_origin, layer)
    result = compare(
        data,
        labels,
        n_splits,
        seed,
        split_file=split_file,
        n_jobs=n_jobs,
        classifiers=classifiers,
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
