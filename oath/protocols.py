"""Beyond the 2018 protocol: how much of the published accuracy is same-night leakage?

Clausen & Nickisch (2018) scored ``RidgeClassifier(alpha=0.03)`` on 5 random 70/30 splits of
the OATH images (0.8174 +- 0.0103 for 6 classes). Consecutive THEMIS frames of one night look
alike, so a random split puts near-twins on both sides. This module scores the same features

* under two **split protocols**:

  - ``published``: the rows of ``train_test_split.csv`` unchanged; the first
    ``round(0.7 * N)`` indices of a row train, the rest test;
  - ``grouped``: images of one station and night never on both sides; ``n_splits`` seeded
    splits holding ~70 % of the images in training (station-night groups shuffled with
    ``RandomState([seed, split])``, taken until the training part is closest to
    ``round(0.7 * N)`` images). It needs ``images/files_origin.csv``; without it only
    ``published`` runs and the result says why;

* with three **linear classifiers**, for ``class6`` and ``class2``:

  - ``ridge_published``: ``RidgeClassifier(alpha=0.03)`` on the raw features, untouched;
  - ``logistic``: ``StandardScaler`` + multinomial ``LogisticRegression`` (lbfgs);
  - ``linear_svm``: ``StandardScaler`` + ``LinearSVC`` (one-vs-rest, squared hinge).

  The two last ones choose their ``C`` by cross-validation inside each split's **training part
  only**: ``StratifiedKFold`` (published protocol) or ``StratifiedGroupKFold`` on the
  station-night groups (grouped protocol, so that model selection does not reward leakage
  either), ``CV_FOLDS`` folds, shuffled with a fixed seed, stratified by ``class6`` so that
  both label sets see the same folds. The scaler is fitted on each fold's fitting part and,
  for the final model, on the whole training part. The test part is never passed to model
  selection.

What is reported per classifier x protocol x label set: mean and (population) std of the test
accuracy over splits, macro F1, and for ``class2`` the aurora true-positive rate (recall of
class 0, "aurora"; the paper's 96 % is such a rate). The leakage gap is the published minus
the grouped mean accuracy. :func:`compare_to_file` writes everything as JSON and
:func:`render_comparison` turns that JSON into an HTML fragment and Markdown for the report.

**Station-night.** The station comes from a ``station`` column (or is parsed from the original
file name). The night is the calendar date of ``time - b`` where ``b`` is the UT hour of local
solar noon at the station (``12 - longitude / 15``, from the THEMIS ASI station table below),
so all frames between one local noon and the next form one night. The often-quoted
"UT date of time - 12 h" would cut the nights of the western THEMIS stations in two (local
solar midnight at Kiana is ~10:40 UT, so 12 UT is 01:20 local). For a station not in the table
``b`` is put in the middle of the longest gap in that station's observing hours.
"""

from __future__ import annotations

import io
import logging
import math
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sklearn
from joblib import Parallel, delayed
from sklearn.linear_model import LogisticRegression, RidgeClassifier
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC
from threadpoolctl import threadpool_limits

from oath.data import LABEL_NAMES, load_classifications
from oath.featurefile import AlignmentError, aligned_logits, read_features
from oath.ridge import write_json
from oath.splits import load_split

log = logging.getLogger(__name__)

TRAIN_FRACTION = 0.7  # published
RIDGE_ALPHA = 0.03  # published
CLASSIFIERS = ("ridge_published", "logistic", "linear_svm")
PROTOCOLS = ("published", "grouped")
CV_FOLDS = 3  # inner folds per training part; 3 keeps the whole matrix under 2 min on 2 cores
# C grids, ascending. With standardised 1001-d features and ~4,000 training images the useful
# range of C is small; a chosen C at either end of a grid is logged as a warning.
LOGISTIC_CS = (1e-4, 1e-3, 1e-2, 1e-1, 1.0)
SVM_CS = (1e-5, 1e-4, 1e-3, 1e-2)
# lbfgs on float32 standardised features (sklearn keeps float32 for lbfgs: ~3x faster than
# float64 here, same accuracy), warm-started along the C grid inside each fold (each C starts
# where the previous one stopped); the final model is fitted cold. max_iter is a safety cap;
# fits that reach it are counted in the result and logged.
LOGISTIC_OPTIONS: dict[str, Any] = {"solver": "lbfgs", "tol": 1e-3, "max_iter": 1000}
# liblinear's dual coordinate descent is the fast solver here (n > d, but the primal trust-region
# solver took 1.5-4x longer); tol 0.1 is LIBLINEAR's own default for it (sklearn's 1e-4 costs
# several times the epochs for the same test accuracy). liblinear works in float64 and shuffles with
# random_state, which is fixed (the split seed) so reruns agree.
SVM_OPTIONS: dict[str, Any] = {"dual": True, "tol": 0.1, "max_iter": 2000}
# The SVM grid is walked upwards and stops once the CV accuracy has fallen below the best so
# far for this many consecutive C values (larger C costs most and rarely helps after a drop).
SVM_PATIENCE = 1
AURORA = 0  # class index of "aurora" in class2

