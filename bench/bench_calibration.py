#!/usr/bin/env python3
"""Benchmark calibrate: matching + fitting per image, and the agreement's extraction per frame.

Not a test: run it by hand on an otherwise idle machine::

    .venv/bin/python bench/bench_calibration.py              # 240 demo images, 256 px
    .venv/bin/python bench/bench_calibration.py --images 24 --frames 8   # a tiny check

In a temporary folder it draws the demo (its PNGs and the raw stream0 files behind them, 256 x
256 like OATH's), then times, in this process:

- match: :func:`oath.calibration.match.origin_rows` + :func:`oath.calibration.match.match_frames`
(every
  raw file read through pyucalgarysrs, matched frames written to frames.h5);
- fit: :func:`oath.calibration.output.fit_conversion` (PNG reading, geometry, both scaling families,
  residuals, conversion.yaml, the triplet figure);
- extraction: the agreement's raw routes, ``--frames`` held-out frames converted and fed to
  classify's :class:`oath.archive.stream.StreamingExtractor` with a random-weight checkpoint, after
  one
  warm-up batch (network start-up timed apart).

and extrapolates to OATH's 5,824 images, all matched: match + fit x 5,824, and extraction x 2
routes x 1,747 held-out images (30 % of 5,824) plus one start-up. Raw files here hold two
frames (the image's and a neighbour); an archive minute file holds 20, so reading costs more
there: the match figure is a floor for real files.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import harness

OATH_IMAGES = 5824
HELD_OUT = OATH_IMAGES - round(0.7 * OATH_IMAGES)


def main() -> None:
    parser = harness.argument_parser(
        __doc__, images=240, frames=(64, "frames through the network"), threads=2, batch_size=16
    )
    args = parser.parse_args()

    from oath.archive.conversion import Conversion
    from oath.archive.stream import StreamingExtractor
    from oath.calibration.agreement import route_records
    from oath.calibration.match import (
        MATCHED,
        list_raw_files,
        match_frames,
        origin_rows,
        read_matched_frames,
    )
    from oath.calibration.output import fit_conversion
    from oath.dataset.table import load_classifications
    from oath.demo.dataset import write_demo_dataset
    from oath.network.checkpoint import write_random_checkpoint

    with tempfile.TemporaryDirectory(prefix="bench_calibration_") as tmp:
        work = Path(tmp)
        root = work / "demo"
        write_demo_dataset(root, n_images=args.images, seed=2018, image_size=256)
        classes = root / "classifications"
        table = load_classifications(classes / "classifications.csv")
        out = work / "out"
        out.mkdir()

        harness.wait_for_idle(args)
        with harness.timed() as match:
            rows = origin_rows(root / "images" / "files_origin.csv", table["picNum"])
            matches = match_frames(rows, list_raw_files(root / "raw"), out / "m.csv", out / "f.h5")
        n_matched = int((matches["status"] == MATCHED).sum())

        with harness.timed() as fitting:
            fit = fit_conversion(
                out / "m.csv",
                out / "f.h5",
                classes / "classifications.csv",
                classes / "train_test_split.csv",
                root / "images" / "cropped_scaled",
                out / "conversion.yaml",
                out / "fit.json",
                out_triplets=out / "triplets.png",
            )

        pics = sorted(matches.loc[matches["status"] == MATCHED, "picNum"].astype(int))
        pics = (pics * (args.frames // len(pics) + 1))[: args.frames]
        sites = dict(zip(matches["picNum"].astype(int), matches["station"], strict=True))
        angles = dict(zip(table["picNum"].astype(int), table["angle"].astype(float), strict=True))
        frames = read_matched_frames(out / "f.h5", sorted(set(pics)))
        conversion = Conversion.from_config(fit["conversion"])
        write_random_checkpoint(work / "ckpt" / "v4", seed=1804)
        with harness.timed() as startup:
            extractor = StreamingExtractor(
                work / "ckpt" / "v4", batch_size=args.batch_size, threads=args.threads
            )
        with extractor:
            warm = route_records(pics[: args.batch_size], frames, sites, angles, conversion)
            extractor.run(warm)
            with harness.timed() as extraction:
                records = route_records(pics, frames, sites, angles, conversion)
                extractor.run(records)

    per_match = match.wall / args.images
    per_fit = fitting.wall / n_matched
    per_frame = extraction.wall / len(pics)
    startup_s = startup.wall
    figures = {
        "images": args.images,
        "matched": n_matched,
        "match_s_per_image": round(per_match, 4),
        "fit_s_per_image": round(per_fit, 4),
        "extract_s_per_frame": round(per_frame, 4),
        "network_startup_s": round(startup_s, 1),
        "oath_match_fit_s": round((per_match + per_fit) * OATH_IMAGES, 1),
        "oath_agreement_extraction_s": round(2 * HELD_OUT * per_frame + startup_s, 1),
    }
    print(f"CPU: {harness.cpu_description()}")
    print(json.dumps(figures, indent=1))
    print(
        f"calibrate, extrapolated to {OATH_IMAGES} matched images: match + fit "
        f"{figures['oath_match_fit_s'] / 60:.1f} min ({per_match * 1e3:.0f} + {per_fit * 1e3:.0f} "
        f"ms an image), agreement extraction {figures['oath_agreement_extraction_s'] / 60:.1f} min "
        f"(2 routes x {HELD_OUT} held-out frames, {per_frame * 1e3:.0f} ms a frame)"
    )


if __name__ == "__main__":
    main()
