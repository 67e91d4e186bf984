"""The page's night timelines: for each night shown in full, every site's keogram above its
class strip, then the night picture; the other nights linked."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from oath.archive.gather import UNKNOWN
from oath.archive.keogram import read_index
from oath.report.classify.counts import chosen_nights
from oath.report.classify.sections import picture
from oath.report.tables import escape


def _keograms_html(index: pd.DataFrame | None, keograms: Path | None, date: str) -> str:
    """Each site's keogram of ``date``, with its intensity scale in words."""
    if keograms is None or index is None:
        return '<p class="small">No keograms folder given.</p>'
    rows = index[index["date"] == date]
    if rows.empty:
        return (
            f'<p class="small">{escape(date)}: no keogram (no raw frames with counts, or '
            "shards written before they kept keogram slices).</p>"
        )
    parts = []
    for r in rows.itertuples(index=False):
        alt = f"keogram {r.site} {date}"
        caption = (
            f"{r.site} {date}: keogram above the predicted class per minute; {int(r.frames):,} "
            f"frames over {int(r.minutes):,} minutes, white where no frame; gray scale "
            f"{r.low:,.0f} to {r.high:,.0f} counts (1st to 99th percentile of this night); "
            f"vertical axis: {r.axis}."
        )
        shown = picture(keograms / r.png, alt, f"{r.site} {date}: no keogram picture")
        parts.append(
            f'<figure class="keogram">{shown}<figcaption>{escape(caption)}</figcaption></figure>'
        )
    return "\n".join(parts)


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
    parts.append('<div class="nights">')
    index = read_index(keograms) if keograms is not None else None
    for date in chosen:
        path = nights / f"{date}.png"
        parts.append(_keograms_html(index, keograms, date))
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
