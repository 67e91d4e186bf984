#!/usr/bin/env python3
"""Benchmark the classify report (rule classify_report) at archive size.

Not a test: run it by hand on an otherwise idle machine::

    .venv/bin/python bench/bench_classify_report.py          # 2,000 site-hours x 5 frames
    .venv/bin/python bench/bench_classify_report.py --frames-per-hour 1200 --sites 1  # 2.4 M

In a temporary folder it writes a synthetic classify dataset in the layout rule classify_images
writes (:func:`oath.demo.classify_run.write_synthetic_dataset`: ``--site-hours`` site-hours of
``--frames-per-hour`` frames, ``--sites`` sites, ``--hours-per-night`` UT hours a night,
``--failed-files`` whole files failed), the pictures the page inlines drawn by the real plotting
code (the night timelines of the nights the page shows in full with
:func:`oath.archive.gather.plot_night` from those nights' rows; the class counts with
:func:`oath.fit.model.plot_class_counts` on a 1 % sample of the rows; a contact sheet of 6 x 4
synthetic frames), and placeholder files for the other nights (only linked from the page).

Then it renders the page ``--repeats`` times, each in a fresh Python process as the rule's job
runs it (imports included) and prints the wall time (median), the peak memory (max RSS) and
the page's size. With ``--keograms`` the page also shows the keograms of its nights in full
(the page's light pictures of synthetic slices, :func:`draw_keograms`; those for papers are
drawn too, linked, not inlined).
"""

from __future__ import annotations

import json
import statistics
import tempfile
from pathlib import Path

import harness
import numpy as np

RENDER = """
import sys, time
started = time.perf_counter()
from oath.report.classify import write_classify_report
root = sys.argv[1]
import os
keograms = root + "/keograms" if os.path.isdir(root + "/keograms") else None
write_classify_report(root + "/dataset", root + "/report.html", nights=root + "/nights",
                      counts_png=root + "/class_counts.png", sheet_png=root + "/contact_sheet.png",
                      keograms=keograms)
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM")][0].split()[1]
print(time.perf_counter() - started, int(hwm) / 1024)
"""


def draw_pictures(root: Path) -> None:
    import pyarrow.compute as pc
    import pyarrow.dataset as ds

    from oath.archive.gather import plot_night, to_csv_table
    from oath.demo.stream0 import synthetic_frames
    from oath.fit.model import plot_class_counts
    from oath.imaging import figures
    from oath.imaging.png import encode_png
    from oath.report.classify import DEFAULT_NIGHTS, chosen_nights, class_counts, tally_dataset

    data = ds.dataset(root / "dataset", partitioning="hive")
    tally = tally_dataset(root / "dataset")
    per_night = class_counts(tally, ["date", "site"])
    shown = chosen_nights(per_night, DEFAULT_NIGHTS)
    (root / "nights").mkdir()
    placeholder = encode_png(np.full((8, 8), 128, dtype=np.uint8))
    for date in sorted(set(per_night["date"])):
        target = root / "nights" / f"{date}.png"
        if date in shown:
            rows = data.to_table(filter=pc.field("date") == date).to_pandas()
            rows["site"] = rows["site"].astype(str)
            plot_night(rows[rows["status"] == "ok"], date, target)
        else:
            target.write_bytes(placeholder)
    whole = data.to_table()
    sample = whole.take(np.arange(0, whole.num_rows, 100)).to_pandas()
    sample["site"] = sample["site"].astype(str)
    csv = root / "sample.csv"
    to_csv_table(sample.drop(columns=["date"])).to_csv(csv, index=False)
    plot_class_counts(str(csv), str(root / "class_counts.png"))
    rng = np.random.RandomState(0)
    rows = [
        figures.SheetRow(
            name,
            [
                figures.SheetCell(np.clip((f.astype(float) - 3500) / 11500, 0, 1), "0.91\ngill")
                for f in synthetic_frames(4, rng)
            ],
        )
        for name in ("arc", "diffuse", "discrete", "cloudy", "moon", "clear")
    ]
    sheet = figures.contact_sheet(rows, "Most confident images", columns=4, caption_size=7)
    (root / "contact_sheet.png").write_bytes(sheet)


