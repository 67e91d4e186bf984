#!/usr/bin/env python3
"""GPU check of the torch backend, for a lent accelerator machine: parity, then images/s.

Needs only PyTorch (2.11 or later), numpy and h5py: no TensorFlow, no download, no Pillow (the
fixture's PNGs are decoded with zlib when Pillow is absent). Run from the repository root with
the parity fixture beside the checkout (../shared/fixtures/inception_v4)::

    PYTHONPATH=. python bench/gpu_check.py [--out gpu_check.json]

1. The fixture's weights drawn from its variables.txt exactly as its make_checkpoint.py does.
2. Parity on the fixture's six images, float32 and bfloat16 (float16 where the GPU lacks
   bfloat16): Logits and PreLogitsFlatten relative L2 against the TF-slim reference, and the
   float32 Logits on the GPU against the same network on the CPU.
3. Images/s of the network (preprocessed inputs already on the GPU) at a few batch sizes and
   both precisions, and the hours the 2008-2022 THEMIS archive (~7e8 frames, Johnson et al.
   2024) would take on one such GPU at the best rate.

Writes one JSON (also printed). Takes 1-3 minutes on an H100-class GPU.
"""

from __future__ import annotations

import argparse
import json
import struct
import sys
import time
import zlib
from pathlib import Path

import h5py
import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from oath.network.inception_v4_torch import (  # noqa: E402
    InceptionV4Torch,
    central_crop,
    fixture_weights,
    resize_bilinear,
)
from oath.network.torch_extract import TorchNetwork  # noqa: E402

ARCHIVE_FRAMES = 7e8  # THEMIS ASI frames 2008-2022 labelled by Johnson et al. (2024), order


def decode_png(data: bytes) -> np.ndarray:
    """8-bit, non-interlaced PNG (gray, gray+alpha, RGB, RGBA) to H x W x 3 uint8, with zlib."""
    try:
        import io

        from PIL import Image

        return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    except ImportError:
        pass
    pos, chunks, header = 8, [], None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            chunks.append(body)
        pos += 12 + length
    width, height, depth, color, _, _, interlace = header
    channels = {0: 1, 4: 2, 2: 3, 6: 4}[color]
    if depth != 8 or interlace:
        raise ValueError("only 8-bit non-interlaced PNGs")
    raw = np.frombuffer(zlib.decompress(b"".join(chunks)), np.uint8)
    stride = width * channels
    rows = raw.reshape(height, stride + 1)
    out = np.zeros((height, stride), np.int32)
    for y in range(height):
        kind, line = rows[y, 0], rows[y, 1:].astype(np.int32)
        up = out[y - 1] if y else np.zeros(stride, np.int32)
        if kind in (0, 2):
            out[y] = (line + (up if kind == 2 else 0)) & 255
            continue
        for x in range(stride):  # Sub, Average, Paeth depend on the pixel to the left
            left = out[y, x - channels] if x >= channels else 0
            upleft = up[x - channels] if x >= channels else 0
            if kind == 1:
                pred = left
            elif kind == 3:
                pred = (left + up[x]) // 2
            else:
                p = left + up[x] - upleft
                pa, pb, pc = abs(p - left), abs(p - up[x]), abs(p - upleft)
                pred = left if pa <= pb and pa <= pc else (up[x] if pb <= pc else upleft)
            out[y, x] = (line[x] + pred) & 255
    image = out.reshape(height, width, channels).astype(np.uint8)
    return np.repeat(image[..., :1], 3, axis=2) if channels < 3 else image[..., :3]


def preprocess(data: bytes) -> np.ndarray:
    image = decode_png(data).astype(np.float32) * np.float32(1.0 / 255.0)
    return (resize_bilinear(central_crop(image)) - np.float32(0.5)) * np.float32(2.0)


def relative_l2(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def parity(fixture: Path, weights: dict) -> dict:
    refs = {}
    for stem, name in (("logits", "Logits"), ("prelogits", "PreLogitsFlatten")):
        with h5py.File(fixture / f"reference_{stem}.h5") as f:
            names = [n.decode() if isinstance(n, bytes) else str(n) for n in f["filenames"][:]]
            refs[name] = f[name][:]
    inputs = np.stack([preprocess((fixture / "images" / n).read_bytes()) for n in names])
    result: dict = {}
    for precision in ("float32", "bfloat16"):
        with TorchNetwork("fixture", weights=weights, precision=precision) as network:
            out = network.forward(inputs)
            result[network.precision_in_use] = {
                name: relative_l2(out[name], refs[name]) for name in refs
            }
            if precision == "float32":
                gpu_logits = out["Logits"]
    cpu = InceptionV4Torch(weights).eval()
    with torch.inference_mode():
        cpu_logits = cpu(torch.from_numpy(inputs).permute(0, 3, 1, 2))["Logits"].numpy()
    result["float32_gpu_vs_cpu_logits"] = relative_l2(gpu_logits, cpu_logits)
    return result


def throughput(weights: dict, batch_sizes: list[int], seconds: float) -> list[dict]:
    rows = []
    for precision in ("float32", "bfloat16"):
        with TorchNetwork("fixture", weights=weights, precision=precision) as network:
            for batch in batch_sizes:
                x = torch.randn(batch, 3, 299, 299, device=network.torch_device)
                x = x.contiguous(memory_format=torch.channels_last)
                dtype = network._autocast or torch.bfloat16
                kind = network.torch_device.type
                with (
                    torch.inference_mode(),
                    torch.autocast(kind, dtype, network._autocast is not None),
                ):
                    for _ in range(3):  # warm-up: cuDNN picks its algorithms
                        network.model(x)
                    torch.cuda.synchronize() if kind == "cuda" else None
                    started, count = time.perf_counter(), 0
                    while time.perf_counter() - started < seconds:
                        network.model(x)
                        count += batch
                        torch.cuda.synchronize() if kind == "cuda" else None
                    rate = count / (time.perf_counter() - started)
                rows.append(
                    {"precision": network.precision_in_use, "batch": batch, "images_per_s": rate}
                )
                print(rows[-1], flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fixture", default=str(REPO.parent / "shared/fixtures/inception_v4"))
    parser.add_argument("--out", default="gpu_check.json")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[16, 64, 128])
    parser.add_argument("--seconds", type=float, default=10.0, help="per throughput row")
    args = parser.parse_args()
    fixture = Path(args.fixture)
    started = time.perf_counter()
    weights = fixture_weights(fixture / "variables.txt", seed=1804)
    device = TorchNetwork("fixture", weights=weights).device
    report: dict = {"device": device, "torch": torch.__version__}
    report["parity"] = parity(fixture, weights)
    print(json.dumps(report, indent=1), flush=True)
    report["throughput"] = throughput(weights, args.batch_sizes, args.seconds)
    best = max(row["images_per_s"] for row in report["throughput"])
    report["archive_hours_at_best_rate"] = ARCHIVE_FRAMES / best / 3600
    report["archive_frames_assumed"] = ARCHIVE_FRAMES
    report["wall_s"] = time.perf_counter() - started
    Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