# THEMIS ground-based all-sky imagers: geographic longitude (degrees east), for local solar time.
THEMIS_LONGITUDES: dict[str, float] = {
    "atha": -113.6,  # Athabasca
    "chbg": -74.4,  # Chibougamau
    "ekat": -110.6,  # Ekati
    "fsim": -121.2,  # Fort Simpson
    "fsmi": -111.9,  # Fort Smith
    "fykn": -145.2,  # Fort Yukon
    "gako": -145.2,  # Gakona
    "gbay": -60.4,  # Goose Bay
    "gill": -94.6,  # Gillam
    "inuv": -133.8,  # Inuvik
    "kapu": -82.3,  # Kapuskasing
    "kian": -160.4,  # Kiana
    "kuuj": -68.4,  # Kuujjuaq
    "loyd": -110.0,  # Lloydminster
    "mcgr": -155.6,  # McGrath
    "nrsq": -45.4,  # Narsarsuaq
    "pgeo": -122.8,  # Prince George
    "pina": -96.1,  # Pinawa
    "rank": -92.1,  # Rankin Inlet
    "snap": -110.9,  # Snap Lake
    "snkq": -79.2,  # Sanikiluaq
    "talo": -93.6,  # Taloyoak
    "tpas": -100.9,  # The Pas
    "whit": -135.2,  # Whitehorse
    "yknf": -114.3,  # Yellowknife
}

# Column names accepted in files_origin.csv, compared lower-case without '_', '-' or spaces.
PICNUM_ALIASES = ("picnum", "pic", "picnumber", "picno", "imagenumber", "imagenum", "imgnum")
STATION_ALIASES = ("station", "site", "stn", "asi", "imager", "camera", "stationcode")
TIME_ALIASES = ("datetime", "timestamp", "time", "utc", "ut", "timeutc", "obstime")
DATE_ALIASES = ("date", "obsdate", "utdate", "dateut")
FILENAME_ALIASES = (
    "filename",
    "file",
    "fname",
    "name",
    "path",
    "filepath",
    "origin",
    "original",
    "originalfile",
    "originalfilename",
    "source",
    "sourcefile",
    "url",
)

# YYYYMMDD, optionally followed by HH, HHMM or HHMMSS (with '_', 'T' or '-' between).
_DATE_RE = re.compile(
    r"(?<!\d)((?:19|20)\d\d)(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])"
    r"(?:[_T-]?([01]\d|2[0-3])(?:([0-5]\d)([0-5]\d)?)?)?(?!\d)"
)
_STATION_PATTERNS = (
    re.compile(r"(?:^|[/_.\-])([a-z]{4})_themis"),  # 20110201_0612_fsmi_themis14_full.pgm.gz
    re.compile(r"(?:^|[/_])as[fk]_([a-z]{4})(?:[/_.]|$)"),  # thg_l1_asf_fsmi_2011020106_v01.cdf
)


class ProtocolInputError(ValueError):
    """Inputs do not fit together or are malformed; the message names the file and the fix."""


# --------------------------------------------------------------------------------------------
# Station-nights from files_origin.csv
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Origins:
    """Station, night and station-night group of every table row."""

    station: np.ndarray  # (N,) str
    night: np.ndarray  # (N,) str, YYYY-MM-DD
    group: np.ndarray  # (N,) int64, 0..n_groups-1 in sorted station/night order
    source: str  # which columns gave station and time
    night_rule: str  # how the night was defined, in words


def _norm(name: str) -> str:
    return re.sub(r"[\s_\-]", "", str(name)).lower()


def parse_origin_name(name: str) -> tuple[str | None, pd.Timestamp | None, bool]:
    """Station, UT time and whether the time of day is known, from an original file name.

    Accepts THEMIS ASI names and paths such as ``20110201_0612_fsmi_themis14_full.pgm.gz``,
    ``.../fsmi/2011/02/01/...`` or ``thg_l1_asf_fsmi_2011020106_v01.cdf``. Station: a known
    THEMIS code as a path or ``_``-separated token, else the token before ``_themis`` or after
    ``asf_``. Time: the last ``YYYYMMDD[_HH[MM[SS]]]`` in the name (the file name beats the
    folders). Missing parts come back as ``None``.
    """
    text = str(name).strip().lower()
    station = None
    tokens = [t for t in re.split(r"[/\\_.\-\s]+", text) if t]
    for token in tokens:
        if token in THEMIS_LONGITUDES:
            station = token
            break
    if station is None:
        for pattern in _STATION_PATTERNS:
            match = pattern.search(text)
            if match:
                station = match.group(1)
                break
    when = None
    has_time = False
    matches = list(_DATE_RE.finditer(text))
    if matches:
        year, month, day, hour, minute, second = matches[-1].groups()
        has_time = hour is not None
        when = pd.Timestamp(
            int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0)
        ).tz_localize("UTC")
    return station, when, has_time


