"""The page's two drawn figures: the site x UT date overview of every night and the
distributions of the winning decision scores (matplotlib, PNG bytes)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from oath.archive.gather import UNKNOWN
from oath.dataset.table import LABEL_NAMES
from oath.imaging.figures import png_bytes
from oath.report.classify.counts import site_order
from oath.report.classify.tally import SCORE_BIN, RunTally


def _calendar(dates: Iterable[str]) -> list[str]:
    """Every UT date from the first to the last (gaps included), then "unknown" if any."""
    dates = set(dates)
    real = sorted(d for d in dates if d != UNKNOWN)
    every = pd.date_range(real[0], real[-1], freq="D").strftime("%Y-%m-%d").tolist() if real else []
    return every + ([UNKNOWN] if UNKNOWN in dates else [])


def overview_figure(tally: RunTally, per_night: pd.DataFrame) -> bytes | None:
    """Site x UT date: the aurora share of classified frames, and the dominant class (class6
    when predicted); grey where nothing was classified."""
    from matplotlib import colormaps
    from matplotlib.colors import BoundaryNorm, ListedColormap

    ok = per_night[per_night["classified"] > 0]
    if ok.empty:
        return None
    sites = site_order(ok["site"])
    dates = _calendar(ok["date"])
    col = {d: j for j, d in enumerate(dates)}
    row = {s: i for i, s in enumerate(sites)}
    share = np.full((len(sites), len(dates)), np.nan)
    dominant = np.full((len(sites), len(dates)), np.nan)
    classes = list(LABEL_NAMES[tally.primary])
    i, j = ok["site"].map(row).to_numpy(), ok["date"].map(col).to_numpy()
    share[i, j] = ok["aurora_share"].to_numpy(dtype=float)
    dominant[i, j] = ok[classes].to_numpy().argmax(axis=1)
    from matplotlib.figure import Figure

    height = 0.28 * len(sites) + 1.3
    fig = Figure(figsize=(11, 2 * height + 0.4), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True)
    shares = colormaps["viridis"].with_extremes(bad="#e3e6eb")
    image = top.imshow(share, aspect="auto", interpolation="nearest", cmap=shares, vmin=0, vmax=1)
    fig.colorbar(image, ax=top, label="aurora share", fraction=0.03, pad=0.01)
    top.set_title("Aurora share of the classified frames, per site and UT date", fontsize=10)
    tab = colormaps["tab10"]
    cmap = ListedColormap([tab(k) for k in range(len(classes))]).with_extremes(bad="#e3e6eb")
    norm = BoundaryNorm(np.arange(len(classes) + 1) - 0.5, len(classes))
    image = bottom.imshow(dominant, aspect="auto", interpolation="nearest", cmap=cmap, norm=norm)
    bar = fig.colorbar(image, ax=bottom, fraction=0.03, pad=0.01, ticks=range(len(classes)))
    bar.ax.set_yticklabels(classes, fontsize=7)
    bottom.set_title(f"Most frequent predicted {tally.primary} class", fontsize=10)
    for ax in (top, bottom):
        ax.set_yticks(range(len(sites)), sites, fontsize=7)
    if len(dates) <= 31:
        ticks = list(range(len(dates)))
    else:
        ticks = [k for k, d in enumerate(dates) if d.endswith("-01")] or [0]
    bottom.set_xticks(ticks, [dates[k] for k in ticks], rotation=35, ha="right", fontsize=7)
    bottom.set_xlabel("UT date (grey: no classified frames)")
    return png_bytes(fig, dpi=90)


def confidence_figure(tally: RunTally) -> bytes | None:
    """Per label set, the distribution of the winning score of each predicted class."""
    from matplotlib import colormaps
    from matplotlib.figure import Figure

    shown = [ls for ls in tally.label_sets if tally.scores[ls].frames.sum()]
    if not shown:
        return None
    fig = Figure(figsize=(5.2 * len(shown) + 1.5, 3.4), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(shown)))
    colours = colormaps["tab10"]
    for ax, ls in zip(axes, shown, strict=True):
        scores = tally.scores[ls]
        for k, name in enumerate(scores.classes):
            if not scores.frames[k]:
                continue
            keys = np.array(sorted(scores.bins[k]))
            counts = np.array([scores.bins[k][key] for key in keys], dtype=float)
            edges = np.append(keys, keys[-1] + 1) * SCORE_BIN
            ax.stairs(
                counts / counts.sum() / SCORE_BIN,
                edges,
                color=colours(k),
                label=f"{name} ({int(scores.frames[k]):,})",
            )
        ax.set_xlabel(f"winning {ls} decision score (bins of {SCORE_BIN:g})")
        ax.set_ylabel("density")
        ax.set_title(f"{ls}: score of the predicted class", fontsize=10)
        ax.legend(fontsize=7, title="predicted (frames)", title_fontsize=7)
    return png_bytes(fig, dpi=90)
