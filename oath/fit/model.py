"""Classify new all-sky images with the published ridge classifier, trained once and saved.

:func:`train_model` fits ``RidgeClassifier(alpha)`` per label set (class6, class2) on one
Inception-v4 feature set of the labelled images (``Logits`` as published, or the pooled
``PreLogitsFlatten``), all of them or only the training part of one split row, and saves the
fitted numbers (no pickle) with their provenance, the feature set included: :func:`predict`
refuses features of the other set. :func:`predict`
reproduces ``RidgeClassifier.decision_function`` and ``predict`` exactly from those numbers;
:func:`classify_to_csv` labels the images of a manifest (:mod:`oath.archive.themis`) and
:func:`plot_class_counts` and :func:`contact_sheet` summarise the result.

Model file (``.npz``, read with ``allow_pickle=False``): ``format``; ``provenance`` (a JSON
text); per label set ``<labels>__coef``, ``<labels>__intercept``, ``<labels>__classes`` (the
class numbers seen in training, sklearn's ``classes_``) and ``<labels>__class_names``. Arrays
keep sklearn's dtype and memory order, so the scores are the same bits sklearn computes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import platform
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import sklearn
from sklearn.linear_model import RidgeClassifier

from oath.archive.themis import STATUS_OK, read_prepared_table
from oath.atomic import atomic_path, write_bytes
from oath.dataset.splits import TRAIN_FRACTION, load_split, train_test_rows
from oath.dataset.table import LABEL_NAMES, load_classifications
from oath.fit.ridge import class_scores
from oath.imaging import figures
from oath.imaging.figures import SheetCell, SheetRow, thumbnail
from oath.network.featurefile import (
    BACKEND_ATTR,
    LAYERS,
    LOGITS,
    MODEL_ATTRS,
    Features,
    aligned_features,
    read_features,
)

log = logging.getLogger(__name__)

MODEL_FORMAT = "oath-ridge-model/1"


class ModelError(ValueError):
    """Training inputs, a model file or classification inputs are wrong; names file and fix."""


@dataclass(frozen=True)
class LabelModel:
    """The fitted numbers of one label set, as sklearn holds them."""

    labels: str
    class_names: tuple[str, ...]  # every class of the label set, by number
    classes: np.ndarray  # sklearn's classes_: class numbers seen in training
    coef: np.ndarray
    intercept: np.ndarray


@dataclass(frozen=True)
class Model:
    label_models: dict[str, LabelModel]
    provenance: dict[str, Any]


class Prediction(NamedTuple):
    classes: np.ndarray  # predicted class numbers (int64)
    names: list[str]  # their names
    scores: np.ndarray  # decision_function: (N,) for two classes (score of classes[1]), else (N, k)


# --------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------
def _package_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "unknown"


def _features_info(path: str, feats: Features, layer: str, width: int) -> dict[str, Any]:
    """What the model's training features were: file, feature set, width, provenance."""
    return {
        "path": str(path),
        "layer": layer,
        "n_features": width,
        **{key: feats.attrs.get(key) for key in MODEL_ATTRS},
    }


def _versions() -> dict[str, str]:
    return {
        "sklearn": sklearn.__version__,
        "numpy": np.__version__,
        "oath": _package_version("oath-pipeline"),
        "python": platform.python_version(),
    }


def model_layer(model: Model) -> str:
    """The feature set the model was trained on (models from before the choice: Logits)."""
    layer = str(model.provenance.get("features", {}).get("layer") or LOGITS)
    if layer not in LAYERS:
        raise ModelError(f"the model names an unknown feature set {layer!r}; train it again.")
    return layer


def _training_rows(
    table: pd.DataFrame, split_file: str | None, split: int | None, train_fraction: float
) -> tuple[np.ndarray, dict[str, Any]]:
    """Table rows to train on (all, or the training part of one split) and how they were chosen."""
    n_images = len(table)
    if split is None:
        rows = np.arange(n_images)
        training: dict[str, Any] = {"images": "all labelled images"}
    else:
        if split_file is None:
            raise ModelError(f"split {split} asked for but no split file given.")
        split_rows = load_split(split_file, n_images)
        rows, _ = train_test_rows(split_rows, split, train_fraction, str(split_file))
        training = {
            "images": f"training part of split {split}",
            "split_file": str(split_file),
            "split": int(split),
            "train_fraction": float(train_fraction),
        }
    train_pics = table["picNum"].to_numpy(dtype=np.int64)[rows]
    training.update(
        n_train=int(len(rows)),
        n_labelled=int(n_images),
        train_picnums_sha256=hashlib.sha256(np.sort(train_pics).tobytes()).hexdigest(),
    )
    return rows, training