def _read_table(path: Path) -> tuple[pd.DataFrame, list[int]]:
    """The CSV as strings, '#' and blank lines skipped, with the file line of every row.

    A header is recognised by a known column name; otherwise the file is read as headerless
    and the columns are named ``col0``, ``col1``, ...
    """
    try:
        raw = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ProtocolInputError(f"{path}: cannot read ({exc}).") from exc
    kept, numbers = [], []
    for number, line in enumerate(raw.splitlines(), start=1):
        if line.strip() and not line.lstrip().startswith("#"):
            kept.append(line)
            numbers.append(number)
    if not kept:
        raise ProtocolInputError(f"{path}: no rows (only comments or blank lines).")
    first = kept[0]
    sep = next((s for s in (",", "\t", ";") if s in first), r"\s+")
    head = [_norm(c) for c in re.split(sep, first.strip())]
    known = set(PICNUM_ALIASES + STATION_ALIASES + TIME_ALIASES + DATE_ALIASES + FILENAME_ALIASES)
    has_header = any(c in known for c in head)
    try:
        table = pd.read_csv(
            io.StringIO("\n".join(kept)),
            sep=sep,
            dtype=str,
            header=0 if has_header else None,
            skipinitialspace=True,
            keep_default_na=False,
            engine="python",
        )
    except (ValueError, pd.errors.ParserError) as exc:
        raise ProtocolInputError(f"{path}: not a readable table ({exc}).") from exc
    if has_header:
        table.columns = [str(c).strip() for c in table.columns]
        return table, numbers[1:]
    table.columns = [f"col{i}" for i in range(table.shape[1])]
    return table, numbers


def _find_column(table: pd.DataFrame, aliases: Sequence[str]) -> str | None:
    by_norm = {_norm(c): c for c in table.columns}
    return next((by_norm[a] for a in aliases if a in by_norm), None)


def _whole_numbers(values: pd.Series) -> pd.Series:
    numbers = pd.to_numeric(values.str.strip(), errors="coerce")
    return numbers.where(numbers % 1 == 0)


