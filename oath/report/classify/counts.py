"""Tables derived from a :class:`~oath.report.classify.tally.RunTally`: class counts per site
and per site-night, the files that failed, and which nights the page shows in full."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from oath.archive.gather import UNKNOWN
from oath.dataset.table import LABEL_NAMES
from oath.report.classify.tally import RunTally

AURORA_CLASS6 = ("arc", "diffuse", "discrete")  # class6 0-2 are aurora (class2 0)


def site_order(sites: Iterable[str]) -> list[str]:
    """Sites in name order, "unknown" last."""
    return sorted(set(sites), key=lambda s: (s == UNKNOWN, s))


def class_counts(tally: RunTally, by: list[str]) -> pd.DataFrame:
    """Frames classified, failed rows and frames per class of the primary label set, and the
    aurora share of classified frames, per ``by`` (e.g. ``["site", "date"]``)."""
    counts = tally.counts
    name = f"{tally.primary}_name"
    classes = list(LABEL_NAMES[tally.primary])
    ok = counts[counts["ok"]]
    per_class = (
        ok.pivot_table(index=by, columns=name, values="rows", aggfunc="sum", fill_value=0)
        .reindex(columns=classes, fill_value=0)
        .astype(np.int64)
    )
    rows = counts.groupby(by + ["ok"])["rows"].sum().unstack("ok", fill_value=0)
    out = pd.DataFrame(index=rows.index)
    out["classified"] = rows.get(True, 0)
    out["failed"] = rows.get(False, 0)
    out = out.join(per_class).fillna(0).astype(np.int64)
    out["aurora"] = _aurora_frames(tally, by).reindex(out.index, fill_value=0)
    share = out["aurora"] / out["classified"].where(out["classified"] > 0)
    out["aurora_share"] = share
    return out.reset_index()


def _aurora_frames(tally: RunTally, by: list[str]) -> pd.Series:
    ok = tally.counts[tally.counts["ok"]]
    if "class2" in tally.label_sets:
        chosen = ok[ok["class2_name"] == "aurora"]
    else:
        chosen = ok[ok["class6_name"].isin(AURORA_CLASS6)]
    return chosen.groupby(by)["rows"].sum()


def failed_files(tally: RunTally) -> pd.DataFrame:
    """One row per file with a failure: site, date, which frames and the reason(s)."""
    failed = tally.failed
    if failed.empty:
        return pd.DataFrame(columns=["file", "site", "date", "frames", "reason"])
    out = []
    for file, part in failed.groupby("file", sort=True):
        frames = part["frame"].dropna()
        whole = len(frames) < len(part)
        which = "whole file" if whole else ""
        if len(frames):
            listed = ", ".join(str(int(k)) for k in sorted(frames))
            which = f"{which}; frames {listed}" if which else f"frame(s) {listed}"
        reasons = dict.fromkeys(str(s).removeprefix("failed: ") for s in part["status"])
        out.append((file, part["site"].iloc[0], part["date"].iloc[0], which, "; ".join(reasons)))
    return pd.DataFrame(out, columns=["file", "site", "date", "frames", "reason"])


def chosen_nights(per_night: pd.DataFrame, max_nights: int) -> list[str]:
    """The UT dates shown in full: the ``max_nights`` with most aurora frames (all sites), ties
    to the earlier date; returned in date order."""
    dated = per_night[per_night["date"] != UNKNOWN]
    totals = dated.groupby("date")[["aurora", "classified"]].sum()
    totals = totals[totals["classified"] > 0].reset_index()
    ranked = totals.sort_values(["aurora", "date"], ascending=[False, True], kind="stable")
    return sorted(ranked["date"].head(max_nights))