def train_model(
    features: str,
    classifications: str,
    labels: Sequence[str],
    alpha: float,
    out: str,
    *,
    split_file: str | None = None,
    split: int | None = None,
    train_fraction: float = TRAIN_FRACTION,
    provenance: Mapping[str, Any] | None = None,
    layer: str = LOGITS,
) -> None:
    """Fit ``RidgeClassifier(alpha)`` per label set on feature set ``layer`` and save it to
    ``out`` (see module doc).

    With ``split=None`` it trains on every labelled image; with ``split=i`` only on the first
    ``round(train_fraction * N)`` indices of row ``i`` (0-based) of ``split_file``, as the
    published evaluation does, so the rest stay unseen. Feature rows are matched to
    ``classifications.csv`` rows by picNum. ``provenance`` (e.g. the data set) is stored as
    given under ``run``.
    """
    labels = list(labels)
    if not labels:
        raise ModelError("no label sets given; use class6 and/or class2.")
    for name in labels:
        if name not in LABEL_NAMES:
            raise ModelError(f"unknown label set {name!r}; use {', '.join(LABEL_NAMES)}.")
    if not alpha > 0:
        raise ModelError(f"alpha must be positive, not {alpha}.")
    table = load_classifications(classifications)
    feats = read_features(features)
    pic_nums = table["picNum"].to_numpy(dtype=np.int64)
    X = aligned_features(features, feats, pic_nums, classifications, layer)
    rows, training = _training_rows(table, split_file, split, train_fraction)
    label_models: dict[str, LabelModel] = {}
    class_counts: dict[str, dict[str, int]] = {}
    for name in labels:
        y = table[name].to_numpy(dtype=np.int64)[rows]
        clf = RidgeClassifier(alpha=alpha).fit(X[rows], y)
        label_models[name] = LabelModel(
            labels=name,
            class_names=tuple(LABEL_NAMES[name]),
            classes=np.asarray(clf.classes_),
            coef=np.asarray(clf.coef_),
            intercept=np.asarray(clf.intercept_),
        )
        counts = np.bincount(y, minlength=len(LABEL_NAMES[name]))
        class_counts[name] = {n: int(c) for n, c in zip(LABEL_NAMES[name], counts, strict=True)}
        absent = [LABEL_NAMES[name][k] for k in np.flatnonzero(counts == 0)]
        if absent:
            log.warning("%s: class(es) %s absent from training; never predicted", name, absent)
    info = {
        "format": MODEL_FORMAT,
        "classifier": f"sklearn.linear_model.RidgeClassifier(alpha={alpha!r})",
        "alpha": float(alpha),
        "labels": labels,
        "training": training,
        "class_counts": class_counts,
        "classifications": str(classifications),
        "features": _features_info(features, feats, layer, int(X.shape[1])),
        "versions": _versions(),
        "run": dict(provenance or {}),
    }
    save_model(Model(label_models=label_models, provenance=info), out)
    log.info(
        "trained %s on %d of %d labelled images (alpha %g) -> %s",
        ", ".join(labels),
        len(rows),
        len(table),
        alpha,
        out,
    )


# --------------------------------------------------------------------------------------------
# Saving and loading (no pickle)
# --------------------------------------------------------------------------------------------
def save_model(model: Model, path: str | Path) -> None:
    """Write the model as an ``.npz`` of plain arrays plus JSON text, atomically."""
    path = Path(path)
    arrays: dict[str, np.ndarray] = {
        "format": np.array(MODEL_FORMAT),
        "provenance": np.array(json.dumps(model.provenance, indent=1, sort_keys=True)),
    }
    for name, lm in model.label_models.items():
        arrays[f"{name}__coef"] = lm.coef
        arrays[f"{name}__intercept"] = lm.intercept
        arrays[f"{name}__classes"] = np.asarray(lm.classes, dtype=np.int64)
        arrays[f"{name}__class_names"] = np.array(lm.class_names, dtype=str)
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, **arrays)  # a handle: np.savez would add .npz to a bare name