def _parse_times(values: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """UTC timestamps (naive times are taken as UT) and whether each has a time of day.

    A value without a four-digit year (a bare ``06:12``) is not a time here: the parser would
    put it on today's date.
    """
    text = values.fillna("").astype(str).str.strip()
    parsed = pd.to_datetime(text, utc=True, errors="coerce", format="ISO8601")
    retry = parsed.isna() & (text != "")
    if retry.any():
        parsed[retry] = pd.to_datetime(text[retry], utc=True, errors="coerce", format="mixed")
    parsed[~text.str.contains(r"(?:19|20)\d\d", regex=True)] = pd.NaT
    at_midnight = (parsed.dt.hour == 0) & (parsed.dt.minute == 0) & (parsed.dt.second == 0)
    has_time = (~at_midnight | text.str.contains(":")).fillna(False).to_numpy(dtype=bool)
    return parsed, has_time & parsed.notna().to_numpy()


def day_boundary_hour(station: str, hours_ut: np.ndarray) -> tuple[float, str]:
    """UT hour at which one station's night ends and the next begins (local solar noon).

    From the station's longitude when it is a known THEMIS imager; otherwise the middle of the
    longest gap in the station's observing hours (on the 24-h circle).
    """
    if station in THEMIS_LONGITUDES:
        return (12.0 - THEMIS_LONGITUDES[station] / 15.0) % 24.0, "longitude"
    hours = np.sort(np.mod(np.asarray(hours_ut, dtype=float), 24.0))
    if hours.size == 0:
        return 12.0, "default"
    gaps = np.diff(np.append(hours, hours[0] + 24.0))
    k = int(np.argmax(gaps))
    return float((hours[k] + gaps[k] / 2.0) % 24.0), "observing-hours gap"


def read_origins(path: str | Path, pic_nums: Sequence[int]) -> Origins:
    """Station, night and station-night group for each picNum, in the order given.

    ``files_origin.csv`` may have ``picNum``, ``station`` and ``time`` columns (the demo's
    layout, plus ``filename``), or ``picNum`` and a column with the original file name from
    which station and date are parsed (see :func:`parse_origin_name`); column names are matched
    case-insensitively against a few aliases, and a headerless file is accepted when one column
    holds whole numbers and another parseable file names. '#' comment lines are skipped. Per
    row the station column wins over the file name, and a parseable time column over the file
    name's date. Naive times are UT. Raises :class:`ProtocolInputError`, naming the file and
    lines, when an image's station or date cannot be found, or when picNums are missing or
    repeated.
    """
    path = Path(path)
    table, lines = _read_table(path)
    return read_origins_frame(table, pic_nums, where=str(path), lines=lines)


def read_origins_frame(
    table: pd.DataFrame,
    pic_nums: Sequence[int],
    where: str = "files_origin table",
    lines: Sequence[int] | None = None,
) -> Origins:
    """:func:`read_origins` on a table already in memory; ``where`` names it in errors and
    ``lines`` gives the file line of each row (default: row + 2, after a header line).
    """
    path = where
    table = table.fillna("").astype(str)
    lines_arr = np.asarray(lines if lines is not None else np.arange(len(table)) + 2)
    pic_col = _find_column(table, PICNUM_ALIASES)
    station_col = _find_column(table, STATION_ALIASES)
    time_col = _find_column(table, TIME_ALIASES)
    date_col = _find_column(table, DATE_ALIASES)
    name_col = _find_column(table, FILENAME_ALIASES)
    if pic_col is None:  # headerless, or an unknown name: the first all-whole-number column
        pic_col = next((c for c in table.columns if _whole_numbers(table[c]).notna().all()), None)
    if name_col is None:  # any other column whose values mostly parse as file names
        best = 0.0
        for column in table.columns:
            if column in (pic_col, station_col, time_col, date_col):
                continue
            parsed = [parse_origin_name(v) for v in table[column].head(200)]
            share = np.mean([s is not None and t is not None for s, t, _ in parsed])
            if share > max(best, 0.5):
                name_col, best = column, share
    expected = (
        "Expected columns picNum,station,time (as the demo writes) or picNum and the original "
        "THEMIS file name (e.g. 20110201_0612_fsmi_themis14_full.pgm.gz)."
    )
    if pic_col is None:
        raise ProtocolInputError(
            f"{path}: no picNum column among {list(table.columns)}. {expected}"
        )
    if station_col is None and time_col is None and date_col is None and name_col is None:
        raise ProtocolInputError(
            f"{path}: neither station/time columns nor a column of original file names among "
            f"{list(table.columns)}. {expected}"
        )
    pics = _whole_numbers(table[pic_col])
    if pics.isna().any():
        bad = lines_arr[pics.isna().to_numpy()][:5].tolist()
        raise ProtocolInputError(f"{path}: line(s) {bad}: {pic_col} is not a whole number.")
    pics = pics.astype(np.int64).to_numpy()

    n = len(table)
    station = np.full(n, "", dtype=object)
    when = pd.Series(pd.NaT, index=table.index, dtype="datetime64[ns, UTC]")
    has_time = np.zeros(n, dtype=bool)
    sources = []
    if station_col is not None:
        station = table[station_col].fillna("").astype(str).str.strip().str.lower().to_numpy()
        station = station.astype(object)
        sources.append(f"station from column {station_col!r}")
    if time_col is not None or date_col is not None:
        text = table[time_col if time_col is not None else date_col]
        used = [c for c in (date_col, time_col) if c is not None]
        if time_col is not None and date_col is not None:
            if text.str.contains(r"(?:19|20)\d\d", regex=True).all():
                used = [time_col]  # the time column carries its own date
            else:
                text = table[date_col] + " " + table[time_col]
        when, has_time = _parse_times(text)
        sources.append(f"time from column(s) {' + '.join(repr(c) for c in used)}")
    if name_col is not None:
        need = (station == "") | when.isna().to_numpy()
        if need.any():
            parsed = [parse_origin_name(v) for v in table.loc[need, name_col]]
            rows = np.flatnonzero(need)
            for row, (p_station, p_when, p_has_time) in zip(rows, parsed, strict=True):
                if station[row] == "" and p_station is not None:
                    station[row] = p_station
                if pd.isna(when.iloc[row]) and p_when is not None:
                    when.iloc[row] = p_when
                    has_time[row] = p_has_time
            sources.append(f"file names in column {name_col!r} where those are missing")
    missing = (station == "") | when.isna().to_numpy()
    if missing.any():
        examples = [
            f"line {lines_arr[i]}: " + ",".join(str(v) for v in table.iloc[i].tolist())
            for i in np.flatnonzero(missing)[:3]
        ]
        raise ProtocolInputError(
            f"{path}: station or date unknown for {int(missing.sum())} image(s) "
            f"({'; '.join(examples)}). {expected}"
        )

    unique, counts = np.unique(pics, return_counts=True)
    repeated = unique[counts > 1]
    if repeated.size:
        raise ProtocolInputError(
            f"{path}: picNum(s) {repeated[:5].tolist()} listed more than once; each image "
            "has one origin."
        )
    row_of = {int(p): i for i, p in enumerate(pics)}
    wanted = [int(p) for p in pic_nums]
    absent = [p for p in wanted if p not in row_of]
    if absent:
        raise ProtocolInputError(
            f"{path}: no origin for {len(absent)} picNum(s) of classifications.csv "
            f"(first: {absent[:5]}); station-night groups need every image."
        )
    order = np.array([row_of[p] for p in wanted], dtype=np.int64)
    station = np.asarray(station, dtype=str)[order]
    when = when.iloc[order].reset_index(drop=True)
    has_time = has_time[order]

    night = np.empty(len(order), dtype=object)
    hours = (when.dt.hour + when.dt.minute / 60.0 + when.dt.second / 3600.0).to_numpy()
    methods: dict[str, str] = {}
    for name in np.unique(station):
        rows = station == name
        timed = rows & has_time
        boundary, method = day_boundary_hour(name, hours[timed])
        methods[name] = method
        if method != "longitude":
            log.info(
                "%s: station %r is not in the THEMIS table; its nights end at %.1f UT, the "
                "middle of its longest observing gap",
                path,
                name,
                boundary,
            )
        shifted = when[timed] - pd.to_timedelta(boundary, unit="h")
        night[timed] = shifted.dt.strftime("%Y-%m-%d").to_numpy()
        untimed = rows & ~has_time
        night[untimed] = when[untimed].dt.strftime("%Y-%m-%d").to_numpy()
    if (~has_time).any():
        log.warning(
            "%s: %d image(s) have a date but no time of day; their night is that date",
            path,
            int((~has_time).sum()),
        )
    keys = np.char.add(np.char.add(station.astype(str), "/"), night.astype(str))
    _, group = np.unique(keys, return_inverse=True)
    rule = (
        "station-night = station and the date of (UT - b), b = UT hour of local solar noon "
        "(12 - longitude/15) for THEMIS stations; other stations: b in the middle of their "
        "longest gap in observing hours; date-only times keep their date"
    )
    unknown = sorted(k for k, v in methods.items() if v != "longitude")
    if unknown:
        rule += f" (not in the THEMIS table: {', '.join(unknown)})"
    log.info(
        "%s: %d images in %d station-nights at %d station(s); %s",
        path,
        len(order),
        int(group.max()) + 1 if len(group) else 0,
        len(methods),
        "; ".join(sources),
    )
    return Origins(
        station=station,
        night=night.astype(str),
        group=group.astype(np.int64),
        source="; ".join(sources),
        night_rule=rule,
    )


# --------------------------------------------------------------------------------------------
# Split protocols
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Split:
    """Train and test table rows of one split; ``index`` counts from 0."""

    protocol: str
    index: int
    train: np.ndarray
    test: np.ndarray


def n_train_of(n_images: int, train_fraction: float = TRAIN_FRACTION) -> int:
    """Training-set size as the original script: ``round(train_fraction * N)``."""
    return int(round(train_fraction * n_images))


def published_splits(
    split_rows: np.ndarray, n_splits: int, split_file: str = "split file"
) -> list[Split]:
    """The first ``n_splits`` rows of the split file: first ``round(0.7 N)`` indices train."""
    split_rows = np.asarray(split_rows, dtype=np.int64)
    if split_rows.shape[0] < n_splits:
        raise ProtocolInputError(
            f"{split_file}: {n_splits} split(s) asked for but the file has "
            f"{split_rows.shape[0]} row(s)."
        )
    n_train = n_train_of(split_rows.shape[1])
    return [
        Split("published", i, split_rows[i, :n_train].copy(), split_rows[i, n_train:].copy())
        for i in range(n_splits)
    ]


def grouped_splits(
    groups: np.ndarray, n_splits: int, seed: int, train_fraction: float = TRAIN_FRACTION
) -> list[Split]:
    """Seeded splits that keep every group (station-night) on one side.

    Split ``i`` shuffles the groups with ``RandomState([seed, i])`` and puts groups into
    training, in that order, until the number of training images is closest to
    ``round(train_fraction * N)``; the rest test. Rows are returned in ascending order.
    """
    groups = np.asarray(groups)
    ids, sizes = np.unique(groups, return_counts=True)
    if ids.size < 2:
        raise ProtocolInputError(
            f"grouped splits need at least 2 station-nights, found {ids.size}."
        )
    target = n_train_of(groups.size, train_fraction)
    splits = []
    for i in range(n_splits):
        order = np.random.RandomState([seed, i]).permutation(ids.size)
        cumulative = np.cumsum(sizes[order])
        k = min(int(np.argmin(np.abs(cumulative - target))), ids.size - 2)
        in_train = np.isin(groups, ids[order[: k + 1]])
        splits.append(Split("grouped", i, np.flatnonzero(in_train), np.flatnonzero(~in_train)))
    return splits


def inner_folds(
    train: np.ndarray,
    strata: np.ndarray,
    groups: np.ndarray | None,
    folds: int,
    seed: int,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """CV folds over the training rows only, as (fit, held-out) positions into ``train``.

    ``StratifiedKFold`` when ``groups`` is None, else ``StratifiedGroupKFold`` so that a
    station-night never sits in both a fold's fitting and held-out part.
    """
    y_train = np.asarray(strata)[train]
    placeholder = np.zeros((train.size, 1))
    if groups is not None:
        n_groups = np.unique(np.asarray(groups)[train]).size
        if n_groups < 2:
            raise ProtocolInputError(
                f"only {n_groups} station-night in a training part: too few to cross-validate "
                "without leakage; the data set needs more nights"
            )
        if n_groups < folds:
            log.warning(
                "only %d station-nights in a training part: %d inner folds instead of %d",
                n_groups,
                n_groups,
                folds,
            )
            folds = n_groups
    if groups is None:
        cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
        return [(a, b) for a, b in cv.split(placeholder, y_train)]
    cv = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    return [(a, b) for a, b in cv.split(placeholder, y_train, np.asarray(groups)[train])]


# --------------------------------------------------------------------------------------------
# Classifiers on one split
# --------------------------------------------------------------------------------------------
def _scores(y_true: np.ndarray, predicted: np.ndarray, n_classes: int) -> dict[str, Any]:
    matrix = confusion_matrix(y_true, predicted, labels=list(range(n_classes)))
    support = matrix.sum(axis=1)
    recall = [float(matrix[k, k] / support[k]) if support[k] else None for k in range(n_classes)]
    return {
        "accuracy": float(accuracy_score(y_true, predicted)),
        "macro_f1": float(
            f1_score(
                y_true, predicted, labels=list(range(n_classes)), average="macro", zero_division=0
            )
        ),
        "recall": recall,
        "confusion_matrix": matrix.astype(int).tolist(),
    }


def _logistic(C: float, warm_start: bool = False) -> LogisticRegression:
    return LogisticRegression(C=C, warm_start=warm_start, **LOGISTIC_OPTIONS)


def _svm(C: float, seed: int) -> LinearSVC:
    return LinearSVC(C=C, random_state=seed, **SVM_OPTIONS)


def _hit_cap(model: Any, cap: int) -> bool:
    return bool(np.max(np.atleast_1d(model.n_iter_)) >= cap)


def _cv_path(
    kind: str,
    folds_data: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]],
    seed: int,
) -> tuple[dict[float, float], int]:
    """Mean held-out accuracy per C over the folds; returns (scores, fits that hit max_iter).

    ``folds_data`` holds (X_fit, y_fit, X_held, y_held) already standardised per fold, all
    taken from the training part of one split.
    """
    scores: dict[float, float] = {}
    capped = 0
    if kind == "logistic":
        per_fold: list[list[float]] = []
        for X_fit, y_fit, X_held, y_held in folds_data:
            model = _logistic(LOGISTIC_CS[0], warm_start=True)
            row = []
            for C in LOGISTIC_CS:
                model.set_params(C=C).fit(X_fit, y_fit)
                capped += _hit_cap(model, LOGISTIC_OPTIONS["max_iter"])
                row.append(float(accuracy_score(y_held, model.predict(X_held))))
            per_fold.append(row)
        means = np.mean(per_fold, axis=0)
        return {float(C): float(m) for C, m in zip(LOGISTIC_CS, means, strict=True)}, capped
    best, falls = -np.inf, 0
    for C in SVM_CS:
        accs = []
        for X_fit, y_fit, X_held, y_held in folds_data:
            model = _svm(C, seed).fit(X_fit, y_fit)
            capped += _hit_cap(model, SVM_OPTIONS["max_iter"])
            accs.append(float(accuracy_score(y_held, model.predict(X_held))))
        score = scores[float(C)] = float(np.mean(accs))
        if score > best:
            best, falls = score, 0
        elif score < best:  # a tie walks on
            falls += 1
            if falls >= SVM_PATIENCE:
                break
    return scores, capped


