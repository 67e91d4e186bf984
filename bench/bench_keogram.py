#!/usr/bin/env python3
"""Benchmark what keeping keograms costs a classify shard: time and disk.

Not a test: run it by hand on an otherwise idle machine::

    .venv/bin/python bench/bench_keogram.py               # one site-hour: 60 files x 20 frames
    .venv/bin/python bench/bench_keogram.py --files 3     # a quick check that it runs

It writes ``--files`` one-minute stream0 files of synthetic frames (:mod:`oath.demo.stream0`), then

* times the shard pass's reader and conversion (:func:`oath.archive.stream.iter_frames`, which now
takes
  each frame's slice) and, apart, :func:`oath.archive.keogram.keogram_column` on the same frames:
  the
  slice's share of read + convert is an upper bound of its share of a shard job (the network,
  not timed here, adds more time and no slices);
* writes the shard's predictions Parquet (random scores) with and without the ``keogram``
  column and scales the difference to ``--hours-per-year`` site-hours (a station-year: about
  2.5 million frames, 2,080 hours of 1,200 frames).

The page's cost with keograms: ``bench/bench_classify_report.py --keograms``.
"""

from __future__ import annotations

import datetime as dt
import json
import tempfile
import time
from pathlib import Path

import harness
import numpy as np


def main() -> None:
    parser = harness.argument_parser(__doc__, files=60, frames_per_file=20, hours_per_year=2080)
    args = parser.parse_args()
    print(f"CPU: {harness.cpu_description()}")
    from oath.archive.conversion import Conversion
    from oath.archive.keogram import KEOGRAM_COLUMN, keogram_column
    from oath.archive.stream import iter_frames, predictions_table, write_parquet
    from oath.archive.themis import read_frames
    from oath.demo.classify_run import random_label_models
    from oath.demo.stream0 import write_synthetic_hour
    from oath.fit.model import Model

    with tempfile.TemporaryDirectory(prefix="bench_keogram_") as tmp:
        root = Path(tmp)
        files = write_synthetic_hour(
            root / "in",
            "gill",
            dt.datetime(2014, 3, 10, 6),
            n_files=args.files,
            frames_per_file=args.frames_per_file,
        )
        harness.wait_for_idle(args)
        started = time.perf_counter()
        records = list(iter_frames(files, Conversion()))
        read_convert = time.perf_counter() - started
        images = [f.image for path in files for f in read_frames(path)]
        started = time.perf_counter()
        for image in images:
            keogram_column(image)
        capture = time.perf_counter() - started
        rng = np.random.RandomState(0)
        models = random_label_models(rng)
        features = rng.normal(0, 1, (len(records), 1001)).astype(np.float32)
        table = predictions_table(Model(models, {}), records, features)
        write_parquet(table, root / "with.parquet", {})
        write_parquet(table.drop(columns=[KEOGRAM_COLUMN]), root / "without.parquet", {})
        with_b, without_b = ((root / f"{n}.parquet").stat().st_size for n in ("with", "without"))
        per_hour = (with_b - without_b) * 1200 / len(records)
        print(
            json.dumps(
                {
                    "frames": len(records),
                    "read_convert_s": round(read_convert, 3),
                    "keogram_capture_s": round(capture, 4),
                    "capture_share_of_read_convert": f"{100 * capture / read_convert:.2f} %",
                    "shard_parquet_bytes": {"with_keogram": with_b, "without": without_b},
                    "added_mb_per_1200_frame_hour": round(per_hour / 1e6, 2),
                    "added_gb_per_station_year": round(per_hour * args.hours_per_year / 1e9, 2),
                },
                indent=1,
            )
        )


if __name__ == "__main__":
    main()
