#!/usr/bin/env python3
"""Cost of writing PreLogitsFlatten beside Logits: the same forward pass, fetched two ways.

Not a test: run on an idle machine (``.venv/bin/python bench/bench_layers.py``). In one process
and one restored graph it alternates batches that fetch ``Logits`` only (what extraction did
before pooled features) with batches that fetch both layers (what it does now), over the same
images, and prints the median seconds per image of each and their ratio (issue target: the
whole job changes by less than 3 %).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args()

    from oath.demo.dataset import write_demo_dataset
    from oath.network.checkpoint import write_random_checkpoint
    from oath.network.device import cpu_model
    from oath.network.featurefile import LOGITS
    from oath.network.features import InceptionV4Extractor

    work = Path(tempfile.mkdtemp(prefix="bench_layers_"))
    write_demo_dataset(work / "demo", n_images=max(args.images, 12), seed=1, image_size=256)
    images = sorted((work / "demo" / "images" / "cropped_scaled").glob("*.png"))[: args.images]
    write_random_checkpoint(work / "ckpt" / "inception_v4")
    with InceptionV4Extractor(work / "ckpt" / "inception_v4", batch_size=args.batch_size) as ex:
        ex.extract_layers(images[: args.batch_size])  # warm-up: graph optimisation
        times: dict[str, list[float]] = {"Logits only": [], "both layers": []}
        fetches = {"Logits only": ex.layers[LOGITS], "both layers": ex.layers}
        for _ in range(args.rounds):
            for name, fetch in fetches.items():
                ex.session.run(ex._iterator.initializer, {ex._paths: [str(p) for p in images]})
                started = time.perf_counter()
                for _ in range(-(-len(images) // args.batch_size)):
                    ex.session.run(fetch)
                times[name].append((time.perf_counter() - started) / len(images))
    print(
        f"CPU: {cpu_model()}; {len(images)} images, batch {args.batch_size}, {args.rounds} rounds"
    )
    medians = {name: statistics.median(values) for name, values in times.items()}
    for name, value in medians.items():
        print(f"{name:12s} {value:.4f} s/image (median)")
    print(f"both / Logits only: {medians['both layers'] / medians['Logits only']:.3f}")


if __name__ == "__main__":
    main()
