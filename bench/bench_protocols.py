"""Benchmark (not a test): the whole protocol comparison on an OATH-sized synthetic matrix.

Makes 5,824 images x 1001 float32 features with class structure and station-night groups
(about 8 frames a night; each night has a dominant class, a night-specific offset and a
component shared by its frames, so random splits leak), writes the files the workflow would
pass in, then runs :func:`oath.fit.comparison.compare_to_file` (the configured classifiers, by
default the published ridge and logistic regression, x 2 protocols x 5 splits x 2 label sets)
and prints the time per classifier and the total.

    .venv/bin/python bench/bench_protocols.py [--n-jobs 2] [--images 5824] [--keep DIR]
        [--classifiers ridge_published logistic linear_svm]

Per-classifier times are summed over the 10 split tasks (both label sets; with ``--n-jobs 2``
they add up to about twice the wall time); "standardise" is the shared per-fold scaling of the
two tuned models. The total is the one ``compare_to_file`` call the workflow makes, reading
the files included. Before the fit it waits for an idle machine (``--wait-idle``); the load
average after is printed too: on a shared machine it explains most of the spread between runs.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import tempfile
from pathlib import Path

import harness
import numpy as np
import pandas as pd

from oath.dataset.splits import make_split, write_split
from oath.dataset.table import CLASS6_NAMES
from oath.demo.dataset import DEMO_STATIONS
from oath.fit import comparison
from oath.fit.classifiers import CLASSIFIERS, DEFAULT_CLASSIFIERS
from oath.network.featurefile import Features, write_features


def synthetic(
    n_images: int, n_features: int, seed: int
) -> tuple[np.ndarray, pd.DataFrame, pd.DataFrame]:
    """Features and a files_origin table with class structure and leaky station-nights."""
    rng = np.random.RandomState(seed)
    n_nights = max(2, n_images // 8)
    night = np.sort(rng.randint(0, n_nights, n_images))
    night_class = rng.randint(0, 6, n_nights)
    class6 = np.where(rng.rand(n_images) < 0.7, night_class[night], rng.randint(0, 6, n_images))
    latent = 48
    z = (
        rng.randn(6, latent)[class6] * 0.4  # class signal
        + rng.randn(n_nights, latent)[night]  # what a night looks like
        + rng.randn(n_images, latent) * 0.5  # frame to frame
    )
    mixing = rng.randn(latent, n_features) * (2.0 / np.sqrt(np.arange(1, latent + 1)))[:, None]
    X = (
        z @ mixing
        + rng.randn(n_nights, n_features)[night]  # night-specific detail in every feature
        + rng.randn(n_images, n_features) * 2.0
        + 3.0
    ).astype(np.float32)
    start = dt.datetime(2011, 1, 1, 3, 0)
    rows = []
    for i in range(n_images):
        station = DEMO_STATIONS[night[i] % len(DEMO_STATIONS)]
        when = start + dt.timedelta(days=int(night[i]), minutes=int(rng.randint(0, 480)))
        rows.append({"picNum": i + 1, "station": station, "time": when.isoformat()})
    table = pd.DataFrame(
        {
            "class2": (class6 >= 3).astype(int),
            "class6": class6,
            "picNum": np.arange(1, n_images + 1),
            "label": [CLASS6_NAMES[c] for c in class6],
            "angle": rng.randint(0, 360, n_images),
        }
    )
    return X, table, pd.DataFrame(rows)


def write_inputs(folder: Path, n_images: int, n_features: int, seed: int) -> dict[str, str]:
    X, table, origins = synthetic(n_images, n_features, seed)
    paths = {
        "features": folder / "auroral_feat.h5",
        "classifications": folder / "classifications.csv",
        "split_file": folder / "train_test_split.csv",
        "files_origin": folder / "files_origin.csv",
    }
    names = [f"{p:05d}_{a}.png" for p, a in zip(table["picNum"], table["angle"], strict=True)]
    write_features(paths["features"], Features(names, X, {"weights": "synthetic benchmark"}))
    paths["classifications"].write_text("# synthetic benchmark\n" + table.to_csv(index=False))
    write_split(paths["split_file"], make_split(n_images))
    origins.to_csv(paths["files_origin"], index=False)
    return {k: str(v) for k, v in paths.items()}


def scores(entry: dict) -> dict[str, object]:
    """One classifier, protocol and label set's row of the accuracy table."""
    return {
        "accuracy": entry["mean_accuracy"],
        "±": entry["std_accuracy"],
        "macro F1": entry["mean_macro_f1"],
        "chosen C": entry.get("chosen_C", ""),
    }


def main() -> None:
    parser = harness.argument_parser(__doc__, images=5824, features=1001, n_jobs=2, seed=1804)
    parser.add_argument("--keep", type=Path, help="write inputs and result here")
    parser.add_argument(
        "--classifiers", nargs="+", choices=CLASSIFIERS, default=list(DEFAULT_CLASSIFIERS)
    )
    args = parser.parse_args()

    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        run(args, args.keep)
    else:
        with tempfile.TemporaryDirectory(prefix="bench_protocols_") as tmp:
            run(args, Path(tmp))


def run(args: argparse.Namespace, folder: Path) -> None:
    print(f"CPU: {harness.cpu_description()}")
    paths = write_inputs(folder, args.images, args.features, args.seed)
    labels = ["class6", "class2"]
    out = folder / "protocols.json"

    harness.wait_for_idle(args)
    with harness.timed() as total:
        comparison.compare_to_file(
            paths["features"],
            paths["classifications"],
            paths["split_file"],
            paths["files_origin"],
            labels,
            5,
            args.seed,
            str(out),
            n_jobs=args.n_jobs,
            classifiers=args.classifiers,
        )
    result = json.loads(out.read_text())

    timing = result["timing_s"]
    print(f"matrix {args.images} x {args.features}, n_jobs={args.n_jobs}, {args.classifiers}")
    harness.print_table(
        [{"time": name, "seconds": seconds} for name, seconds in timing["summed"].items()]
        + [{"time": "fitting (wall, all tasks)", "seconds": timing["wall"]}],
        {"time": "", "seconds": ".1f"},
    )
    print("(a classifier's seconds: summed over 10 split tasks x 2 label sets)")
    rows = [
        {"labels": name, "classifier": c, "protocol": p, **scores(result["results"][c][p][name])}
        for name in labels
        for c in result["results"]
        for p in result["protocols"]
    ]
    harness.print_table(
        rows,
        {"labels": "", "classifier": "", "protocol": "", "accuracy": ".4f", "±": ".4f"}
        | {"macro F1": ".4f", "chosen C": ""},
    )
    for c, by_label in result["leakage_gap"].items():
        print(
            f"gap {c:16s} "
            + "  ".join(f"{k} {v['gap_points']:+.1f} pt" for k, v in by_label.items())
        )
    print(f"TOTAL compare_to_file: {total.wall:.1f} s")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
