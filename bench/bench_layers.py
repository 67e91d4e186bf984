#!/usr/bin/env python3
"""Cost of writing PreLogitsFlatten beside Logits: the same forward pass, fetched two ways.

Not a test: run on an idle machine (``.venv/bin/python bench/bench_layers.py``). In one process
and one restored graph it alternates batches that fetch ``Logits`` only (what extraction did
before pooled features) with batches that fetch both layers (what it does now), over the same
images, and prints the median seconds per image of each and their ratio (issue target: the
whole job changes by less than 3 %).
"""

from __future__ import annotations

import statistics
import tempfile
from pathlib import Path

import harness


def main() -> None:
    parser = harness.argument_parser(__doc__, images=64, rounds=3, batch_size=16)
    args = parser.parse_args()

    from oath.demo.dataset import write_demo_dataset
    from oath.network.checkpoint import write_random_checkpoint
    from oath.network.featurefile import LOGITS
    from oath.network.features import InceptionV4Extractor

    with tempfile.TemporaryDirectory(prefix="bench_layers_") as tmp:
        work = Path(tmp)
        write_demo_dataset(work / "demo", n_images=max(args.images, 12), seed=1, image_size=256)
        images = sorted((work / "demo" / "images" / "cropped_scaled").glob("*.png"))[: args.images]
        write_random_checkpoint(work / "ckpt" / "inception_v4")
        with InceptionV4Extractor(work / "ckpt" / "inception_v4", batch_size=args.batch_size) as ex:
            ex.extract_layers(images[: args.batch_size])  # warm-up: graph optimisation
            times: dict[str, list[float]] = {"Logits only": [], "both layers": []}
            fetches = {"Logits only": ex.layers[LOGITS], "both layers": ex.layers}
            harness.wait_for_idle(args)
            for _ in range(args.rounds):
                for name, fetch in fetches.items():
                    ex.session.run(ex._iterator.initializer, {ex._paths: [str(p) for p in images]})
                    with harness.timed() as batches:
                        for _ in range(-(-len(images) // args.batch_size)):
                            ex.session.run(fetch)
                    times[name].append(batches.wall / len(images))
    print(
        f"CPU: {harness.cpu_description()}; {len(images)} images, batch {args.batch_size}, "
        f"{args.rounds} rounds"
    )
    medians = {name: statistics.median(values) for name, values in times.items()}
    harness.print_table(
        [{"fetch": name, "s/image (median)": value} for name, value in medians.items()],
        {"fetch": "", "s/image (median)": ".4f"},
    )
    print(f"both / Logits only: {medians['both layers'] / medians['Logits only']:.3f}")


if __name__ == "__main__":
    main()