def load_model(path: str | Path) -> Model:
    """Read a model written by :func:`train_model` (``allow_pickle=False``)."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except (OSError, ValueError) as exc:
        raise ModelError(f"{path}: not a model file written by oath.fit.model ({exc}).") from exc
    if str(arrays.get("format", "")) != MODEL_FORMAT:
        raise ModelError(f"{path}: not a {MODEL_FORMAT} file; train the model again.")
    provenance = json.loads(str(arrays["provenance"]))
    label_models = {}
    for name in provenance["labels"]:
        try:
            lm = LabelModel(
                labels=name,
                class_names=tuple(str(n) for n in arrays[f"{name}__class_names"]),
                classes=arrays[f"{name}__classes"],
                coef=arrays[f"{name}__coef"],
                intercept=arrays[f"{name}__intercept"],
            )
        except KeyError as exc:
            raise ModelError(f"{path}: label set {name} lacks {exc}; train again.") from exc
        label_models[name] = lm
    return Model(label_models=label_models, provenance=provenance)


# --------------------------------------------------------------------------------------------
# Predicting
# --------------------------------------------------------------------------------------------
def _decision_function(lm: LabelModel, X: np.ndarray) -> np.ndarray:
    """sklearn's ``LinearClassifierMixin.decision_function`` on the saved numbers."""
    coef_t = lm.coef.T if lm.coef.ndim == 2 else lm.coef
    scores = X @ coef_t + lm.intercept
    return scores.reshape(-1) if scores.ndim > 1 and scores.shape[1] == 1 else scores


def predict(
    model: Model | str | Path, features: np.ndarray, layer: str = LOGITS
) -> dict[str, Prediction]:
    """Class numbers, names and decision scores per label set, as ``RidgeClassifier`` gives.

    ``features`` are rows of feature set ``layer``; a model trained on the other feature set
    refuses them. Two classes: the score is 1-d and the class is ``classes[score > 0]``; more:
    the class of the largest score (first on ties, like ``argmax``).
    """
    if not isinstance(model, Model):
        model = load_model(model)
    trained = model_layer(model)
    if layer != trained:
        raise ModelError(
            f"the model was trained on {trained} features and cannot score {layer} features "
            f"(another Inception-v4 layer: the numbers would mean nothing). Classify with "
            f"{trained} features, or train the model again on {layer} (config features: "
            f"{layer})."
        )
    X = np.asarray(features)
    if X.ndim != 2:
        raise ModelError(f"features must be a 2-d matrix, not shape {X.shape}.")
    out = {}
    for name, lm in model.label_models.items():
        width = lm.coef.shape[-1]
        if X.shape[1] != width:
            raise ModelError(
                f"{name}: the model takes {width} {trained} features, these have {X.shape[1]}."
            )
        scores = _decision_function(lm, X)
        index = (scores > 0).astype(np.intp) if scores.ndim == 1 else scores.argmax(axis=1)
        classes = np.asarray(lm.classes)[index].astype(np.int64)
        out[name] = Prediction(classes, [lm.class_names[c] for c in classes], scores)
    return out


def score_column(labels: str, class_name: str) -> str:
    """CSV column of one class's decision score, e.g. ``class2_score_no_aurora``."""
    return f"{labels}_score_{class_name.replace(' ', '_')}"


def _check_features_match(model: Model, attrs: Mapping[str, str], features: str) -> None:
    trained = model.provenance.get("features", {})
    ours, theirs = trained.get("checkpoint_sha256"), attrs.get("checkpoint_sha256")
    if ours and theirs and ours != theirs:
        raise ModelError(
            f"{features} was extracted with checkpoint sha256 {theirs[:12]}..., the model was "
            f"trained on features from {ours[:12]}... ({trained.get('weights')}). Scores would "
            "mean nothing: extract the new images with the checkpoint the model was trained with."
        )
    if not (ours and theirs):
        log.warning(
            "cannot check that %s and the model's training features come from the same "
            "weights (checkpoint_sha256 missing)",
            features,
        )
    for key in ("precision", "preprocessing", BACKEND_ATTR):
        if trained.get(key) and attrs.get(key) and trained.get(key) != attrs.get(key):
            log.warning(
                "%s: %s %r differs from the training features' %r",
                features,
                key,
                attrs[key],
                trained[key],
            )