def _best_c(scores: dict[float, float]) -> float:
    """Highest mean CV accuracy; ties go to the smaller C (more regularisation)."""
    return max(scores, key=lambda C: (scores[C], -C))


def run_split(
    X: np.ndarray,
    ys: dict[str, np.ndarray],
    split: Split,
    strata: np.ndarray,
    cv_groups: np.ndarray | None,
    seed: int,
    classifiers: Sequence[str] = CLASSIFIERS,
) -> dict[str, dict[str, dict[str, Any]]]:
    """All classifiers and label sets on one split: ``{classifier: {labels: result}}``.

    Also ``"_seconds"``: time spent per classifier (and on the shared standardisation).
    Model selection reads ``X[train]``, ``y[train]``, ``strata[train]`` and
    ``cv_groups[train]`` only. BLAS runs single-threaded (parallelism is over splits).
    """
    train, test = split.train, split.test
    out: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in classifiers}
    seconds = dict.fromkeys([*classifiers, "standardise"], 0.0)
    with threadpool_limits(limits=1, user_api="blas"):
        if "ridge_published" in classifiers:
            start = time.perf_counter()
            X_train, X_test = X[train], X[test]  # raw float32, as the original script
            for labels, y in ys.items():
                clf = RidgeClassifier(alpha=RIDGE_ALPHA).fit(X_train, y[train])
                result = _scores(y[test], clf.predict(X_test), len(LABEL_NAMES[labels]))
                result.update(n_train=int(train.size), n_test=int(test.size), split=split.index)
                out["ridge_published"][labels] = result
            seconds["ridge_published"] += time.perf_counter() - start
        tuned = [c for c in classifiers if c in ("logistic", "linear_svm")]
        if tuned:
            start = time.perf_counter()
            X64 = np.asarray(X, dtype=np.float64)
            X_train64 = X64[train]
            folds = inner_folds(train, strata, cv_groups, CV_FOLDS, seed)
            # Standardised copies per fold, shared by both tuned models and label sets:
            # float32 for lbfgs, float64 for liblinear (which would convert anyway).
            scaled: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {"svm": [], "logistic": []}
            for fit, held in folds:
                scaler = StandardScaler().fit(X_train64[fit])
                pair = (scaler.transform(X_train64[fit]), scaler.transform(X_train64[held]))
                scaled["svm"].append(pair)
                scaled["logistic"].append((pair[0].astype(np.float32), pair[1].astype(np.float32)))
            scaler = StandardScaler().fit(X_train64)
            final = {"svm": (scaler.transform(X_train64), scaler.transform(X64[test]))}
            final["logistic"] = (
                final["svm"][0].astype(np.float32),
                final["svm"][1].astype(np.float32),
            )
            del X64, X_train64
            seconds["standardise"] += time.perf_counter() - start
        for labels, y in ys.items() if tuned else ():
            y_train = y[train]  # labels of the training part: all that model selection sees
            for name in tuned:
                start = time.perf_counter()
                kind = "logistic" if name == "logistic" else "svm"
                folds_data = [
                    (a, y_train[fit], b, y_train[held])
                    for (fit, held), (a, b) in zip(folds, scaled[kind], strict=True)
                ]
                cv_scores, capped = _cv_path(kind, folds_data, seed)
                C = _best_c(cv_scores)
                model = _logistic(C) if kind == "logistic" else _svm(C, seed)
                A_train, A_test = final[kind]
                model.fit(A_train, y_train)
                cap = (LOGISTIC_OPTIONS if kind == "logistic" else SVM_OPTIONS)["max_iter"]
                capped += _hit_cap(model, cap)
                result = _scores(y[test], model.predict(A_test), len(LABEL_NAMES[labels]))
                result.update(
                    n_train=int(train.size),
                    n_test=int(test.size),
                    split=split.index,
                    chosen={"C": float(C)},
                    cv_scores={repr(c): s for c, s in cv_scores.items()},
                    fits_at_max_iter=int(capped),
                )
                out[name][labels] = result
                seconds[name] += time.perf_counter() - start
    out["_seconds"] = seconds  # type: ignore[assignment]
    return out


