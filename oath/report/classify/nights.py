"""The page's night timelines: for each night shown in full, every site's keogram above its
class strip, then the night picture; the other nights linked."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from oath.archive.gather import UNKNOWN
from oath.archive.keogram import class_colours, read_index
from oath.dataset.table import LABEL_NAMES
from oath.report.classify.counts import chosen_nights
from oath.report.classify.sections import picture
from oath.report.tables import escape


def _axis_label(value: float, axis: str) -> str:
    """A vertical axis end: a latitude in degrees N or S, or a pixel row."""
    if str(axis).startswith("latitude"):
        return f"{abs(value):.1f}°{'N' if value >= 0 else 'S'}"
    return f"row {value:.0f}"


def _ut_ticks(start: float, minutes: int) -> str:
    """UT hour labels under a keogram of ``minutes`` from ``start`` (hours after 00 UT)."""
    span = minutes / 60
    step = 1 if span <= 8 else 2 if span <= 16 else 3
    first = int(np.ceil(start / step) * step)
    spans = [
        f'<span style="left:{100 * (hour - start) / span:.2f}%">{hour % 24:02d}</span>'
        for hour in range(first, int(np.floor(start + span)) + 1, step)
    ]
    return f'<div class="keo-x">{"".join(spans)}</div>'


def _keogram_figure(r: Any, keograms: Path, html_dir: Path) -> str:
    """One site-night's page picture with its axes in HTML, scale in words, and a link to the
    picture for papers; the picture for papers inlined where the folder has no page picture
    (keograms drawn before page pictures)."""
    alt = f"keogram {r.site} {r.date}"
    caption = (
        f"{r.site} {r.date}: keogram above the predicted class per minute; {int(r.frames):,} "
        f"frames over {int(r.minutes):,} minutes, white where no frame; gray scale "
        f"{r.low:,.0f} to {r.high:,.0f} counts (1st to 99th percentile of this night); "
        f"vertical axis: {r.axis}."
    )
    page_png = getattr(r, "page_png", None)
    if not isinstance(page_png, str):
        shown = picture(keograms / r.png, alt, f"{r.site} {r.date}: no keogram picture")
        return (
            f'<figure class="keogram-full">{shown}<figcaption>{escape(caption)}</figcaption>'
            "</figure>"
        )
    shown = picture(keograms / page_png, alt, f"{r.site} {r.date}: no keogram picture")
    link = escape(Path(os.path.relpath(keograms / r.png, html_dir)).as_posix())
    return (
        f'<figure class="keogram">{shown}<div class="keo-y"><span>'
        f"{_axis_label(r.top, r.axis)}</span><span>{_axis_label(r.bottom, r.axis)}</span></div>"
        f"{_ut_ticks(float(r.start), int(r.minutes))}<figcaption>{escape(caption)} "
        f'<a href="{link}">Full picture</a>.</figcaption></figure>'
    )


def _keograms_html(
    index: pd.DataFrame | None, keograms: Path | None, html_dir: Path, date: str
) -> str:
    """Each site's keogram of ``date``, with its intensity scale in words."""
    if keograms is None or index is None:
        return '<p class="small">No keograms folder given.</p>'
    rows = index[index["date"] == date]
    if rows.empty:
        return (
            f'<p class="small">{escape(date)}: no keogram (no raw frames with counts, or '
            "shards written before they kept keogram slices).</p>"
        )
    return "\n".join(_keogram_figure(r, keograms, html_dir) for r in rows.itertuples(index=False))


def _legend_html(index: pd.DataFrame | None) -> str:
    """The class strip's colours, once for all keograms."""
    if index is None or index.empty or "label_set" not in index:
        return ""
    label_set = str(index["label_set"].iloc[0])
    swatches = "".join(
        f'<span class="swatch" style="background:{colour}"></span>{escape(name)}'
        for name, colour in zip(LABEL_NAMES[label_set], class_colours(label_set), strict=True)
    )
    return f'<p class="small">Keograms\' class strip ({escape(label_set)}): {swatches}</p>'


def nights_html(
    per_night: pd.DataFrame,
    nights: Path | None,
    html_dir: Path,
    max_nights: int,
    keograms: Path | None = None,
) -> str:
    dated = sorted(
        d for d in set(per_night.loc[per_night["classified"] > 0, "date"]) if d != UNKNOWN
    )
    if not dated:
        return '<p class="small">No dated, classified frames: no night timelines.</p>'
    if nights is None:
        return '<p class="small">No night pictures folder given.</p>'
    chosen = chosen_nights(per_night, max_nights)
    what = (
        f"All {len(dated)} UT date(s)"
        if len(chosen) == len(dated)
        else f"The {len(chosen)} of {len(dated)} UT dates with the most aurora frames "
        f"(config <code>classify.report_nights</code>: {max_nights}), in date order"
    )
    parts = [
        f"<p>{what}: per site the keogram (the zenith north-south slice of every raw frame "
        "along UT; docs/keograms.md) above the predicted class of each minute, on the same UT "
        "axis; then a class strip per site over 0-24 UT and each site's class counts.</p>"
    ]
    index = read_index(keograms) if keograms is not None else None
    parts.append(_legend_html(index))
    parts.append('<div class="nights">')
    for date in chosen:
        path = nights / f"{date}.png"
        parts.append(_keograms_html(index, keograms, html_dir, date))
        parts.append(
            f"<figure>{picture(path, f'night {date}', f'{date}: no picture in {nights}')}"
            f"<figcaption>{escape(date)}</figcaption></figure>"
        )
    parts.append("</div>")
    rest = [d for d in dated if d not in set(chosen)]
    if rest:
        links = " ".join(
            f'<a href="{escape(Path(os.path.relpath(nights / f"{d}.png", html_dir)).as_posix())}">'
            f"{escape(d)}</a>"
            for d in rest
        )
        parts.append(
            f"<details><summary>The other {len(rest):,} night pictures (files beside this page, "
            f"in {escape(nights.name)}/)</summary><p>{links}</p></details>"
        )
    return "\n".join(parts)