def draw_keograms(root: Path, frames_per_hour: int) -> None:
    """The keograms of every site of the nights the page shows in full, from synthetic slices
    (:func:`oath.demo.classify_run.synthetic_night_keogram`, at the dataset's frames per hour),
    as rule draw_keograms writes them: the page's light pictures and those for papers
    (:func:`oath.archive.keogram.plot_night_keogram`), and keograms.csv; the other
    site-nights are not drawn."""
    import pandas as pd

    from oath.archive.keogram import (
        INDEX_COLUMNS,
        INDEX_NAME,
        plot_night_keogram,
        write_page_keogram,
    )
    from oath.demo.classify_run import synthetic_night_keogram
    from oath.report.classify import DEFAULT_NIGHTS, chosen_nights, class_counts, tally_dataset

    tally = tally_dataset(root / "dataset")
    per_night = class_counts(tally, ["date", "site"])
    rng = np.random.default_rng(0)
    (root / "keograms").mkdir()
    listed = []
    for date in chosen_nights(per_night, DEFAULT_NIGHTS):
        for site in sorted(set(per_night.loc[per_night["date"] == date, "site"])):
            night = synthetic_night_keogram(
                site, date, frames_per_hour, rng, label_set=tally.primary
            )
            listed.append(write_page_keogram(night, root / "keograms"))
            plot_night_keogram(night, root / "keograms" / listed[-1]["png"])
    pd.DataFrame(listed, columns=list(INDEX_COLUMNS)).to_csv(root / "keograms" / INDEX_NAME)


def render(root: Path) -> tuple[float, float, float]:
    """(seconds in the process, wall seconds of the process, peak RSS in MiB) of one render.

    The peak is the process's own VmHWM: wait4's maxrss of a child would count this (large)
    process's memory at the spawn."""
    child = harness.run_child(["-c", RENDER, str(root)], cwd=harness.REPO)
    seconds, peak = child.stdout.strip().splitlines()[-1].split()
    return float(seconds), child.wall, float(peak)


def main() -> None:
    parser = harness.argument_parser(
        __doc__,
        site_hours=2000,
        frames_per_hour=5,
        sites=4,
        hours_per_night=10,
        failed_files=40,
        repeats=3,
    )
    parser.add_argument("--keograms", action="store_true", help="and the shown nights' keograms")
    args = parser.parse_args()
    from oath.demo.classify_run import write_synthetic_dataset

    with tempfile.TemporaryDirectory(prefix="bench_classify_report_") as tmp:
        root = Path(tmp)
        print(f"CPU: {harness.cpu_description()}")
        harness.wait_for_idle(args)
        with harness.timed() as written:
            write_synthetic_dataset(
                root / "dataset",
                args.site_hours,
                frames_per_hour=args.frames_per_hour,
                n_sites=args.sites,
                hours_per_night=args.hours_per_night,
                n_failed_files=args.failed_files,
            )
        draw_pictures(root)
        if args.keograms:
            draw_keograms(root, args.frames_per_hour)
        runs = [render(root) for _ in range(args.repeats)]
        html = root / "report.html"
        frames = args.site_hours * args.frames_per_hour
        result = {
            "site_hours": args.site_hours,
            "frames": frames,
            "sites": args.sites,
            "nights": -(-args.site_hours // (args.sites * args.hours_per_night)),
            "dataset_mb": round(
                sum(p.stat().st_size for p in (root / "dataset").rglob("*.parquet")) / 1e6, 1
            ),
            "dataset_write_s": round(written.wall, 1),
            "render_s_in_process": [round(r[0], 2) for r in runs],
            "render_s_process_median": round(statistics.median(r[1] for r in runs), 2),
            "peak_rss_mib": round(max(r[2] for r in runs)),
            "page_mb": round(html.stat().st_size / 1e6, 2),
            "inlined_pictures_mb": {  # as files; base64 in the page adds a third
                "nights_in_full": round(
                    sum(
                        p.stat().st_size
                        for p in (root / "nights").glob("*.png")
                        if p.stat().st_size > 1000
                    )
                    / 1e6,
                    2,
                ),
                "class_counts": round((root / "class_counts.png").stat().st_size / 1e6, 2),
                "contact_sheet": round((root / "contact_sheet.png").stat().st_size / 1e6, 2),
                "keograms_page": round(
                    sum(p.stat().st_size for p in (root / "keograms").glob("*_page.png")) / 1e6,
                    2,
                ),
                "keograms_papers_not_inlined": round(
                    sum(
                        p.stat().st_size
                        for p in (root / "keograms").glob("*.png")
                        if not p.name.endswith("_page.png")
                    )
                    / 1e6,
                    2,
                ),
            },
        }
        print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