def classify_to_csv(features: str, manifest: str, model: str, out_csv: str) -> None:
    """One CSV row per manifest row: the predictions of each label set, or why there are none.

    Columns: ``file``, ``frame``, ``timestamp``, ``site``, ``png``; per label set ``<labels>``
    (class number), ``<labels>_name`` and ``<labels>_score_<class>`` (decision score, one per
    class; two classes: ``-d`` and ``d``; a class unseen in training: empty); ``status``
    (``ok`` or ``failed: <reason>``, with empty predictions). Feature rows are matched to the
    manifest by the PNG's file name. Refuses features made with other weights than the model's
    training features.
    """
    fitted = load_model(model)
    feats = read_features(features)
    table = read_prepared_table(manifest)
    _check_features_match(fitted, feats.attrs, features)
    row_of = {name: i for i, name in enumerate(feats.filenames)}
    ok = (table["status"] == STATUS_OK).to_numpy()
    names = [Path(p).name for p in table["png"]]
    have = np.array([n in row_of for n in names])
    lost = ok & ~have
    if lost.any():
        log.warning("%d image(s) of %s have no features in %s", int(lost.sum()), manifest, features)
        table.loc[lost, "status"] = f"failed: no features in {Path(features).name}"
    use = ok & have
    unused = len(row_of) - int(use.sum())
    if unused:
        log.warning("%s: %d feature row(s) not in the manifest, ignored", features, unused)
    # Score the feature file as it is (all rows, file order): the same matrix, the same bits as
    # RidgeClassifier.decision_function(read_features(features).logits) (or .prelogits).
    layer = model_layer(fitted)
    matrix = feats.layer(layer, features)
    predictions = predict(fitted, matrix, layer) if len(feats.filenames) else {}
    picked = np.array([row_of[n] for n, u in zip(names, use, strict=True) if u], dtype=np.intp)
    out = table[["file", "frame", "timestamp", "site", "png"]].copy()
    for name, lm in fitted.label_models.items():
        number = pd.array([pd.NA] * len(out), dtype="Int64")
        label = pd.Series([""] * len(out), dtype=object)
        full = np.full((len(out), len(lm.class_names)), np.nan)
        if name in predictions and picked.size:
            pred = predictions[name]
            number[use] = pred.classes[picked]
            label[use] = [pred.names[i] for i in picked]
            full[use] = class_scores(pred.scores[picked], lm.classes, len(lm.class_names))
        out[name] = number
        out[f"{name}_name"] = label.to_numpy()
        for k, class_name in enumerate(lm.class_names):
            out[score_column(name, class_name)] = full[:, k]
    out["status"] = table["status"].to_numpy()
    with atomic_path(out_csv) as tmp:
        out.to_csv(tmp, index=False)
    log.info("classified %d image(s), %d failed -> %s", int(use.sum()), int((~use).sum()), out_csv)


# --------------------------------------------------------------------------------------------
# Pictures
# --------------------------------------------------------------------------------------------
TIME_BINS = (("1min", 60), ("10min", 600), ("1h", 3600), ("6h", 21600), ("1D", 86400))
MAX_BINS = 48


def _read_predictions(csv: str | Path) -> tuple[pd.DataFrame, list[str]]:
    table = pd.read_csv(csv, dtype={"site": str, "timestamp": str, "status": str})
    label_sets = [name for name in LABEL_NAMES if f"{name}_name" in table.columns]
    if not label_sets:
        raise ModelError(f"{csv}: no prediction columns (class6_name or class2_name).")
    table["site"] = table["site"].fillna("").astype(str)
    return table, label_sets


def _time_axis(part: pd.DataFrame) -> tuple[pd.Series, list[str], str]:
    """Bin key per row, every bin in axis order, and the axis title.

    Time bins (empty ones shown) when every row has a time, else input files in file order.
    """
    times = pd.to_datetime(part["timestamp"], utc=True, errors="coerce", format="ISO8601")
    if len(part) and times.notna().all():
        start, end = times.min(), times.max()
        for freq, seconds in TIME_BINS:
            if (end - start).total_seconds() / seconds < MAX_BINS:
                every = pd.date_range(start.floor(freq), end.floor(freq), freq=freq)
                fmt = "%Y-%m-%d %H:%M"
                keys = times.dt.floor(freq).dt.strftime(fmt)
                return keys, [t.strftime(fmt) for t in every], f"time (UTC), {freq} bins"
        months = pd.period_range(start.tz_localize(None), end.tz_localize(None), freq="M")
        keys = times.dt.strftime("%Y-%m")
        return keys, [m.strftime("%Y-%m") for m in months], "time (UTC), months"
    keys = part["file"].map(lambda f: Path(str(f)).name)
    return keys, list(pd.unique(keys)), "input file (file order; no timestamps)"


