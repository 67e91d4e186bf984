"""Station-nights of the OATH images, read from ``images/files_origin.csv``.

The grouped split protocol (:mod:`oath.fit.protocols`) keeps every station-night on one side, so it
needs the station and night of each image. The station comes from a ``station`` column (or is
parsed from the original file name). The night is the calendar date of ``time - b`` where ``b``
is the UT hour of local solar noon at the station (``12 - longitude / 15``, from the THEMIS ASI
station table below), so all frames between one local noon and the next form one night. The
often-quoted "UT date of time - 12 h" would cut the nights of the western THEMIS stations in two
(local solar midnight at Kiana is ~10:40 UT, so 12 UT is 01:20 local). For a station not in the
table ``b`` is put in the middle of the longest gap in that station's observing hours.
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

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


@dataclass(frozen=True)
class Origins:
    """Station, night and station-night group of every table row.

    An image whose row cannot be read (no row, two rows, no station, a time that does not
    parse) has station and night ``""`` and group ``-1``; ``left_out`` lists those rows, so
    that what needs station-nights leaves the image out and says why.
    """

    station: np.ndarray  # (N,) str
    night: np.ndarray  # (N,) str, YYYY-MM-DD
    group: np.ndarray  # (N,) int64, 0..n_groups-1 in sorted station/night order; -1 unknown
    source: str  # which columns gave station and time
    night_rule: str  # how the night was defined, in words
    left_out: tuple[dict[str, Any], ...] = ()  # file, line (0: none), picNum, reason

    @property
    def known(self) -> np.ndarray:
        """(N,) bool: the images whose station-night is known."""
        return self.group >= 0

    def summary(self) -> dict[str, Any]:
        """Where station and night came from, and images per station and per station-night
        (images left out not counted: ``n_left_out`` of them)."""
        known = self.known
        sizes = np.bincount(self.group[known]) if known.any() else np.zeros(1, dtype=np.int64)
        stations, counts = np.unique(self.station[known], return_counts=True)
        return {
            "source": self.source,
            "night_rule": self.night_rule,
            "n_groups": int(np.count_nonzero(sizes)),
            "n_stations": int(stations.size),
            "n_left_out": int((~known).sum()),
            "images_per_station": {str(s): int(k) for s, k in zip(stations, counts, strict=True)},
            "images_per_group": {
                "min": int(sizes.min()),
                "median": float(np.median(sizes)),
                "max": int(sizes.max()),
            },
        }


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
    name's date. Naive times are UT.

    A row that cannot be read (picNum not a whole number, no station, a time that does not
    parse) and a picNum with no row or with several leave that image out: group ``-1``, listed
    in :attr:`Origins.left_out` with the file, line and reason (and logged). Raises
    :class:`ProtocolInputError`, naming the file, only when the file cannot be read as a table
    at all (no such file, no picNum column, neither station/time nor file-name columns).
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
    table = table.fillna("").astype(str)
    lines_arr = np.asarray(lines if lines is not None else np.arange(len(table)) + 2)
    columns = _find_columns(table, where)
    pics = _whole_numbers(table[columns.pic])
    station, when, has_time, sources = _stations_and_times(table, columns)
    problems = _row_problems(table, pics, station, when, lines_arr, columns.pic)
    order, left_out = _rows_of(pics, pic_nums, problems, lines_arr, where)
    for entry in left_out:
        log.warning("%s line %s: picNum %s left out: %s", where, *entry.values())
    known = order >= 0
    station_out = np.full(len(order), "", dtype=object)
    night_out = np.full(len(order), "", dtype=object)
    station_out[known] = np.asarray(station, dtype=object)[order[known]]
    when_known = when.iloc[order[known]].reset_index(drop=True)
    night, methods = _nights(
        np.asarray(station_out[known], dtype=str), when_known, has_time[order[known]], where
    )
    night_out[known] = night
    group = np.full(len(order), -1, dtype=np.int64)
    if known.any():
        keys = np.char.add(np.char.add(station_out[known].astype(str), "/"), night.astype(str))
        group[known] = np.unique(keys, return_inverse=True)[1]
    rule = NIGHT_RULE
    unknown = sorted(k for k, v in methods.items() if v != "longitude")
    if unknown:
        rule += f" (not in the THEMIS table: {', '.join(unknown)})"
    log.info(
        "%s: %d images in %d station-nights at %d station(s), %d left out; %s",
        where,
        int(known.sum()),
        int(group.max()) + 1 if group.size else 0,
        len(methods),
        len(left_out),
        "; ".join(sources),
    )
    return Origins(
        station=station_out.astype(str),
        night=night_out.astype(str),
        group=group,
        source="; ".join(sources),
        night_rule=rule,
        left_out=tuple({"file": where, **entry} for entry in left_out),
    )


EXPECTED_COLUMNS = (
    "Expected columns picNum,station,time (as the demo writes) or picNum and the original "
    "THEMIS file name (e.g. 20110201_0612_fsmi_themis14_full.pgm.gz)."
)
NIGHT_RULE = (
    "station-night = station and the date of (UT - b), b = UT hour of local solar noon "
    "(12 - longitude/15) for THEMIS stations; other stations: b in the middle of their "
    "longest gap in observing hours; date-only times keep their date"
)


@dataclass(frozen=True)
class _Columns:
    """Which table column holds what; None where the table has no such column."""

    pic: str
    station: str | None
    time: str | None
    date: str | None
    name: str | None


def _find_columns(table: pd.DataFrame, where: str) -> _Columns:
    """Columns by name (aliases), else by content: whole numbers, parseable file names."""
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
    if pic_col is None:
        raise ProtocolInputError(
            f"{where}: no picNum column among {list(table.columns)}. {EXPECTED_COLUMNS}"
        )
    if station_col is None and time_col is None and date_col is None and name_col is None:
        raise ProtocolInputError(
            f"{where}: neither station/time columns nor a column of original file names among "
            f"{list(table.columns)}. {EXPECTED_COLUMNS}"
        )
    return _Columns(pic_col, station_col, time_col, date_col, name_col)


def _row_problems(
    table: pd.DataFrame,
    pics: pd.Series,
    station: np.ndarray,
    when: pd.Series,
    lines: np.ndarray,
    pic_column: str,
) -> dict[int, str]:
    """Table row -> why it cannot be used (no whole picNum, no station, no readable time)."""
    problems = {}
    for i in range(len(table)):
        text = ",".join(str(v) for v in table.iloc[i].tolist())
        if pd.isna(pics.iloc[i]):
            problems[i] = f"{pic_column} is not a whole number ({text})"
        elif station[i] == "":
            problems[i] = f"no station ({text})"
        elif pd.isna(when.iloc[i]):
            problems[i] = f"time cannot be parsed ({text}). {EXPECTED_COLUMNS}"
    return problems


def _stations_and_times(
    table: pd.DataFrame, columns: _Columns
) -> tuple[np.ndarray, pd.Series, np.ndarray, list[str]]:
    """Station (``""`` when unknown), UTC time, has-a-time-of-day, and the sources in words.

    Per row the station column wins over the file name, and a parseable time column over the
    file name's date.
    """
    n = len(table)
    station = np.full(n, "", dtype=object)
    when = pd.Series(pd.NaT, index=table.index, dtype="datetime64[ns, UTC]")
    has_time = np.zeros(n, dtype=bool)
    sources = []
    if columns.station is not None:
        station = table[columns.station].fillna("").astype(str).str.strip().str.lower().to_numpy()
        station = station.astype(object)
        sources.append(f"station from column {columns.station!r}")
    time_col, date_col = columns.time, columns.date
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
    if columns.name is not None:
        need = (station == "") | when.isna().to_numpy()
        if need.any():
            parsed = [parse_origin_name(v) for v in table.loc[need, columns.name]]
            for row, (p_station, p_when, p_has_time) in zip(
                np.flatnonzero(need), parsed, strict=True
            ):
                if station[row] == "" and p_station is not None:
                    station[row] = p_station
                if pd.isna(when.iloc[row]) and p_when is not None:
                    when.iloc[row] = p_when
                    has_time[row] = p_has_time
            sources.append(f"file names in column {columns.name!r} where those are missing")
    return station, when, has_time, sources


def _rows_of(
    pics: pd.Series,
    pic_nums: Sequence[int],
    problems: dict[int, str],
    lines: np.ndarray,
    where: str,
) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """Table row of each wanted picNum, in the order wanted (-1: left out), and the rows
    left out as ``{"line", "picNum", "reason"}`` (line 0: the picNum has no row)."""
    rows_of: dict[int, list[int]] = {}
    for i, pic in enumerate(pics):
        if pd.notna(pic):
            rows_of.setdefault(int(pic), []).append(i)
    wanted = {int(p) for p in pic_nums}
    left_out = [
        {"line": int(lines[i]), "picNum": None, "reason": problems[i]}
        for i in sorted(problems)
        if pd.isna(pics.iloc[i])
    ]
    order = np.full(len(pic_nums), -1, dtype=np.int64)
    for k, pic in enumerate(int(p) for p in pic_nums):
        found = rows_of.get(pic, [])
        if not found:
            reason = f"no row for this picNum of classifications.csv in {Path(where).name}"
            left_out.append({"line": 0, "picNum": pic, "reason": reason})
        elif len(found) > 1:
            on = ", ".join(str(lines[i]) for i in found)
            reason = f"listed on {len(found)} rows (lines {on}); each image has one origin"
            left_out.append({"line": int(lines[found[0]]), "picNum": pic, "reason": reason})
        elif found[0] in problems:
            i = found[0]
            left_out.append({"line": int(lines[i]), "picNum": pic, "reason": problems[i]})
        else:
            order[k] = found[0]
    extra = sorted(p for p in rows_of if p not in wanted)
    if extra:
        log.info("%s: %d picNum(s) not in classifications.csv ignored", where, len(extra))
    return order, sorted(left_out, key=lambda e: (e["line"] == 0, e["line"], e["picNum"] or 0))


def _nights(
    station: np.ndarray, when: pd.Series, has_time: np.ndarray, where: str
) -> tuple[np.ndarray, dict[str, str]]:
    """Night (YYYY-MM-DD) of every image, and per station how its day boundary was found."""
    night = np.empty(len(station), dtype=object)
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
                where,
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
            where,
            int((~has_time).sum()),
        )
    return night, methods
