#!/usr/bin/env python3
"""Per-frame CPU cost of classify's steps around the network (issue 38). Not a test.

Run it on an otherwise idle machine (one core is what the figures mean)::

    .venv/bin/python bench/bench_classify_steps.py              # 10 files x 20 frames
    .venv/bin/python bench/bench_classify_steps.py --files 2    # a quick check that it runs

On one site-hour of synthetic stream0 files (:mod:`oath.demo.stream0`) it times, per frame and in
CPU seconds of this process: reading (:func:`oath.archive.themis.read_frames`), conversion
(:meth:`oath.archive.conversion.Conversion.to_gray`), rotation by the exact map
(:mod:`oath.imaging.rotation_map`,
map cached beforehand) beside the former PNG + Wand + PNG route
(:func:`oath.archive.stream.rotate_png`
and a decode), and the hand-off (the uint8 array as the generator yields it). The network's
own rate comes from ``bench/bench_classify.py`` (steady), run at ``--precision float32`` and
``bfloat16``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import time
from pathlib import Path

import numpy as np


def cpu_ms(step, items) -> tuple[list, float]:
    started = time.process_time()
    out = [step(item) for item in items]
    return out, 1e3 * (time.process_time() - started) / max(len(items), 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=10)
    parser.add_argument("--frames", type=int, default=20)
    parser.add_argument("--angle", type=float, default=12.5)
    args = parser.parse_args()

    from oath.archive.conversion import Conversion
    from oath.archive.stream import FrameRecord, record_pixels, rotate_png
    from oath.archive.themis import read_frames
    from oath.demo.stream0 import write_synthetic_hour
    from oath.imaging.rotate import import_wand
    from oath.imaging.rotation_map import load_rotation_map

    wand = import_wand()
    with tempfile.TemporaryDirectory() as work:
        files = write_synthetic_hour(
            Path(work),
            "gill",
            dt.datetime(2014, 3, 10, 6),
            n_files=args.files,
            frames_per_file=args.frames,
        )
        conversion = Conversion()
        read, t_read = cpu_ms(read_frames, [str(f) for f in files])
        raw = [frame.image for frames in read for frame in frames]
        t_read /= args.frames
        grays, t_convert = cpu_ms(lambda image: conversion.to_gray(image, "gill"), raw)
        rotation = load_rotation_map(grays[0].shape, args.angle)
        rotated, t_map = cpu_ms(rotation.rotate, grays)

        def png_route(gray: np.ndarray) -> np.ndarray:
            with wand.Image(blob=rotate_png(gray, args.angle), format="png") as img:
                return np.array(img)[:, :, 0]

        _, t_wand = cpu_ms(png_route, grays[: min(len(grays), 40)])
        records = [FrameRecord("f", 0, None, "gill", "ok", image=image) for image in rotated]
        _, t_hand = cpu_ms(lambda r: record_pixels(r)[:, :, None], records)
    print(f"frames                    {len(raw)} ({grays[0].shape}, angle {args.angle})")
    print(f"read            ms/frame  {t_read:.3f}")
    print(f"convert         ms/frame  {t_convert:.3f}")
    print(f"rotate (map)    ms/frame  {t_map:.3f}")
    print(f"rotate (Wand+PNG, before) {t_wand:.3f}")
    print(f"hand-off        ms/frame  {t_hand:.3f}")
    print(f"total (map)     ms/frame  {t_read + t_convert + t_map + t_hand:.3f}   target <= 4")


if __name__ == "__main__":
    main()
