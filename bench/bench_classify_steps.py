#!/usr/bin/env python3
"""Per-frame CPU cost of classify's steps around the network (issue 38). Not a test.

Run it on an otherwise idle machine (one core is what the figures mean)::

    .venv/bin/python bench/bench_classify_steps.py              # 10 files x 20 frames
    .venv/bin/python bench/bench_classify_steps.py --files 2    # a quick check that it runs

On one site-hour of synthetic stream0 files (:mod:`oath.demo.stream0`) it times, per frame and in
CPU seconds of this process (:func:`harness.timed`), after the idle wait: reading
(:func:`oath.archive.themis.read_frames`), conversion
(:meth:`oath.archive.conversion.Conversion.to_gray`), rotation by the exact map
(:mod:`oath.imaging.rotation_map`, map cached beforehand) beside the former PNG + Wand + PNG
route (:func:`oath.imaging.rotation_map.wand_rotate_png` and a decode, on at most 40 frames),
and the hand-off (the uint8 array as the generator yields it). The network's own rate comes from
``bench/bench_classify.py`` (steady), run at ``--precision float32 bfloat16``.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import harness
import numpy as np

TARGET_MS = 4.0
"""Issue 38: read + convert + rotate (map) + hand-off, CPU ms a frame."""
WAND_FRAMES = 40
"""Frames the former PNG + Wand + PNG route is timed on (it is slow)."""


def cpu_ms(step: Callable[[Any], Any], items: Sequence[Any]) -> tuple[list[Any], float]:
    """``step`` applied to each item, and its CPU milliseconds an item."""
    with harness.timed() as block:
        out = [step(item) for item in items]
    return out, 1e3 * block.cpu / max(len(items), 1)


def main() -> None:
    parser = harness.argument_parser(
        __doc__, files=(10, "synthetic raw files"), frames=(20, "frames per file")
    )
    parser.add_argument("--angle", type=float, default=12.5, help="rotation angle, degrees")
    args = parser.parse_args()

    from oath.archive.conversion import Conversion
    from oath.archive.stream import FrameRecord, record_pixels
    from oath.archive.themis import read_frames
    from oath.demo.stream0 import write_synthetic_hour
    from oath.imaging.rotate import import_wand
    from oath.imaging.rotation_map import load_rotation_map, wand_rotate_png

    print(f"CPU: {harness.cpu_description()}")
    wand = import_wand()
    with tempfile.TemporaryDirectory(prefix="bench_classify_steps_") as work:
        files = write_synthetic_hour(
            Path(work),
            "gill",
            dt.datetime(2014, 3, 10, 6),
            n_files=args.files,
            frames_per_file=args.frames,
        )
        conversion = Conversion()
        harness.wait_for_idle(args)
        read, t_read = cpu_ms(read_frames, [str(f) for f in files])
        raw = [frame.image for frames in read for frame in frames]
        t_read /= args.frames  # timed a file at a time
        grays, t_convert = cpu_ms(lambda image: conversion.to_gray(image, "gill"), raw)
        rotation = load_rotation_map(grays[0].shape, args.angle)  # built or loaded, not timed
        rotated, t_map = cpu_ms(rotation.rotate, grays)

        def png_route(gray: np.ndarray) -> np.ndarray:
            with wand.Image(blob=wand_rotate_png(gray, args.angle), format="png") as img:
                return np.array(img)[:, :, 0]

        _, t_wand = cpu_ms(png_route, grays[:WAND_FRAMES])
        records = [FrameRecord("f", 0, None, "gill", "ok", image=image) for image in rotated]
        _, t_hand = cpu_ms(lambda r: record_pixels(r)[:, :, None], records)

    print(f"{len(raw)} frames of {grays[0].shape}, angle {args.angle}; CPU ms a frame:")
    total = t_read + t_convert + t_map + t_hand
    rows = [
        {"step": "read", "ms/frame": t_read, "target": ""},
        {"step": "convert", "ms/frame": t_convert, "target": ""},
        {"step": "rotate (map)", "ms/frame": t_map, "target": ""},
        {"step": "rotate (Wand+PNG, before)", "ms/frame": t_wand, "target": ""},
        {"step": "hand-off", "ms/frame": t_hand, "target": ""},
        {
            "step": "total (map)",
            "ms/frame": total,
            "target": f"<= {TARGET_MS:g}: {'met' if total <= TARGET_MS else 'NOT met'}",
        },
    ]
    harness.print_table(rows, {"step": "", "ms/frame": ".3f", "target": ""})


if __name__ == "__main__":
    main()