# --------------------------------------------------------------------------------------------
# The whole comparison
# --------------------------------------------------------------------------------------------
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


def _methods(seed: int, protocols_run: Sequence[str]) -> dict[str, Any]:
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
                "rows of train_test_split.csv: first round(0.7 N) indices train, rest test"
            ),
            "grouped": (
                f"station-nights shuffled with RandomState([{seed}, split]) and taken until "
                "the training part is closest to round(0.7 N) images; no station-night on "
                "both sides"
            ),
        },
        "classifiers": {
            "ridge_published": {
                "model": f"RidgeClassifier(alpha={RIDGE_ALPHA}) on the raw features",
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
    splits = {"published": published_splits(data.split_rows, n_splits, split_file)}
    groups = None
    if data.origins is not None:
        groups = data.origins.group
        splits["grouped"] = grouped_splits(groups, n_splits, seed)
    tasks = [(p, s) for p in splits for s in splits[p]]
    wall = time.perf_counter()
    outputs = Parallel(n_jobs=n_jobs)(
        delayed(run_split)(
            data.X, ys, s, strata, groups if p == "grouped" else None, seed, classifiers
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
    results: dict[str, Any] = {c: {p: {} for p in splits} for c in classifiers}
    for c in classifiers:
        for p in splits:
            for name in labels:
                per_split = [o[c][name] for (q, _), o in zip(tasks, outputs, strict=True) if q == p]
                results[c][p][name] = _summary(per_split, name)
                _log_entry(c, p, name, results[c][p][name])
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
        "train_fraction": TRAIN_FRACTION,
        "protocols": list(splits),
        "protocols_skipped": dict(data.skipped),
        "grouping": _grouping_summary(data.origins),
        "splits": {
            p: _split_summary(splits[p], groups if p == "grouped" else None) for p in splits
        },
        **_methods(seed, list(splits)),
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
) -> None:
    """Score the classifiers under both protocols and write one JSON file (atomically).

    ``files_origin`` may be None (or a path that does not exist): then only the published
    protocol runs and ``protocols_skipped["grouped"]`` says why. ``n_jobs`` runs that many
    splits at once (processes, one BLAS thread each); results do not depend on it.

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
    result = compare(data, labels, n_splits, seed, split_file=split_file, n_jobs=n_jobs)
    result["inputs"] = {
        "features": str(features),
        "classifications": str(classifications),
        "split_file": str(split_file),
        "files_origin": None if files_origin is None else str(files_origin),
    }
    write_json(out, result)


# --------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------
LABEL_WORDS = {"class6": "6-class", "class2": "2-class (aurora / no aurora)"}
CLASSIFIER_WORDS = {
    "ridge_published": "published ridge",
    "logistic": "logistic regression",
    "linear_svm": "linear SVM",
}


def _pm(mean: float | None, std: float | None) -> str:
    if mean is None or std is None or not math.isfinite(mean):
        return "n/a"
    return f"{mean:.4f} ± {std:.4f}"


def _rows(result: dict[str, Any]) -> list[list[str]]:
    rows = []
    for labels in result["labels"]:
        for c in result["results"]:
            for p in result["protocols"]:
                entry = result["results"][c][p][labels]
                tpr = (
                    _pm(entry.get("mean_aurora_tpr"), entry.get("std_aurora_tpr"))
                    if labels == "class2"
                    else ""
                )
                chosen = entry.get("chosen_C")
                rows.append(
                    [
                        labels,
                        c,
                        p,
                        _pm(entry["mean_accuracy"], entry["std_accuracy"]),
                        _pm(entry["mean_macro_f1"], entry["std_macro_f1"]),
                        tpr,
                        ", ".join(f"{x:g}" for x in chosen) if chosen else "",
                    ]
                )
    return rows


def _sentences(result: dict[str, Any]) -> list[str]:
    out = []
    gaps = result.get("leakage_gap") or {}
    for labels in result["labels"]:
        for c in result["results"]:
            if c not in gaps or labels not in gaps[c]:
                continue
            g = gaps[c][labels]
            verb = "lowers" if g["gap"] >= 0 else "raises"
            out.append(
                f"Keeping each station-night on one side {verb} {LABEL_WORDS[labels]} accuracy "
                f"of the {CLASSIFIER_WORDS.get(c, c)} by {abs(g['gap_points']):.1f} points "
                f"({g['published_mean_accuracy']:.4f} → {g['grouped_mean_accuracy']:.4f})."
            )
    versus = result.get("versus_ridge") or {}
    for labels in result["labels"]:
        for p in result["protocols"]:
            best = max(
                result["results"],
                key=lambda c: result["results"][c][p][labels]["mean_accuracy"],
            )
            if best not in versus:
                if best == "ridge_published" and versus:
                    out.append(
                        f"On {p} splits neither tuned model beats the published ridge for "
                        f"{LABEL_WORDS[labels]} accuracy."
                    )
                continue
            d = versus[best][p][labels]
            out.append(
                f"On {p} splits the best {LABEL_WORDS[labels]} classifier is the "
                f"{CLASSIFIER_WORDS.get(best, best)}: {100 * d['mean']:+.1f} ± "
                f"{100 * d['std']:.1f} points over the published ridge on the same splits."
            )
    for protocol, reason in (result.get("protocols_skipped") or {}).items():
        out.append(f"The {protocol} protocol was not run: {reason}.")
    return out


HEADER = [
    "Label set",
    "Classifier",
    "Protocol",
    "Accuracy (mean ± std)",
    "Macro F1 (mean ± std)",
    "Aurora TPR (class2)",
    "Chosen C per split",
]


def render_comparison(result: dict[str, Any]) -> tuple[str, str]:
    """HTML fragment and Markdown: the classifier x protocol x label-set table and the gap.

    Both list mean ± std (population, over splits) of accuracy and macro F1, the aurora
    true-positive rate for class2 and the chosen C per split, then sentences in words on the
    leakage gap, on whether a tuned model beats the published ridge (paired over splits), and
    on skipped protocols; the published ridge's printed line is quoted as the script prints it.
    """
    rows = _rows(result)
    sentences = _sentences(result)
    printed = result.get("published_printed_line")
    note = (
        f"Published protocol, ridge, 6 classes, as the original script prints it: "
        f"<code>{escape(printed)}</code> (the paper's run on the published features printed "
        "<code>0.8174012593016601 0.010271527444147862</code>)."
        if printed
        else ""
    )
    html = ['<section class="protocol-comparison">']
    html.append(
        "<p>Same features, two split protocols: the published random 70/30 splits, and splits "
        "that keep every station-night on one side (grouped). Mean ± std over "
        f"{result['n_splits']} splits.</p>"
    )
    html.append("<table>")
    html.append("<thead><tr>" + "".join(f"<th>{escape(h)}</th>" for h in HEADER) + "</tr></thead>")
    html.append("<tbody>")
    for row in rows:
        html.append("<tr>" + "".join(f"<td>{escape(v)}</td>" for v in row) + "</tr>")
    html.append("</tbody></table>")
    if note:
        html.append(f"<p>{note}</p>")
    if sentences:
        html.append("<ul>" + "".join(f"<li>{escape(s)}</li>" for s in sentences) + "</ul>")
    html.append("</section>")

    md = []
    md.append(
        "Same features, two split protocols: the published random 70/30 splits, and splits "
        "that keep every station-night on one side (grouped). Mean ± std over "
        f"{result['n_splits']} splits."
    )
    md.append("")
    md.append("| " + " | ".join(HEADER) + " |")
    md.append("|" + "|".join(" --- " for _ in HEADER) + "|")
    for row in rows:
        md.append("| " + " | ".join(v.replace("|", "\\|") for v in row) + " |")
    md.append("")
    if printed:
        md.append(
            "Published protocol, ridge, 6 classes, as the original script prints it: "
            f"`{printed}` (the paper's run on the published features printed "
            "`0.8174012593016601 0.010271527444147862`)."
        )
        md.append("")
    md.extend(f"- {s}" for s in sentences)
    return "\n".join(html) + "\n", "\n".join(md).rstrip() + "\n"