def _ordered_sites(sites: Sequence[str]) -> list[str]:
    """Site codes sorted, the unknown site (empty) last."""
    return sorted(set(sites), key=lambda site: (site == "", site)) or [""]


def plot_class_counts(csv: str, out_png: str) -> None:
    """Predicted class counts per site over time (stacked bars; file order without timestamps).

    One row of panels per site (empty site: "unknown site", last), one column per label set;
    time bins are chosen per site so that there are fewer than 48, empty bins shown.
    """
    from matplotlib import colormaps
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    table, label_sets = _read_predictions(csv)
    is_ok = table["status"] == STATUS_OK
    ok = table[is_ok]
    sites = _ordered_sites(ok["site"].tolist())
    fig = Figure(
        figsize=(6.5 * len(label_sets) + 1.2, 2.6 * len(sites) + 0.9), layout="constrained"
    )
    axes = fig.subplots(len(sites), len(label_sets), squeeze=False)
    colours = colormaps["tab10"]
    for row, site in enumerate(sites):
        part = ok[ok["site"] == site]
        bins, every_bin, xlabel = _time_axis(part)
        for col, name in enumerate(label_sets):
            ax = axes[row, col]
            class_names = LABEL_NAMES[name]
            ax.set_title(f"{site or 'unknown site'}: {name}, {len(part)} image(s)", fontsize=9)
            if part.empty:
                ax.text(0.5, 0.5, "no images classified", ha="center", va="center")
                ax.set_axis_off()
                continue
            counts = (
                pd.crosstab(bins, part[f"{name}_name"])
                .reindex(columns=list(class_names), fill_value=0)
                .reindex(every_bin, fill_value=0)
            )
            x = np.arange(len(counts))
            bottom = np.zeros(len(counts))
            for k, class_name in enumerate(class_names):
                values = counts[class_name].to_numpy(dtype=float)
                ax.bar(x, values, bottom=bottom, width=0.9, color=colours(k), label=class_name)
                bottom += values
            step = max(1, len(x) // 8)
            ax.set_xticks(
                x[::step], [str(v) for v in counts.index[::step]], rotation=30, ha="right"
            )
            ax.tick_params(axis="x", labelsize=7)
            ax.yaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_xlabel(xlabel, fontsize=8)
            ax.set_ylabel("images")
            if row == 0:
                ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    n_failed = int((~is_ok).sum())
    fig.suptitle(
        f"Predicted classes of the new images: {len(ok)} classified, {n_failed} failed",
        fontsize=11,
    )
    Path(out_png).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png, dpi=100)


def contact_sheet(csv: str, out_png: str, per_class: int = 4) -> None:
    """A grid of the ``per_class`` most confident images of each predicted class, labelled.

    Uses class6 when the CSV has it, else class2. Each image is titled with its score, site and
    time (or file name); PNG paths are read as written in the CSV.
    """
    if per_class < 1:
        raise ModelError(f"per_class must be at least 1, not {per_class}.")
    table, label_sets = _read_predictions(csv)
    name = label_sets[0]
    ok = table[table["status"] == STATUS_OK]
    rows = []
    for class_name in LABEL_NAMES[name]:
        column = score_column(name, class_name)
        chosen = ok[ok[f"{name}_name"] == class_name]
        chosen = chosen.sort_values(column, ascending=False, kind="stable").head(per_class)
        cells = []
        for _, item in chosen.iterrows():
            when = item["timestamp"] if isinstance(item["timestamp"], str) else ""
            where = item["site"] or Path(str(item["png"])).name
            caption = f"{item[column]:.2f}\n{where} {when[:19]}"
            cells.append(SheetCell(thumbnail(Path(str(item["png"]))), caption))
        rows.append(SheetRow(class_name, cells, empty_text="none predicted"))
    title = f"Most confident images per predicted {name} class (score)"
    write_bytes(out_png, figures.contact_sheet(rows, title, columns=per_class, caption_size=7))
